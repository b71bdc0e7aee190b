package authn

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	k := sharedKeys()
	f := writeKeyFiles(t)
	srv := newJWKSServer(t, jwkOf(t, "a", &k.rsa.PublicKey))
	srv.set(func(s *jwksServer) { s.hang = true })
	reg := prometheus.NewRegistry()
	a, err := New(Options{SigningKeyFile: f.edPriv, JWKSURL: srv.URL, Registerer: reg, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, jwt.SigningMethodEdDSA, k.ed, "", claims(nil))
	expired := sign(t, jwt.SigningMethodEdDSA, k.ed, "", claims(map[string]any{"exp": 1}))
	for _, h := range []http.Header{
		bearer(good), bearer(good), bearer(expired), {},
		{"Authorization": {"a", "b"}},
	} {
		a.Authenticate(context.Background(), h)
	}
	// A kid only the (hung, never fetched) JWKS could know: an error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := a.Authenticate(ctx, bearer(sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil)))); err == nil {
		t.Error("token needing the unfetched JWKS: got nil error, want one")
	}

	want := `
# HELP latch_authn_total Authentication attempts by result (success, failure, error) and denial reason (none unless result is failure).
# TYPE latch_authn_total counter
latch_authn_total{reason="bad_audience",result="failure"} 0
latch_authn_total{reason="bad_claims",result="failure"} 0
latch_authn_total{reason="bad_issuer",result="failure"} 0
latch_authn_total{reason="bad_signature",result="failure"} 0
latch_authn_total{reason="empty",result="failure"} 0
latch_authn_total{reason="expired",result="failure"} 1
latch_authn_total{reason="malformed",result="failure"} 0
latch_authn_total{reason="missing",result="failure"} 1
latch_authn_total{reason="multiple",result="failure"} 1
latch_authn_total{reason="none",result="error"} 1
latch_authn_total{reason="none",result="success"} 2
latch_authn_total{reason="not_yet_valid",result="failure"} 0
latch_authn_total{reason="too_long",result="failure"} 0
latch_authn_total{reason="unknown_key",result="failure"} 0
latch_authn_total{reason="unknown_token",result="failure"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "latch_authn_total"); err != nil {
		t.Error(err)
	}
	wantJWKS := `
# HELP latch_jwks_keys Usable signature keys in the current JWKS.
# TYPE latch_jwks_keys gauge
latch_jwks_keys 0
# HELP latch_jwks_last_refresh_success_timestamp_seconds Unix time of the last successful JWKS fetch; 0 if none yet.
# TYPE latch_jwks_last_refresh_success_timestamp_seconds gauge
latch_jwks_last_refresh_success_timestamp_seconds 0
# HELP latch_api_tokens_last_reload_successful 0 if the last reload of the API tokens file failed (the previous tokens stay in use), else 1.
# TYPE latch_api_tokens_last_reload_successful gauge
latch_api_tokens_last_reload_successful 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantJWKS), "latch_jwks_keys", "latch_jwks_last_refresh_success_timestamp_seconds",
		"latch_api_tokens_last_reload_successful"); err != nil {
		t.Error(err)
	}
	if _, err := New(Options{SigningKeyFile: f.edPriv, Registerer: reg}); err == nil {
		t.Error("second New on the same registry: got nil, want a duplicate registration error")
	}
}
