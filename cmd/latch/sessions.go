package main

import (
	"slices"
	"sync"
	"time"

	"github.com/latch-dev/latch/proxy"
)

// sessionCache remembers each subject's session state (whether the user
// exists, its generation, its last password change and its roles), so the
// per-request session check rarely reads the store.
//
// With ttl 0 an entry never goes stale: that is exact only when every
// change to a user passes through this process (the bbolt backend, whose
// file one process holds), and the store adapter drops an entry whenever
// it changes that user (password, roles, creation, deletion). With a
// shared backend (etcd) another replica may change a user, so entries are
// re-read after ttl: a deletion, a password change or a role change made
// elsewhere takes effect here within ttl. While the store cannot be
// reached, an entry up to staleMax old is still used, so known users keep
// working through an outage; a subject never seen fails closed.
//
// The cache is bounded: when full it starts over.
type sessionCache struct {
	ttl, staleMax time.Duration
	now           func() time.Time
	max           int

	mu sync.RWMutex
	m  map[string]sessionEntry
	// drops counts drop calls. A reader notes it before reading the store
	// and puts its answer only if no drop came in between: otherwise an
	// answer read before a change could be cached after it, and (ttl 0)
	// never go stale.
	drops uint64
}

type sessionEntry struct {
	s       proxy.Session
	fetched time.Time
}

func newSessionCache(max int, ttl, staleMax time.Duration, now func() time.Time) *sessionCache {
	return &sessionCache{m: make(map[string]sessionEntry), max: max, ttl: ttl, staleMax: staleMax, now: now}
}

// get returns the cached session and whether it is fresh enough to use
// without asking the store (fresh) or, the store being down, at all
// (usable). The roles are the caller's own copy.
func (c *sessionCache) get(email string) (s proxy.Session, fresh, usable bool) {
	c.mu.RLock()
	e, ok := c.m[email]
	c.mu.RUnlock()
	if !ok {
		return proxy.Session{}, false, false
	}
	age := c.now().Sub(e.fetched)
	e.s.Roles = slices.Clone(e.s.Roles)
	return e.s, c.ttl == 0 || age < c.ttl, age < c.staleMax
}

// version is what put needs to know that no drop happened since; take
// it before reading the store.
func (c *sessionCache) version() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.drops
}

// put caches s for email unless a drop happened since version returned v.
func (c *sessionCache) put(email string, s proxy.Session, v uint64) {
	s.Roles = slices.Clone(s.Roles)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drops != v {
		return
	}
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[email] = sessionEntry{s: s, fetched: c.now()}
}

func (c *sessionCache) drop(email string) {
	c.mu.Lock()
	delete(c.m, email)
	c.drops++
	c.mu.Unlock()
}
