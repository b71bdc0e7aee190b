package authn

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestMintRoundTrip(t *testing.T) {
	f := writeKeyFiles(t)
	for _, tt := range []struct {
		name, keyFile, wantAlg string
	}{
		{"Ed25519", f.edPriv, "EdDSA"},
		{"HMAC", f.hmac, "HS256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			a, err := New(Options{SigningKeyFile: tt.keyFile, Issuer: "https://latch.test", Audience: "app", Now: c.Now})
			if err != nil {
				t.Fatal(err)
			}
			token, exp, err := a.Mint("ada@example.com", []string{"admin"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if want := testNow.Add(time.Hour); !exp.Equal(want) {
				t.Errorf("exp: got %v, want %v", exp, want)
			}
			id, reason, err := a.Authenticate(context.Background(), bearer(token))
			if err != nil || reason != "" {
				t.Fatalf("Authenticate(minted): got (%q, %v), want success", reason, err)
			}
			want := Identity{Subject: "ada@example.com", Roles: []string{"admin"}, Kind: KindJWT, IssuedAt: testNow, ExpiresAt: exp}
			if id.Subject != want.Subject || !slices.Equal(id.Roles, want.Roles) || id.Kind != want.Kind ||
				!id.IssuedAt.Equal(want.IssuedAt) || !id.ExpiresAt.Equal(want.ExpiresAt) {
				t.Errorf("identity: got %+v, want %+v", id, want)
			}

			var got jwt.MapClaims
			tok, _, err := jwt.NewParser().ParseUnverified(token, &got)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Method.Alg() != tt.wantAlg {
				t.Errorf("alg: got %s, want %s", tok.Method.Alg(), tt.wantAlg)
			}
			if tok.Header["kid"] != a.signing.kid {
				t.Errorf("kid: got %v, want %v", tok.Header["kid"], a.signing.kid)
			}
			for claim, want := range map[string]any{"iss": "https://latch.test", "aud": "app", "sub": "ada@example.com", "email": "ada@example.com"} {
				if got[claim] != want {
					t.Errorf("%s: got %v, want %v", claim, got[claim], want)
				}
			}
			for _, claim := range []string{"iat", "nbf", "exp", "jti", "roles"} {
				if _, ok := got[claim]; !ok {
					t.Errorf("claim %s missing", claim)
				}
			}

			// The minted token expires like any other.
			c.Advance(time.Hour + DefaultLeeway + time.Second)
			if _, reason, _ := a.Authenticate(context.Background(), bearer(token)); reason != ReasonExpired {
				t.Errorf("after exp: got %q, want %q", reason, ReasonExpired)
			}
		})
	}
}

func TestMintErrors(t *testing.T) {
	f := writeKeyFiles(t)
	a, err := New(Options{PublicKeyFiles: []string{f.rsaPub}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Mint("ada", nil, time.Hour); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("Mint without a signing key: got %v, want %v", err, ErrNoSigningKey)
	}
	b, err := New(Options{SigningKeyFile: f.edPriv})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Mint("", nil, time.Hour); err == nil {
		t.Error("Mint with an empty subject: got nil, want an error")
	}
	if _, _, err := b.Mint("ada", nil, 0); err == nil {
		t.Error("Mint with a zero ttl: got nil, want an error")
	}
	// Defaults: iss and aud are written even when not configured, and the
	// token round-trips with no roles.
	token, _, err := b.Mint("ada", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	id, reason, err := b.Authenticate(context.Background(), bearer(token))
	if err != nil || reason != "" || len(id.Roles) != 0 {
		t.Errorf("Authenticate: got (%+v, %q, %v)", id, reason, err)
	}
}

// TestIssuedAtPrecision: latch's own tokens carry their issue time to the
// nanosecond (iat_ns), so a token minted just after a password change can be
// told from one minted just before; an iat_ns outside iat's second is ignored.
func TestIssuedAtPrecision(t *testing.T) {
	f := writeKeyFiles(t)
	c := newClock()
	c.Advance(300 * time.Millisecond)
	a, err := New(Options{SigningKeyFile: f.hmac, Issuer: "https://latch.test", Audience: "app", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := a.Mint("ada@example.com", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, reason, err := a.Authenticate(context.Background(), bearer(token))
	if err != nil || reason != "" {
		t.Fatalf("Authenticate: %q %v", reason, err)
	}
	if want := testNow.Add(300 * time.Millisecond); !id.IssuedAt.Equal(want) {
		t.Errorf("IssuedAt: got %v, want %v (to the nanosecond)", id.IssuedAt, want)
	}

	// A signer's iat_ns that is not within iat's second does not move iat.
	secret := sharedKeys().hmac
	for _, ns := range []any{testNow.Add(-time.Hour).UnixNano(), testNow.Add(2 * time.Second).UnixNano(), "soon"} {
		forged := sign(t, jwt.SigningMethodHS256, secret, "", jwt.MapClaims{
			"iss": "https://latch.test", "aud": "app", "sub": "ada@example.com",
			"iat": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix(), "iat_ns": ns,
		})
		id, reason, err := a.Authenticate(context.Background(), bearer(forged))
		if err != nil || reason != "" {
			t.Fatalf("Authenticate(iat_ns %v): %q %v", ns, reason, err)
		}
		if !id.IssuedAt.Equal(testNow) {
			t.Errorf("iat_ns %v: IssuedAt %v, want iat %v", ns, id.IssuedAt, testNow)
		}
	}
}

// TestIssuedAtPrecisionOwnOnly: another issuer's iat_ns is not trusted,
// even within iat's second: its tokens keep one-second precision, so the
// session check refuses one from the second of a password change.
func TestIssuedAtPrecisionOwnOnly(t *testing.T) {
	f := writeKeyFiles(t)
	a, err := New(Options{SigningKeyFile: f.hmac, PublicKeyFiles: []string{f.rsaPub}, Issuer: "https://latch.test",
		Audience: "app", Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	external := sign(t, jwt.SigningMethodRS256, sharedKeys().rsa, "", jwt.MapClaims{
		"iss": "https://latch.test", "aud": "app", "sub": "ada@example.com",
		"iat": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix(), "iat_ns": testNow.UnixNano() + 999_999_999,
	})
	id, reason, err := a.Authenticate(context.Background(), bearer(external))
	if err != nil || reason != "" {
		t.Fatalf("Authenticate: %q %v", reason, err)
	}
	if !id.IssuedAt.Equal(testNow) {
		t.Errorf("an external token's IssuedAt is %v, want its iat %v (iat_ns ignored)", id.IssuedAt, testNow)
	}
}
