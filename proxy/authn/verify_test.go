package authn

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// newStaticAuthenticators builds the two authenticators the table uses: one
// with an Ed25519 own key plus RSA and EC public key files, one with an HMAC
// own key plus the RSA public key file.
func newStaticAuthenticators(t *testing.T, f keyFiles) map[string]*Authenticator {
	t.Helper()
	base := Options{
		Issuer:   "https://issuer.test",
		Audience: "latch-test",
		Now:      newClock().Now,
	}
	asym := base
	asym.SigningKeyFile = f.edPriv
	asym.PublicKeyFiles = []string{f.rsaPub, f.ecCert}
	hmac := base
	hmac.SigningKeyFile = f.hmac
	hmac.PublicKeyFiles = []string{f.rsaPub}
	out := map[string]*Authenticator{}
	for name, o := range map[string]Options{"asym": asym, "hmac": hmac} {
		a, err := New(o)
		if err != nil {
			t.Fatalf("New(%s): %v", name, err)
		}
		out[name] = a
	}
	return out
}

func TestAuthenticate(t *testing.T) {
	k := sharedKeys()
	f := writeKeyFiles(t)
	auths := newStaticAuthenticators(t, f)
	edKid := auths["asym"].signing.kid

	ed := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodEdDSA, k.ed, edKid, c) }
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	rsaConfusion := sign(t, jwt.SigningMethodHS256, []byte(f.rsaPubPEM), "", claims(nil))
	valid := ed(claims(nil))
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, parts[2])

	tests := []struct {
		name      string
		auth      string // "asym" (default) or "hmac"
		header    http.Header
		want      Reason
		wantSub   string
		wantRoles []string
	}{
		{name: "no header", header: http.Header{}, want: ReasonMissing},
		{name: "two Authorization headers", header: http.Header{"Authorization": {"Bearer " + valid, "Bearer " + valid}}, want: ReasonMultiple},
		{name: "empty header", header: http.Header{"Authorization": {""}}, want: ReasonEmpty},
		{name: "blank header", header: http.Header{"Authorization": {"   "}}, want: ReasonEmpty},
		{name: "Bearer and nothing", header: http.Header{"Authorization": {"Bearer "}}, want: ReasonEmpty},
		{name: "Bearer and spaces", header: http.Header{"Authorization": {"bearer    "}}, want: ReasonEmpty},
		{name: "1 MiB token", header: bearer(strings.Repeat("a", 1<<20)), want: ReasonTooLong},
		{name: "just over 8 KiB", header: bearer(strings.Repeat("a", maxTokenLen+1)), want: ReasonTooLong},
		{name: "10,000 dots is too long before it is malformed", header: bearer(strings.Repeat(".", 10000)), want: ReasonTooLong},
		{name: "4,000 dots", header: bearer(strings.Repeat(".", 4000)), want: ReasonMalformed},
		{name: "4,000 segments", header: bearer(strings.Repeat("a.", 4000)), want: ReasonMalformed},
		{name: "Basic credentials", header: http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, want: ReasonMalformed},
		{name: "API token without tokens file", header: http.Header{"Authorization": {"*:*.abc123"}}, want: ReasonMalformed},
		{name: "JWT shape, header not JSON", header: bearer("aGVsbG8.aGVsbG8.aGVsbG8"), want: ReasonMalformed},
		{name: "alg none", header: bearer(none), want: ReasonBadSignature},
		{name: "HS256 signed with the RSA public key PEM", header: bearer(rsaConfusion), want: ReasonBadSignature},
		{name: "HS256 signed with the RSA public key PEM, HMAC configured", auth: "hmac", header: bearer(rsaConfusion), want: ReasonBadSignature},
		{name: "tampered signature", header: bearer(tampered), want: ReasonBadSignature},
		{name: "signed by an unconfigured key", header: bearer(sign(t, jwt.SigningMethodEdDSA, k.otherEd, "", claims(nil))), want: ReasonBadSignature},
		{name: "own kid with another alg", header: bearer(sign(t, jwt.SigningMethodRS256, k.rsa, edKid, claims(nil))), want: ReasonBadSignature},
		{name: "unknown kid", header: bearer(sign(t, jwt.SigningMethodEdDSA, k.otherEd, "no-such-kid", claims(nil))), want: ReasonUnknownKey},
		{name: "unknown kid, alg no key has", header: bearer(sign(t, jwt.SigningMethodES384, k.ec384, "no-such-kid", claims(nil))), want: ReasonBadSignature},
		{name: "unknown kid, verified by a public key file", header: bearer(sign(t, jwt.SigningMethodRS256, k.rsa, "their-kid", claims(nil))), wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "expired", header: bearer(ed(claims(map[string]any{"exp": testNow.Add(-time.Hour).Unix()}))), want: ReasonExpired},
		{name: "expired but within leeway", header: bearer(ed(claims(map[string]any{"exp": testNow.Add(-10 * time.Second).Unix()}))), wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "nbf in the future", header: bearer(ed(claims(map[string]any{"nbf": testNow.Add(time.Hour).Unix()}))), want: ReasonNotYetValid},
		{name: "nbf within leeway", header: bearer(ed(claims(map[string]any{"nbf": testNow.Add(10 * time.Second).Unix()}))), wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "wrong iss", header: bearer(ed(claims(map[string]any{"iss": "https://evil.test"}))), want: ReasonBadIssuer},
		{name: "missing iss", header: bearer(ed(claims(map[string]any{"iss": nil}))), want: ReasonBadIssuer},
		{name: "missing aud", header: bearer(ed(claims(map[string]any{"aud": nil}))), want: ReasonBadAudience},
		{name: "missing exp and iss", header: bearer(ed(claims(map[string]any{"exp": nil, "iss": nil}))), want: ReasonBadClaims},
		{name: "wrong aud", header: bearer(ed(claims(map[string]any{"aud": []string{"other"}}))), want: ReasonBadAudience},
		{name: "aud list containing ours", header: bearer(ed(claims(map[string]any{"aud": []string{"other", "latch-test"}}))), wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "missing exp", header: bearer(ed(claims(map[string]any{"exp": nil}))), want: ReasonBadClaims},
		{name: "exp zero", header: bearer(ed(claims(map[string]any{"exp": 0}))), want: ReasonExpired},
		{name: "exp not a number", header: bearer(ed(claims(map[string]any{"exp": "tomorrow"}))), want: ReasonMalformed},
		{name: "no subject at all", header: bearer(ed(claims(map[string]any{"sub": nil, "email": nil}))), want: ReasonBadClaims},
		{name: "subject falls back to sub", header: bearer(ed(claims(map[string]any{"email": nil}))), wantSub: "user-123", wantRoles: []string{"reader", "writer"}},
		{name: "empty email falls back to sub", header: bearer(ed(claims(map[string]any{"email": ""}))), wantSub: "user-123", wantRoles: []string{"reader", "writer"}},
		{name: "email not a string", header: bearer(ed(claims(map[string]any{"email": 42}))), want: ReasonBadClaims},
		{name: "roles absent", header: bearer(ed(claims(map[string]any{"roles": nil}))), wantSub: "ada@example.com"},
		{name: "roles a string", header: bearer(ed(claims(map[string]any{"roles": "admin"}))), want: ReasonBadClaims},
		{name: "roles with a number", header: bearer(ed(claims(map[string]any{"roles": []any{"a", 1}}))), want: ReasonBadClaims},
		{name: "roles with an empty role", header: bearer(ed(claims(map[string]any{"roles": []string{"a", ""}}))), want: ReasonBadClaims},
		{name: "EdDSA own key", header: bearer(valid), wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "EdDSA own key, lowercase scheme", header: http.Header{"Authorization": {"bearer " + valid}}, wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "EdDSA own key, bare token", header: http.Header{"Authorization": {valid}}, wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "EdDSA own key without kid", header: bearer(sign(t, jwt.SigningMethodEdDSA, k.ed, "", claims(nil))), wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "HS256 own key", auth: "hmac", header: bearer(sign(t, jwt.SigningMethodHS256, k.hmac, "", claims(nil))), wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "HS256 not accepted without an HMAC key", header: bearer(sign(t, jwt.SigningMethodHS256, k.hmac, "", claims(nil))), want: ReasonBadSignature},
		{name: "HS512 with the own HMAC key", auth: "hmac", header: bearer(sign(t, jwt.SigningMethodHS512, k.hmac, "", claims(nil))), want: ReasonBadSignature},
		{name: "RS256 public key file", header: bearer(sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil))), wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "PS256 public key file", header: bearer(sign(t, jwt.SigningMethodPS256, k.rsa, "", claims(nil))), wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "ES256 certificate file", header: bearer(sign(t, jwt.SigningMethodES256, k.ec, "", claims(nil))), wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "ES256 key claimed as ES384", header: bearer(sign(t, jwt.SigningMethodES384, k.ec384, "", claims(nil))), want: ReasonBadSignature},
		{name: "RS256 in the HMAC setup", auth: "hmac", header: bearer(sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil))), wantSub: "ada@example.com", wantRoles: []string{"reader", "writer"}},
		{name: "kid that is not a string", header: bearer(func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims(nil))
			tok.Header["kid"] = 7
			s, err := tok.SignedString(k.ed)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}()), want: ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.auth
			if name == "" {
				name = "asym"
			}
			id, reason, err := auths[name].Authenticate(context.Background(), tt.header)
			if err != nil {
				t.Fatalf("Authenticate: unexpected error %v", err)
			}
			if reason != tt.want {
				t.Fatalf("reason: got %q, want %q", reason, tt.want)
			}
			if tt.want != "" {
				if id.Subject != "" || id.Kind != "" {
					t.Errorf("denied identity: got %+v, want zero", id)
				}
				return
			}
			if tt.wantSub != "" && id.Subject != tt.wantSub {
				t.Errorf("subject: got %q, want %q", id.Subject, tt.wantSub)
			}
			if !slices.Equal(id.Roles, tt.wantRoles) {
				t.Errorf("roles: got %q, want %q", id.Roles, tt.wantRoles)
			}
			if id.Kind != KindJWT {
				t.Errorf("kind: got %q, want %q", id.Kind, KindJWT)
			}
			if id.ExpiresAt.IsZero() {
				t.Errorf("ExpiresAt is zero")
			}
		})
	}
}

