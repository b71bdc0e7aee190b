package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf encodes a public key as a JWK, independently of the code under test.
func jwkOf(t *testing.T, kid string, pub any) map[string]string {
	t.Helper()
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		raw, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name, "x": enc(raw[1 : 1+size]), "y": enc(raw[1+size:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(k)}
	}
	t.Fatalf("jwkOf: %T", pub)
	return nil
}

// jwksServer is a real JWKS endpoint whose keys and behaviour tests change.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	status  int
	hang    bool
	release chan struct{}
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...map[string]string) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys, status: http.StatusOK, release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, hang := s.status, s.hang
		body, _ := json.Marshal(map[string]any{"keys": s.keys})
		s.mu.Unlock()
		if hang {
			select {
			case <-s.release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.release) }) // runs first: unblock hung handlers
	return s
}

func (s *jwksServer) set(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func newJWKSAuthenticator(t *testing.T, url string, c *clock, reg prometheus.Registerer) *Authenticator {
	t.Helper()
	a, err := New(Options{JWKSURL: url, Now: c.Now, Registerer: reg, Audience: "latch-test"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func authenticate(t *testing.T, a *Authenticator, token string) Reason {
	t.Helper()
	_, reason, err := a.Authenticate(context.Background(), bearer(token))
	if err != nil {
		t.Fatalf("Authenticate: unexpected error %v", err)
	}
	return reason
}

func TestJWKSRotation(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwkOf(t, "a", &k.rsa.PublicKey))
	c := newClock()
	reg := prometheus.NewRegistry()
	a := newJWKSAuthenticator(t, srv.URL, c, reg)

	if err := a.Ready(); err == nil {
		t.Fatal("Ready before the first fetch: got nil, want an error")
	}
	if err := a.refreshJWKS(context.Background()); err != nil {
		t.Fatalf("refreshJWKS: %v", err)
	}
	if err := a.Ready(); err != nil {
		t.Fatalf("Ready after the first fetch: got %v, want nil", err)
	}
	if got, want := testutil.ToFloat64(a.metrics.jwksKeys), 1.0; got != want {
		t.Errorf("latch_jwks_keys: got %v, want %v", got, want)
	}
	if got, want := testutil.ToFloat64(a.metrics.jwksLastSuccess), float64(testNow.Unix()); got != want {
		t.Errorf("latch_jwks_last_refresh_success_timestamp_seconds: got %v, want %v", got, want)
	}

	tokA := sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil))
	tokB := sign(t, jwt.SigningMethodES256, k.ec, "b", claims(nil))
	tokC := sign(t, jwt.SigningMethodEdDSA, k.ed, "c", claims(nil))
	if got := authenticate(t, a, tokA); got != "" {
		t.Fatalf("kid a: got %q, want success", got)
	}

	// The server adds kid b: the unknown kid triggers an early refresh.
	srv.set(func(s *jwksServer) { s.keys = append(s.keys, jwkOf(t, "b", &k.ec.PublicKey)) })
	before := srv.fetches.Load()
	if got := authenticate(t, a, tokB); got != "" {
		t.Fatalf("kid b after the server added it: got %q, want success", got)
	}
	if got, want := srv.fetches.Load()-before, int64(1); got != want {
		t.Errorf("fetches for kid b: got %d, want %d", got, want)
	}

	// Within the minute, another unknown kid does not fetch again.
	srv.set(func(s *jwksServer) { s.keys = append(s.keys, jwkOf(t, "c", k.ed.Public())) })
	before = srv.fetches.Load()
	if got := authenticate(t, a, tokC); got != ReasonUnknownKey {
		t.Fatalf("kid c within a minute of the last early refresh: got %q, want %q", got, ReasonUnknownKey)
	}
	if got := srv.fetches.Load() - before; got != 0 {
		t.Errorf("fetches within the minute: got %d, want 0", got)
	}

	// A minute later a burst of unknown-kid requests makes one fetch.
	c.Advance(61 * time.Second)
	before = srv.fetches.Load()
	var wg sync.WaitGroup
	reasons := make([]Reason, 20)
	for i := range reasons {
		wg.Go(func() {
			_, reasons[i], _ = a.Authenticate(context.Background(), bearer(tokC))
		})
	}
	wg.Wait()
	if got, want := srv.fetches.Load()-before, int64(1); got != want {
		t.Errorf("fetches for a burst of 20: got %d, want %d", got, want)
	}
	// Requests that arrive after the fetch finished see kid c directly; those
	// that raced it joined the same fetch. Either way, all succeed.
	for i, r := range reasons {
		if r != "" {
			t.Errorf("burst request %d: got %q, want success", i, r)
		}
	}

	// The server drops kid a: after the next refresh kid a is rejected,
	// even though it was verified (and cached) before.
	srv.set(func(s *jwksServer) { s.keys = s.keys[1:] })
	if err := a.refreshJWKS(context.Background()); err != nil {
		t.Fatalf("refreshJWKS: %v", err)
	}
	if got := authenticate(t, a, tokA); got != ReasonUnknownKey {
		t.Errorf("kid a after removal: got %q, want %q", got, ReasonUnknownKey)
	}
	if got := authenticate(t, a, tokB); got != "" {
		t.Errorf("kid b after kid a's removal: got %q, want success", got)
	}
}

func TestJWKSServerDownKeepsKeys(t *testing.T) {
	k := sharedKeys()
	srv := newJWKSServer(t, jwkOf(t, "a", &k.rsa.PublicKey))
	c := newClock()
	a := newJWKSAuthenticator(t, srv.URL, c, prometheus.NewRegistry())
	if err := a.refreshJWKS(context.Background()); err != nil {
		t.Fatal(err)
	}
	tokA := sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil))

	for _, down := range []func(s *jwksServer){
		func(s *jwksServer) { s.status = http.StatusInternalServerError },
		func(s *jwksServer) { s.status = http.StatusOK; s.keys = nil }, // an empty set is a failure too
	} {
		srv.set(down)
		if err := a.refreshJWKS(context.Background()); err == nil {
			t.Fatal("refreshJWKS against a broken server: got nil, want an error")
		}
		if got := authenticate(t, a, tokA); got != "" {
			t.Errorf("kid a while the server is broken: got %q, want success", got)
		}
	}
	if got, want := testutil.ToFloat64(a.metrics.jwksFailures), 2.0; got != want {
		t.Errorf("latch_jwks_refresh_failures_total: got %v, want %v", got, want)
	}
	if err := a.Ready(); err != nil {
		t.Errorf("Ready after later failures: got %v, want nil", err)
	}

	srv.Close() // connection refused from now on
	if err := a.refreshJWKS(context.Background()); err == nil {
		t.Fatal("refreshJWKS against a closed server: got nil, want an error")
	}
	a.cache.clear()
	if got := authenticate(t, a, tokA); got != "" {
		t.Errorf("kid a with the server gone: got %q, want success", got)
	}
}

