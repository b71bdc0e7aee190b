package authn

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const upstreamAud = "https://upstream.test"

// newUpstreamAuthenticator is latch with its Ed25519 key, on clock c.
func newUpstreamAuthenticator(t testing.TB, keyFile string, c *clock) *Authenticator {
	t.Helper()
	a, err := New(Options{SigningKeyFile: keyFile, Issuer: "https://latch.test", Audience: "latch-app", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// publicKeyFromJWKS decodes the single key of doc by hand, as an upstream
// would, and checks its members.
func publicKeyFromJWKS(t *testing.T, doc []byte) (ed25519.PublicKey, string) {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("JWKS is not JSON: %v\n%s", err, doc)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS keys: got %d, want 1\n%s", len(set.Keys), doc)
	}
	k := set.Keys[0]
	for member, want := range map[string]string{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig"} {
		if k[member] != want {
			t.Errorf("JWK %s: got %v, want %q", member, k[member], want)
		}
	}
	if len(k) != 6 {
		t.Errorf("JWK members: got %v, want kty, crv, x, kid, alg and use only (no private d)", k)
	}
	x, _ := k["x"].(string)
	raw, err := base64.RawURLEncoding.DecodeString(x)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		t.Fatalf("JWK x %q: %d bytes, err %v; want %d bytes of base64url", x, len(raw), err, ed25519.PublicKeySize)
	}
	kid, _ := k["kid"].(string)
	if kid == "" {
		t.Fatal("JWK kid is empty")
	}
	return ed25519.PublicKey(raw), kid
}

// upstreamView is what an upstream parses a handed-off token into.
type upstreamView struct {
	jwt.RegisteredClaims
	Email string   `json:"email"`
	Roles []string `json:"roles"`
}

// parseAsUpstream verifies token as an upstream would: with the key from
// the JWKS and every check golang-jwt offers.
func parseAsUpstream(t *testing.T, token string, pub ed25519.PublicKey, kid, iss, aud string, now func() time.Time) (*upstreamView, *jwt.Token, error) {
	t.Helper()
	var got upstreamView
	tok, err := jwt.ParseWithClaims(token, &got, func(tok *jwt.Token) (any, error) {
		if tok.Header["kid"] != kid {
			return nil, fmt.Errorf("kid %v, want %q", tok.Header["kid"], kid)
		}
		return pub, nil
	},
		jwt.WithValidMethods([]string{"EdDSA"}),
		jwt.WithIssuer(iss),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	)
	return &got, tok, err
}

func TestMintUpstreamVerifiesWithJWKS(t *testing.T) {
	f := writeKeyFiles(t)
	c := newClock()
	a := newUpstreamAuthenticator(t, f.edPriv, c)
	doc, err := a.JWKS()
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	pub, kid := publicKeyFromJWKS(t, doc)
	if !pub.Equal(sharedKeys().ed.Public()) {
		t.Error("JWKS x is not latch's public key")
	}

	token, exp, err := a.MintUpstream("ada@example.com", []string{"admin", "viewer"}, upstreamAud, 5*time.Minute)
	if err != nil {
		t.Fatalf("MintUpstream: %v", err)
	}
	if want := testNow.Add(5 * time.Minute); !exp.Equal(want) {
		t.Errorf("exp: got %v, want %v", exp, want)
	}
	got, tok, err := parseAsUpstream(t, token, pub, kid, "https://latch.test", upstreamAud, c.Now)
	if err != nil {
		t.Fatalf("verify with the JWKS key: %v", err)
	}
	if tok.Header["alg"] != "EdDSA" {
		t.Errorf("alg: got %v, want EdDSA", tok.Header["alg"])
	}
	if got.Subject != "ada@example.com" || got.Email != "ada@example.com" || !slices.Equal(got.Roles, []string{"admin", "viewer"}) {
		t.Errorf("sub, email, roles: got %q, %q, %q; want ada@example.com twice and [admin viewer]", got.Subject, got.Email, got.Roles)
	}
	if !slices.Equal(got.Audience, jwt.ClaimStrings{upstreamAud}) {
		t.Errorf("aud: got %q, want [%q]", got.Audience, upstreamAud)
	}
	if !got.ExpiresAt.Equal(exp) || !got.IssuedAt.Equal(testNow) || !got.NotBefore.Equal(testNow) {
		t.Errorf("exp, iat, nbf: got %v, %v, %v; want %v, %v, %v", got.ExpiresAt, got.IssuedAt, got.NotBefore, exp, testNow, testNow)
	}
	if len(got.ID) != 32 {
		t.Errorf("jti: got %q, want 32 hex digits", got.ID)
	}

	// aud is an array and roles one even when empty; no email without '@'.
	token, _, err = a.MintUpstream("ci-deploy", nil, upstreamAud, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		t.Fatal(err)
	}
	if aud, ok := raw["aud"].([]any); !ok || len(aud) != 1 || aud[0] != upstreamAud {
		t.Errorf("aud in the payload: got %#v, want [%q]", raw["aud"], upstreamAud)
	}
	if roles, ok := raw["roles"].([]any); !ok || len(roles) != 0 {
		t.Errorf("roles in the payload: got %#v, want []", raw["roles"])
	}
	if _, ok := raw["email"]; ok {
		t.Errorf("email for a subject without '@': got %v, want none", raw["email"])
	}

	// The checks bite: another audience, another issuer, or later than exp.
	for _, tt := range []struct {
		name, iss, aud string
		now            func() time.Time
		want           error
	}{
		{"another audience", "https://latch.test", "https://other.test", c.Now, jwt.ErrTokenInvalidAudience},
		{"another issuer", "https://evil.test", upstreamAud, c.Now, jwt.ErrTokenInvalidIssuer},
		{"after exp", "https://latch.test", upstreamAud, func() time.Time { return testNow.Add(6 * time.Minute) }, jwt.ErrTokenExpired},
	} {
		if _, _, err := parseAsUpstream(t, token, pub, kid, tt.iss, tt.aud, tt.now); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestMintUpstreamDefaultIssuer: without Options.Issuer the token says
// DefaultIssuer, as latch's own tokens do.
func TestMintUpstreamDefaultIssuer(t *testing.T) {
	f := writeKeyFiles(t)
	c := newClock()
	a, err := New(Options{SigningKeyFile: f.edPriv, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := a.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	pub, kid := publicKeyFromJWKS(t, doc)
	token, _, err := a.MintUpstream("ada@example.com", nil, upstreamAud, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := parseAsUpstream(t, token, pub, kid, DefaultIssuer, upstreamAud, c.Now); err != nil {
		t.Errorf("verify with iss %q: %v", DefaultIssuer, err)
	}
}

// TestMintUpstreamAcceptedByJWKSVerifier: an Authenticator configured with
// latch's JWKS URL, as an upstream running latch would be, accepts the token.
func TestMintUpstreamAcceptedByJWKSVerifier(t *testing.T) {
	f := writeKeyFiles(t)
	c := newClock()
	a := newUpstreamAuthenticator(t, f.edPriv, c)
	doc, err := a.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(doc)
	}))
	t.Cleanup(srv.Close)

	upstream, err := New(Options{JWKSURL: srv.URL + "/.latch/jwks.json", Issuer: "https://latch.test", Audience: upstreamAud, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := upstream.refreshJWKS(context.Background()); err != nil {
		t.Fatalf("fetch latch's JWKS: %v", err)
	}
	token, exp, err := a.MintUpstream("ada@example.com", []string{"admin", "viewer"}, upstreamAud, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	id, reason, err := upstream.Authenticate(context.Background(), bearer(token))
	if err != nil || reason != "" {
		t.Fatalf("Authenticate at the upstream: got (%q, %v), want success", reason, err)
	}
	if id.Subject != "ada@example.com" || !slices.Equal(id.Roles, []string{"admin", "viewer"}) ||
		id.Kind != KindJWT || !id.ExpiresAt.Equal(exp) || id.Own || id.Bound {
		t.Errorf("identity at the upstream: got %+v", id)
	}

	// An upstream expecting another audience refuses it.
	other, err := New(Options{JWKSURL: srv.URL, Issuer: "https://latch.test", Audience: "https://other.test", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.refreshJWKS(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, reason, err := other.Authenticate(context.Background(), bearer(token)); err != nil || reason != ReasonBadAudience {
		t.Errorf("Authenticate for another audience: got (%q, %v), want %q", reason, err, ReasonBadAudience)
	}
}

// TestMintUpstreamNotACredentialForLatch: a token handed to the upstream
// cannot be replayed to latch, whatever latch's own audience; and latch
// refuses to mint one for its own audience.
func TestMintUpstreamNotACredentialForLatch(t *testing.T) {
	f := writeKeyFiles(t)
	for _, tt := range []struct {
		name, audience, upstream string
	}{
		{"audience configured", "latch-app", upstreamAud},
		{"audience not configured", "", upstreamAud},
		{"upstream audience is latch's default, latch's is configured", "latch-app", DefaultAudience},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(Options{SigningKeyFile: f.edPriv, Audience: tt.audience, Now: newClock().Now})
			if err != nil {
				t.Fatal(err)
			}
			token, _, err := a.MintUpstream("ada@example.com", []string{"admin"}, tt.upstream, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if _, reason, err := a.Authenticate(context.Background(), bearer(token)); err != nil || reason != ReasonBadAudience {
				t.Errorf("latch authenticating its own upstream token: got (%q, %v), want %q", reason, err, ReasonBadAudience)
			}
			// latch's own login tokens still pass.
			login, _, err := a.MintSession("ada@example.com", nil, 3, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if _, reason, err := a.Authenticate(context.Background(), bearer(login)); err != nil || reason != "" {
				t.Errorf("login token: got (%q, %v), want success", reason, err)
			}
		})
	}
	for _, tt := range []struct{ configured, audience string }{{"latch-app", "latch-app"}, {"", DefaultAudience}} {
		a, err := New(Options{SigningKeyFile: f.edPriv, Audience: tt.configured})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.MintUpstream("ada@example.com", nil, tt.audience, time.Minute); err == nil {
			t.Errorf("MintUpstream for latch's own audience %q: got nil, want an error", tt.audience)
		}
	}
}

func TestMintUpstreamNeedsEd25519(t *testing.T) {
	f := writeKeyFiles(t)
	hmac, err := New(Options{SigningKeyFile: f.hmac})
	if err != nil {
		t.Fatal(err)
	}
	none, err := New(Options{PublicKeyFiles: []string{f.rsaPub}})
	if err != nil {
		t.Fatal(err)
	}
	ed, err := New(Options{SigningKeyFile: f.edPriv})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		a    *Authenticator
		can  bool
		want error
	}{
		{"HMAC secret", hmac, false, ErrHMACSigningKey},
		{"no signing key", none, false, ErrNoSigningKey},
		{"Ed25519", ed, true, nil},
	} {
		if got := tt.a.CanPublish(); got != tt.can {
			t.Errorf("%s: CanPublish: got %v, want %v", tt.name, got, tt.can)
		}
		doc, err := tt.a.JWKS()
		if !errors.Is(err, tt.want) || (err != nil) != (doc == nil) {
			t.Errorf("%s: JWKS: got (%d bytes, %v), want %v", tt.name, len(doc), err, tt.want)
		}
		token, _, err := tt.a.MintUpstream("ada@example.com", nil, upstreamAud, time.Minute)
		if !errors.Is(err, tt.want) || (err != nil) != (token == "") {
			t.Errorf("%s: MintUpstream: got (%q, %v), want %v", tt.name, token, err, tt.want)
		}
	}
}

func TestMintUpstreamBadArguments(t *testing.T) {
	f := writeKeyFiles(t)
	a := newUpstreamAuthenticator(t, f.edPriv, newClock())
	for _, tt := range []struct {
		name, sub, aud string
		ttl            time.Duration
	}{
		{"empty subject", "", upstreamAud, time.Minute},
		{"empty audience", "ada", "", time.Minute},
		{"zero ttl", "ada", upstreamAud, 0},
		{"ttl under a second", "ada", upstreamAud, 999 * time.Millisecond},
	} {
		if token, _, err := a.MintUpstream(tt.sub, nil, tt.aud, tt.ttl); err == nil {
			t.Errorf("%s: got %q, want an error", tt.name, token)
		}
	}
}

func TestMintUpstreamCache(t *testing.T) {
	f := writeKeyFiles(t)
	c := newClock()
	a := newUpstreamAuthenticator(t, f.edPriv, c)
	const ttl = 10 * time.Minute
	roles := []string{"admin", "viewer"}
	mint := func(sub string, roles []string, aud string, ttl time.Duration) (string, time.Time) {
		t.Helper()
		token, exp, err := a.MintUpstream(sub, roles, aud, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return token, exp
	}

	first, exp := mint("ada@example.com", roles, upstreamAud, ttl)
	roles[0] = "nobody" // the caller's slice is not kept
	roles = []string{"admin", "viewer"}
	c.Advance(ttl/2 - time.Second)
	if got, gotExp := mint("ada@example.com", roles, upstreamAud, ttl); got != first || !gotExp.Equal(exp) {
		t.Errorf("within half the ttl: got a new token (exp %v), want the first (exp %v)", gotExp, exp)
	}

	for _, tt := range []struct {
		name, sub string
		roles     []string
		aud       string
		ttl       time.Duration
	}{
		{"other roles", "ada@example.com", []string{"admin"}, upstreamAud, ttl},
		{"roles in another order", "ada@example.com", []string{"viewer", "admin"}, upstreamAud, ttl},
		{"roles split differently", "ada@example.com", []string{"adminviewer"}, upstreamAud, ttl},
		{"no roles", "ada@example.com", nil, upstreamAud, ttl},
		{"other subject", "bob@example.com", roles, upstreamAud, ttl},
		{"other audience", "ada@example.com", roles, "https://other.test", ttl},
		{"other ttl", "ada@example.com", roles, upstreamAud, time.Hour},
	} {
		if got, _ := mint(tt.sub, tt.roles, tt.aud, tt.ttl); got == first {
			t.Errorf("%s: got the first token, want another", tt.name)
		}
	}

	c.Advance(time.Second) // half the ttl has passed
	second, exp2 := mint("ada@example.com", roles, upstreamAud, ttl)
	if second == first {
		t.Fatal("after half the ttl: got the first token, want a new one")
	}
	if want := testNow.Add(ttl/2 + ttl); !exp2.Equal(want) {
		t.Errorf("exp of the new token: got %v, want %v", exp2, want)
	}
	c.Advance(ttl/2 - time.Second)
	if got, _ := mint("ada@example.com", roles, upstreamAud, ttl); got != second {
		t.Error("within half the ttl of the new token: got another, want it")
	}

	// A clock that went back before the token's iat makes a new one.
	c.Advance(-ttl)
	if got, _ := mint("ada@example.com", roles, upstreamAud, ttl); got == second {
		t.Error("clock before the cached token's iat: got the cached token, want a new one")
	}
}

func TestMintUpstreamCacheBounded(t *testing.T) {
	f := writeKeyFiles(t)
	a := newUpstreamAuthenticator(t, f.edPriv, newClock())
	a.upstream = newUpstreamCache(3)
	for i := range 3 {
		if _, _, err := a.MintUpstream("user"+strconv.Itoa(i), nil, upstreamAud, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.upstream.len(); got != 3 {
		t.Fatalf("entries: got %d, want 3", got)
	}
	if _, _, err := a.MintUpstream("user3", nil, upstreamAud, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := a.upstream.len(); got != 1 {
		t.Errorf("entries after the cache was full: got %d, want 1 (started over)", got)
	}
}

// TestMintUpstreamConcurrent mints from many goroutines while the clock
// moves (run with -race); every token must verify and name its own subject.
func TestMintUpstreamConcurrent(t *testing.T) {
	f := writeKeyFiles(t)
	c := newClock()
	a := newUpstreamAuthenticator(t, f.edPriv, c)
	doc, err := a.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	pub, kid := publicKeyFromJWKS(t, doc)

	const workers, calls = 8, 200
	errs := make(chan error, workers*calls)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				if w == 0 && i%20 == 0 {
					c.Advance(10 * time.Second)
				}
				sub := fmt.Sprintf("user%d@example.com", i%5)
				roles := []string{"r" + strconv.Itoa(w%3)}
				token, _, err := a.MintUpstream(sub, roles, upstreamAud, 2*time.Minute)
				if err != nil {
					errs <- err
					continue
				}
				got, _, err := parseAsUpstream(t, token, pub, kid, "https://latch.test", upstreamAud, c.Now)
				switch {
				case err != nil:
					errs <- err
				case got.Subject != sub || !slices.Equal(got.Roles, roles):
					errs <- fmt.Errorf("got %s %v, want %s %v", got.Subject, got.Roles, sub, roles)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkMintUpstream compares a token served from the cache with one
// signed afresh (a subject not seen before).
func BenchmarkMintUpstream(b *testing.B) {
	dir := b.TempDir()
	keyFile := writeFile(b, dir, "ed25519.pem", pkcs8PEM(b, sharedKeys().ed))
	roles := []string{"admin", "viewer"}
	b.Run("cached", func(b *testing.B) {
		a := newUpstreamAuthenticator(b, keyFile, newClock())
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := a.MintUpstream("ada@example.com", roles, upstreamAud, 5*time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		a := newUpstreamAuthenticator(b, keyFile, newClock())
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := a.MintUpstream("ada@example.com", roles, upstreamAud, 5*time.Minute); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("first", func(b *testing.B) {
		a := newUpstreamAuthenticator(b, keyFile, newClock())
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, _, err := a.MintUpstream("user"+strconv.Itoa(i)+"@example.com", roles, upstreamAud, 5*time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
}
