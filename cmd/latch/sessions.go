package main

import (
	"sync"
	"time"
)

// sessionCache remembers when each subject last changed its password, so
// the per-request session check rarely reads the store.
//
// With ttl 0 an entry never goes stale: that is exact only when every
// password change passes through this process (the bbolt backend, whose
// file one process holds), and the store adapter drops an entry whenever
// it changes that user. With a shared backend (etcd) another replica may
// change a password, so entries are re-read after ttl: a password change
// ends sessions on the other replicas within ttl. While the store cannot
// be reached, an entry up to staleMax old is still used, so known users
// keep working through an outage; a subject never seen fails closed.
//
// The cache is bounded: when full it starts over.
type sessionCache struct {
	ttl, staleMax time.Duration
	now           func() time.Time
	max           int

	mu sync.RWMutex
	m  map[string]sessionEntry
}

type sessionEntry struct {
	changed, fetched time.Time
}

func newSessionCache(max int, ttl, staleMax time.Duration, now func() time.Time) *sessionCache {
	return &sessionCache{m: make(map[string]sessionEntry), max: max, ttl: ttl, staleMax: staleMax, now: now}
}

// get returns the cached time and whether it is fresh enough to use
// without asking the store (fresh) or, the store being down, at all (usable).
func (c *sessionCache) get(email string) (changed time.Time, fresh, usable bool) {
	c.mu.RLock()
	e, ok := c.m[email]
	c.mu.RUnlock()
	if !ok {
		return time.Time{}, false, false
	}
	age := c.now().Sub(e.fetched)
	return e.changed, c.ttl == 0 || age < c.ttl, age < c.staleMax
}

func (c *sessionCache) put(email string, changed time.Time) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[email] = sessionEntry{changed: changed, fetched: c.now()}
	c.mu.Unlock()
}

func (c *sessionCache) drop(email string) {
	c.mu.Lock()
	delete(c.m, email)
	c.mu.Unlock()
}