func TestAuthenticateCustomClaims(t *testing.T) {
	k := sharedKeys()
	f := writeKeyFiles(t)
	a, err := New(Options{
		SigningKeyFile: f.edPriv,
		SubjectClaim:   "preferred_username",
		RolesClaim:     "https://example.com/groups",
		Now:            newClock().Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		claims    jwt.MapClaims
		want      Reason
		wantSub   string
		wantRoles []string
	}{
		{"configured claims", claims(map[string]any{"preferred_username": "ada", "https://example.com/groups": []string{"ops"}}), "", "ada", []string{"ops"}},
		{"falls back to sub, ignores email and roles", claims(nil), "", "user-123", nil},
		{"iss and aud not checked when unset", claims(map[string]any{"iss": "anyone", "aud": "anything"}), "", "user-123", nil},
		{"groups claim wrong type", claims(map[string]any{"https://example.com/groups": map[string]any{"a": 1}}), ReasonBadClaims, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, reason, err := a.Authenticate(context.Background(), bearer(sign(t, jwt.SigningMethodEdDSA, k.ed, "", tt.claims)))
			if err != nil || reason != tt.want {
				t.Fatalf("got (%q, %v), want (%q, nil)", reason, err, tt.want)
			}
			if id.Subject != tt.wantSub || !slices.Equal(id.Roles, tt.wantRoles) {
				t.Errorf("got %q %q, want %q %q", id.Subject, id.Roles, tt.wantSub, tt.wantRoles)
			}
		})
	}
}

func TestReasonMessages(t *testing.T) {
	seen := map[string]Reason{}
	for _, r := range Reasons() {
		m := r.Message()
		if m == Reason("").Message() {
			t.Errorf("%q has the generic message", r)
		}
		if prev, dup := seen[m]; dup {
			t.Errorf("%q and %q share the message %q", r, prev, m)
		}
		seen[m] = r
	}
	if got, want := len(Reasons()), 13; got != want {
		t.Errorf("len(Reasons()): got %d, want %d", got, want)
	}
}
