package authn

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestRefusedHeadersAndClaims (issue 12, findings 13, 14, 16): an iat in
// the future beyond the leeway, a crit header, and email_verified false
// when the subject comes from the email claim are refused; the edges
// around them pass.
func TestRefusedHeadersAndClaims(t *testing.T) {
	t.Parallel()
	k := sharedKeys()
	f := writeKeyFiles(t)
	a := newStaticAuthenticators(t, f)["asym"]
	rsa := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, k.rsa, "", c) }
	withCrit := func(crit any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil))
		tok.Header["crit"] = crit
		s, err := tok.SignedString(k.rsa)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name  string
		token string
		want  Reason
	}{
		{"iat an hour ahead", rsa(claims(map[string]any{"iat": testNow.Add(time.Hour).Unix()})), ReasonNotYetValid},
		{"iat a minute ahead (leeway 30s)", rsa(claims(map[string]any{"iat": testNow.Add(time.Minute).Unix()})), ReasonNotYetValid},
		{"iat within the leeway", rsa(claims(map[string]any{"iat": testNow.Add(10 * time.Second).Unix()})), ""},
		{"iat absent", rsa(claims(map[string]any{"iat": nil})), ""},
		{"crit naming an extension", withCrit([]string{"exp"}), ReasonMalformed},
		{"crit empty", withCrit([]string{}), ReasonMalformed},
		{"crit not a list", withCrit("b64"), ReasonMalformed},
		{"email_verified false", rsa(claims(map[string]any{"email_verified": false})), ReasonBadClaims},
		{`email_verified "false"`, rsa(claims(map[string]any{"email_verified": "false"})), ReasonBadClaims},
		{"email_verified a number", rsa(claims(map[string]any{"email_verified": 0})), ReasonBadClaims},
		{"email_verified true", rsa(claims(map[string]any{"email_verified": true})), ""},
		{"email_verified absent", rsa(claims(nil)), ""},
		// The subject is sub, not the email: email_verified says nothing about it.
		{"email_verified false, subject from sub", rsa(claims(map[string]any{"email": nil, "email_verified": false})), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, reason, err := a.Authenticate(context.Background(), bearer(tt.token))
			if err != nil || reason != tt.want {
				t.Fatalf("got (%+v, %q, %v), want reason %q", id, reason, err, tt.want)
			}
		})
	}
}

// TestEmailVerifiedOnlyForEmailSubject: with another subject claim,
// email_verified does not matter.
func TestEmailVerifiedOnlyForEmailSubject(t *testing.T) {
	t.Parallel()
	k := sharedKeys()
	f := writeKeyFiles(t)
	a, err := New(Options{PublicKeyFiles: []string{f.rsaPub}, SubjectClaim: "preferred_username", Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(map[string]any{"preferred_username": "ada", "email_verified": false}))
	if id, reason, err := a.Authenticate(context.Background(), bearer(tok)); err != nil || reason != "" || id.Subject != "ada" {
		t.Errorf("got (%+v, %q, %v), want ada accepted", id, reason, err)
	}
}

// TestSessionTokens: MintSession's token is Bound to its generation; Mint's
// is not; a gen claim in another issuer's token, or in an own token signed
// by some other key, binds nothing; a malformed gen in an own token is
// refused.
func TestSessionTokens(t *testing.T) {
	t.Parallel()
	k := sharedKeys()
	f := writeKeyFiles(t)
	for name, a := range newStaticAuthenticators(t, f) {
		t.Run(name, func(t *testing.T) {
			const gen = uint64(1<<63 + 12345) // beyond float64 precision
			login, _, err := a.MintSession("ada@example.com", []string{"admin"}, gen, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second answer comes from the cache
				id, reason, err := a.Authenticate(context.Background(), bearer(login))
				if err != nil || reason != "" || !id.Own || !id.Bound || id.Generation != gen {
					t.Fatalf("login token: got (%+v, %q, %v), want Own, Bound, Generation %d", id, reason, err, gen)
				}
			}
			zero, _, err := a.MintSession("old@example.com", nil, 0, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if id, _, _ := a.Authenticate(context.Background(), bearer(zero)); !id.Bound || id.Generation != 0 {
				t.Errorf("login token of generation 0: got %+v, want Bound", id)
			}
			op, _, err := a.Mint("ops@example.com", []string{"admin"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if id, reason, _ := a.Authenticate(context.Background(), bearer(op)); reason != "" || !id.Own || id.Bound {
				t.Errorf("operator token: got (%+v, %q), want Own and not Bound", id, reason)
			}
		})
	}
	a := newStaticAuthenticators(t, f)["asym"]
	ext := sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(map[string]any{"gen": "7"}))
	if id, reason, _ := a.Authenticate(context.Background(), bearer(ext)); reason != "" || id.Own || id.Bound {
		t.Errorf("external token with gen: got (%+v, %q), want neither Own nor Bound", id, reason)
	}
	extBad := sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(map[string]any{"gen": 7}))
	if id, reason, _ := a.Authenticate(context.Background(), bearer(extBad)); reason != "" || id.Bound {
		t.Errorf("external token with a numeric gen: got (%+v, %q), want accepted, not Bound", id, reason)
	}
	edKid := a.signing.kid
	for _, bad := range []any{7, "x", "-1", "18446744073709551616"} {
		tok := sign(t, jwt.SigningMethodEdDSA, k.ed, edKid, claims(map[string]any{"gen": bad}))
		if _, reason, _ := a.Authenticate(context.Background(), bearer(tok)); reason != ReasonBadClaims {
			t.Errorf("own token with gen %v: reason %q, want %q", bad, reason, ReasonBadClaims)
		}
	}
	// Own key without a kid: verified by a set of candidates (own Ed25519
	// key only suits EdDSA, so a lone candidate) — still Own.
	noKid := sign(t, jwt.SigningMethodEdDSA, k.ed, "", claims(map[string]any{"gen": "9"}))
	if id, reason, _ := a.Authenticate(context.Background(), bearer(noKid)); reason != "" || !id.Bound || id.Generation != 9 {
		t.Errorf("own token without kid: got (%+v, %q), want Bound 9", id, reason)
	}
}

// TestSessionTokensKeySet: when several keys suit a token's alg, only the
// own key's signature makes it Own.
func TestSessionTokensKeySet(t *testing.T) {
	t.Parallel()
	k := sharedKeys()
	f := writeKeyFiles(t)
	otherPub := writeFile(t, f.dir, "other-ed.pub.pem", pkixPEM(t, k.otherEd.Public()))
	a, err := New(Options{SigningKeyFile: f.edPriv, PublicKeyFiles: []string{otherPub}, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	other := sign(t, jwt.SigningMethodEdDSA, k.otherEd, "", claims(map[string]any{"iss": nil, "aud": nil, "gen": "5"}))
	if id, reason, _ := a.Authenticate(context.Background(), bearer(other)); reason != "" || id.Own || id.Bound {
		t.Errorf("token of the other Ed25519 key: got (%+v, %q), want accepted, neither Own nor Bound", id, reason)
	}
	own := sign(t, jwt.SigningMethodEdDSA, k.ed, "", claims(map[string]any{"iss": nil, "aud": nil, "gen": "5"}))
	if id, reason, _ := a.Authenticate(context.Background(), bearer(own)); reason != "" || !id.Own || !id.Bound || id.Generation != 5 {
		t.Errorf("token of the own key without kid: got (%+v, %q), want Own and Bound 5", id, reason)
	}
}