// authenticateWithin runs Authenticate under a short ctx deadline, failing
// the test (instead of hanging it) if it does not return at all.
func authenticateWithin(t *testing.T, a *Authenticator, token string) (Reason, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	type result struct {
		reason Reason
		err    error
	}
	done := make(chan result, 1)
	go func() {
		_, reason, err := a.Authenticate(ctx, bearer(token))
		done <- result{reason, err}
	}()
	select {
	case r := <-done:
		return r.reason, r.err
	case <-time.After(30 * time.Second): // failure guard only
		t.Fatal("Authenticate did not return although its ctx expired")
		return "", nil
	}
}

func TestJWKSServerHangs(t *testing.T) {
	k := sharedKeys()
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, "a", claims(nil))

	t.Run("never fetched", func(t *testing.T) {
		srv := newJWKSServer(t, jwkOf(t, "a", &k.rsa.PublicKey))
		srv.set(func(s *jwksServer) { s.hang = true })
		a := newJWKSAuthenticator(t, srv.URL, newClock(), nil)
		reason, err := authenticateWithin(t, a, tok)
		if err == nil {
			t.Fatalf("got (%q, nil), want an error: the JWKS was never fetched", reason)
		}
		if !errors.Is(err, errNotReady) {
			t.Errorf("error: got %v, want %v", err, errNotReady)
		}
		if a.Ready() == nil {
			t.Error("Ready: got nil, want an error")
		}
	})
	t.Run("fetched before", func(t *testing.T) {
		srv := newJWKSServer(t, jwkOf(t, "old", &k.rsa.PublicKey))
		c := newClock()
		a := newJWKSAuthenticator(t, srv.URL, c, nil)
		if err := a.refreshJWKS(context.Background()); err != nil {
			t.Fatal(err)
		}
		srv.set(func(s *jwksServer) { s.hang = true })
		reason, err := authenticateWithin(t, a, tok)
		if err != nil || reason != ReasonUnknownKey {
			t.Errorf("got (%q, %v), want (%q, nil)", reason, err, ReasonUnknownKey)
		}
		old := sign(t, jwt.SigningMethodRS256, k.rsa, "old", claims(nil))
		if reason, err := authenticateWithin(t, a, old); err != nil || reason != "" {
			t.Errorf("known kid while the server hangs: got (%q, %v), want success", reason, err)
		}
	})
}

