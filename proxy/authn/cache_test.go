package authn

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerifiedTokenCache(t *testing.T) {
	k := sharedKeys()
	f := writeKeyFiles(t)
	c := newClock()
	a, err := New(Options{PublicKeyFiles: []string{f.rsaPub}, Now: c.Now, Leeway: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	exp := testNow.Add(time.Minute)
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(map[string]any{"exp": exp.Unix()}))
	other := sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(map[string]any{"email": "bob@example.com"}))

	for i := range 3 {
		id, reason, err := a.Authenticate(context.Background(), bearer(tok))
		if err != nil || reason != "" || id.Subject != "ada@example.com" {
			t.Fatalf("round %d: got (%+v, %q, %v), want ada", i, id, reason, err)
		}
		id.Roles[0] = "mutated" // must not leak into the cache
	}
	if _, _, err := a.Authenticate(context.Background(), bearer(other)); err != nil {
		t.Fatal(err)
	}
	if got, want := a.cache.len(), 2; got != want {
		t.Fatalf("cache entries: got %d, want %d", got, want)
	}
	id, _, _ := a.Authenticate(context.Background(), bearer(tok))
	if id.Roles[0] != "reader" {
		t.Errorf("cached roles: got %q, want reader first", id.Roles)
	}

	a.Invalidate("ada@example.com")
	if got, want := a.cache.len(), 1; got != want {
		t.Errorf("cache entries after Invalidate: got %d, want %d", got, want)
	}

	// A cached token does not outlive its exp, even within leeway.
	a.Authenticate(context.Background(), bearer(tok))
	c.Advance(time.Minute)
	if _, ok := a.cache.get(hashToken(tok), c.Now()); ok {
		t.Error("cache hit at exp: got a hit, want a miss")
	}
	c.Advance(2 * time.Second)
	if _, reason, _ := a.Authenticate(context.Background(), bearer(tok)); reason != ReasonExpired {
		t.Errorf("after exp+leeway: got %q, want %q", reason, ReasonExpired)
	}
}

func hashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

func TestTokenCacheBounded(t *testing.T) {
	c := newTokenCache(100)
	for i := range 1000 {
		var key [32]byte
		key[0], key[1] = byte(i), byte(i>>8)
		c.put(key, Identity{Subject: "s", ExpiresAt: testNow.Add(time.Hour)}, testNow)
	}
	if got := c.len(); got > 100 {
		t.Errorf("entries: got %d, want at most 100", got)
	}
}

// BenchmarkAuthenticateRS256 compares a first verification (cache cleared
// each time) with a repeated, cached one.
func BenchmarkAuthenticateRS256(b *testing.B) {
	k := sharedKeys()
	path := writeFile(b, b.TempDir(), "rsa.pub.pem", pkixPEM(b, &k.rsa.PublicKey))
	a, err := New(Options{PublicKeyFiles: []string{path}, Now: newClock().Now})
	if err != nil {
		b.Fatal(err)
	}
	h := bearer(sign(b, jwt.SigningMethodRS256, k.rsa, "", claims(nil)))
	b.Run("verify=first", func(b *testing.B) {
		for b.Loop() {
			a.cache.clear()
			a.Authenticate(context.Background(), h)
		}
	})
	b.Run("verify=cached", func(b *testing.B) {
		for b.Loop() {
			a.Authenticate(context.Background(), h)
		}
	})
}
