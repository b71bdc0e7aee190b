package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzAuthenticate feeds arbitrary Authorization header values to an
// authenticator with an Ed25519 own key, RSA and EC public key files and an
// API tokens file. Properties: it never panics, never errors (nothing here
// can break), and never authenticates a credential that does not carry a
// valid signature from a configured key or a configured API token.
func FuzzAuthenticate(f *testing.F) {
	k := sharedKeys()
	dir := f.TempDir()
	const apiToken = "*:*.fuzz-admin"
	a, err := New(Options{
		SigningKeyFile: writeFile(f, dir, "ed.pem", pkcs8PEM(f, k.ed)),
		PublicKeyFiles: []string{
			writeFile(f, dir, "rsa.pem", pkixPEM(f, &k.rsa.PublicKey)),
			writeFile(f, dir, "ec.pem", pkixPEM(f, &k.ec.PublicKey)),
		},
		APITokensFile: writeFile(f, dir, "tokens", []byte(HashAPIToken(apiToken)+" admin admin\n")),
		Now:           func() time.Time { return testNow },
	})
	if err != nil {
		f.Fatal(err)
	}
	publicKeys := []any{k.ed.Public(), &k.rsa.PublicKey, &k.ec.PublicKey}

	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, v := range []string{
		"",
		"Bearer ",
		"Bearer",
		"bearer x",
		"Basic dXNlcjpwYXNz",
		apiToken,
		"Bearer " + apiToken,
		"*:*.abc123",
		"Bearer " + sign(f, jwt.SigningMethodEdDSA, k.ed, a.signing.kid, claims(nil)),
		sign(f, jwt.SigningMethodEdDSA, k.ed, "", claims(nil)),
		"Bearer " + sign(f, jwt.SigningMethodRS256, k.rsa, "kid", claims(nil)),
		"Bearer " + sign(f, jwt.SigningMethodPS384, k.rsa, "", claims(nil)),
		"Bearer " + sign(f, jwt.SigningMethodES256, k.ec, "", claims(nil)),
		"Bearer " + sign(f, jwt.SigningMethodEdDSA, k.ed, "", claims(map[string]any{"exp": nil})),
		"Bearer " + sign(f, jwt.SigningMethodHS256, pkixPEM(f, &k.rsa.PublicKey), "", claims(nil)),
		"Bearer " + none,
		"Bearer e30.e30.",
		"Bearer a.b.c.d",
		strings.Repeat(".", 100),
		"Bearer \x00\xff",
	} {
		f.Add(v, false)
	}
	f.Add("Bearer x", true)

	f.Fuzz(func(t *testing.T, value string, twice bool) {
		h := http.Header{"Authorization": {value}}
		if twice {
			h.Add("Authorization", value)
		}
		id, reason, err := a.Authenticate(context.Background(), h)
		if err != nil {
			t.Fatalf("Authenticate(%q): unexpected error %v", value, err)
		}
		if reason != "" {
			if id.Subject != "" || id.Kind != "" {
				t.Fatalf("denied with a non-zero identity %+v", id)
			}
			return
		}
		if twice {
			t.Fatal("authenticated with two Authorization headers")
		}
		token := strings.TrimSpace(value)
		if scheme, rest, ok := strings.Cut(token, " "); ok && strings.EqualFold(scheme, "bearer") {
			token = strings.TrimSpace(rest)
		}
		switch id.Kind {
		case KindAPIToken:
			if HashAPIToken(token) != HashAPIToken(apiToken) {
				t.Fatalf("authenticated API token %q that is not configured", token)
			}
		case KindJWT:
			if !independentlyVerified(token, publicKeys) {
				t.Fatalf("authenticated JWT %q without a valid signature from a configured key", token)
			}
		default:
			t.Fatalf("authenticated with kind %q", id.Kind)
		}
		if id.Subject == "" {
			t.Fatal("authenticated with an empty subject")
		}
	})
}

// independentlyVerified checks token's signature against keys without the
// code under test: some key must verify it under the alg in its header, and
// "none" and HMAC algorithms never count.
func independentlyVerified(token string, keys []any) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	rawHeader, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(rawHeader, &header) != nil {
		return false
	}
	method := jwt.GetSigningMethod(header.Alg)
	if method == nil || header.Alg == "none" || strings.HasPrefix(header.Alg, "HS") {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	for _, key := range keys {
		if method.Verify(parts[0]+"."+parts[1], sig, key) == nil {
			return true
		}
	}
	return false
}