func TestParseJWKS(t *testing.T) {
	k := sharedKeys()
	good := jwkOf(t, "good", k.ed.Public())
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for key, v := range m {
			out[key] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	ec := jwkOf(t, "ec", &k.ec.PublicKey)
	rsaJWK := jwkOf(t, "rsa", &k.rsa.PublicKey)
	tests := []struct {
		name     string
		key      map[string]string
		wantAlgs string // "" means the key is skipped
	}{
		{"Ed25519", good, "EdDSA"},
		{"EC P-256", ec, "ES256"},
		{"EC P-384", jwkOf(t, "ec384", &k.ec384.PublicKey), "ES384"},
		{"RSA", rsaJWK, "RS256,RS384,RS512,PS256,PS384,PS512"},
		{"RSA with alg", with(rsaJWK, "alg", "RS256"), "RS256"},
		{"RSA with padded base64", with(rsaJWK, "e", "AQAB=="), "RS256,RS384,RS512,PS256,PS384,PS512"},
		{"RSA claiming ES256", with(rsaJWK, "alg", "ES256"), ""},
		{"RSA exponent even", with(rsaJWK, "e", enc([]byte{2})), ""},
		{"RSA too small", with(rsaJWK, "n", enc(k.rsa.N.Bytes()[:128])), ""},
		{"oct is never accepted", map[string]string{"kty": "oct", "kid": "s", "k": enc([]byte("0123456789abcdef0123456789abcdef"))}, ""},
		{"encryption key", with(good, "use", "enc"), ""},
		{"EC point off the curve", with(ec, "y", ec["x"]), ""},
		{"EC coordinate too short", with(ec, "x", enc([]byte{1, 2, 3})), ""},
		{"EC unknown curve", with(ec, "crv", "secp256k1"), ""},
		{"OKP X25519", with(good, "crv", "X25519"), ""},
		{"Ed25519 wrong length", with(good, "x", enc([]byte("short"))), ""},
		{"bad base64", with(good, "x", "!!!"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _ := json.Marshal(map[string]any{"keys": []any{tt.key, good}})
			keys, skipped, err := parseJWKS(doc)
			if err != nil {
				t.Fatalf("parseJWKS: %v", err)
			}
			if tt.wantAlgs == "" {
				if len(keys) != 1 || len(skipped) != 1 {
					t.Fatalf("got %d keys, %d skipped; want 1 key (the good one), 1 skipped", len(keys), len(skipped))
				}
				return
			}
			if len(keys) != 2 {
				t.Fatalf("got %d keys (skipped %q), want 2", len(keys), skipped)
			}
			if got := strings.Join(keys[0].algs, ","); got != tt.wantAlgs {
				t.Errorf("algs: got %s, want %s", got, tt.wantAlgs)
			}
		})
	}
	for _, doc := range []string{`{"keys":[]}`, `{}`, `not json`, `{"keys":[{"kty":"oct","k":"AAAA"}]}`} {
		if _, _, err := parseJWKS([]byte(doc)); err == nil {
			t.Errorf("parseJWKS(%s): got nil error, want one", doc)
		}
	}
}
