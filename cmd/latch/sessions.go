package main

import (
	"sync"
	"time"
)

// sessionCache remembers when each subject last changed its password, so
// the per-request session check does not read the store. It is exact only
// when every password change passes through this process (the bbolt
// backend, whose file one process holds): the store adapter drops an entry
// whenever it changes that user. It is bounded: when full it starts over.
type sessionCache struct {
	mu  sync.RWMutex
	m   map[string]time.Time
	max int
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{m: make(map[string]time.Time), max: max}
}

func (c *sessionCache) get(email string) (time.Time, bool) {
	c.mu.RLock()
	t, ok := c.m[email]
	c.mu.RUnlock()
	return t, ok
}

func (c *sessionCache) put(email string, t time.Time) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[email] = t
	c.mu.Unlock()
}

func (c *sessionCache) drop(email string) {
	c.mu.Lock()
	delete(c.m, email)
	c.mu.Unlock()
}
