package authn

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// maxCachedTokens bounds the verified-token cache.
const maxCachedTokens = 10000

// tokenCache remembers identities of JWTs already verified, keyed by the
// SHA-256 of the whole token, so a repeated RS256/ES256 token costs a hash
// and a map lookup. An entry never outlives the token's exp.
type tokenCache struct {
	mu      sync.Mutex
	max     int
	entries map[[32]byte]Identity
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: map[[32]byte]Identity{}}
}

// get returns a copy of the cached identity if it has not expired at now.
// exp is honoured without leeway, so the cache is never more lenient than
// verification.
func (c *tokenCache) get(key [32]byte, now time.Time) (Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.entries[key]
	if !ok {
		return Identity{}, false
	}
	if !now.Before(id.ExpiresAt) {
		delete(c.entries, key)
		return Identity{}, false
	}
	id.Roles = slices.Clone(id.Roles)
	return id, true
}

// put stores id. When the cache is full it first drops expired entries
// among a sample, and failing that an arbitrary one (map order is random).
func (c *tokenCache) put(key [32]byte, id Identity, now time.Time) {
	if id.ExpiresAt.IsZero() {
		return
	}
	id.Roles = slices.Clone(id.Roles)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	c.entries[key] = id
}

func (c *tokenCache) evictLocked(now time.Time) {
	const sample = 64
	seen := 0
	var victim [32]byte
	for k, e := range c.entries {
		if seen == 0 {
			victim = k
		}
		if !now.Before(e.ExpiresAt) {
			delete(c.entries, k)
			return
		}
		if seen++; seen >= sample {
			break
		}
	}
	delete(c.entries, victim)
}

func (c *tokenCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Invalidate forgets every cached verification of tokens for subject, for
// example after a password change. It does not revoke those tokens: the next
// request carrying one verifies it again from scratch.
func (a *Authenticator) Invalidate(subject string) { a.cache.forget(subject) }

// forget drops every entry for subject.
func (c *tokenCache) forget(subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.DeleteFunc(c.entries, func(_ [32]byte, id Identity) bool { return id.Subject == subject })
}
