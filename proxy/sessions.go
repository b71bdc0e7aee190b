package proxy

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/latch-dev/latch"
)

// Timing of a SessionCache on a shared backend (SessionCacheOptions.Shared).
const (
	// SharedSessionTTL is how long an entry is used before the store is
	// read again: the bound on how late a change made by another replica
	// (a deletion, a password or a role change) takes effect here.
	SharedSessionTTL = 5 * time.Second
	// SharedSessionStaleMax is how old an entry may be and still be used
	// while the store is unavailable.
	SharedSessionStaleMax = 5 * time.Minute
)

// SessionCacheOptions configure NewSessionCache. The zero value suits a
// store only this process changes.
type SessionCacheOptions struct {
	// Shared is true when other processes change the same users (several
	// replicas on etcd). Entries are then read again after
	// SharedSessionTTL and, while the store is unavailable, used up to
	// SharedSessionStaleMax old, so known users keep working through an
	// outage; a subject never seen fails closed. False (bbolt, whose file
	// one process holds): every change passes through this Store, which
	// drops the entry it changes, so an entry never goes stale and is never
	// read again.
	Shared bool
	// MaxEntries bounds the cache; when full it starts over. Zero means
	// 100,000.
	MaxEntries int
	// OnChange, when set, is called with the email as given after each
	// change made through the Store (creation, roles, deletion, and a
	// password set by a reset), for other caches of the user to drop.
	OnChange func(email string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SessionCache is a Store: the Users it wraps, whose reads it passes
// through, with Session answered from a cache of each subject's session
// state (whether the user exists, its generation, its last password change
// and its roles), so the per-request session check rarely reads the store.
// Its changes drop the entry of the user they change.
type SessionCache struct {
	Users
	ttl, staleMax time.Duration
	max           int
	onChange      func(email string)
	now           func() time.Time

	mu sync.RWMutex
	m  map[string]entry[Session]
	// b caches browser sessions by key, under the same rules.
	b map[string]entry[latch.BrowserSession]
	// drops counts drops. A reader notes it before reading the store and
	// puts its answer only if no drop came in between: otherwise an answer
	// read before a change could be cached after it and (ttl 0) never go
	// stale.
	drops uint64
}

// entry is a cached answer and when the store gave it.
type entry[T any] struct {
	v       T
	fetched time.Time
}

// NewSessionCache returns u with a cached Session.
func NewSessionCache(u Users, o SessionCacheOptions) *SessionCache {
	c := &SessionCache{Users: u, max: o.MaxEntries, onChange: o.OnChange, now: o.Now, m: make(map[string]entry[Session]),
		b: make(map[string]entry[latch.BrowserSession])}
	if o.Shared {
		c.ttl, c.staleMax = SharedSessionTTL, SharedSessionStaleMax
	}
	if c.max <= 0 {
		c.max = 100_000
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Session reads the subject's session state, through the cache. A subject
// that is no stored user (or no email address) is Found false.
func (c *SessionCache) Session(ctx context.Context, email string) (Session, error) {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return Session{}, nil // no user can have it
	}
	cached, fresh, usable := cacheGet(c, c.m, key)
	cached.Roles = slices.Clone(cached.Roles) // the caller's own copy
	if fresh {
		return cached, nil
	}
	v := c.version()
	u, err := c.Users.GetUser(ctx, key)
	var s Session
	switch {
	case errors.Is(err, latch.ErrUserNotFound):
	case errors.Is(err, latch.ErrUnavailable) && usable:
		return cached, nil // the last known answer, within staleMax
	case err != nil:
		return Session{}, err
	default:
		s = Session{Found: true, Generation: u.Generation, PasswordChanged: u.PasswordChanged, Roles: u.Roles}
	}
	stored := s
	stored.Roles = slices.Clone(s.Roles)
	cachePut(c, c.m, key, stored, v)
	return s, nil
}

// AddUser adds the user and drops what is cached about it.
func (c *SessionCache) AddUser(ctx context.Context, email string, roles []string, password string) (latch.User, error) {
	u, err := c.Users.AddUser(ctx, email, roles, password)
	c.changed(email)
	return u, err
}

// SetRoles sets the user's roles and drops what is cached about it.
func (c *SessionCache) SetRoles(ctx context.Context, email string, roles []string) (latch.User, error) {
	u, err := c.Users.SetRoles(ctx, email, roles)
	c.changed(email)
	return u, err
}

// DeleteUser deletes the user and drops what is cached about it.
func (c *SessionCache) DeleteUser(ctx context.Context, email string) error {
	err := c.Users.DeleteUser(ctx, email)
	c.changed(email)
	return err
}

// RedeemResetToken sets the token's user's password and drops what is
// cached about that user.
func (c *SessionCache) RedeemResetToken(ctx context.Context, token, newPassword string) (string, error) {
	email, err := c.Users.RedeemResetToken(ctx, token, newPassword)
	if err == nil {
		c.changed(email)
	}
	return email, err
}

// BrowserSession reads a browser session through the cache: the
// per-request check of a session cookie rarely reads the store.
func (c *SessionCache) BrowserSession(ctx context.Context, key string) (latch.BrowserSession, error) {
	cached, fresh, usable := cacheGet(c, c.b, key)
	if fresh {
		return cached, nil
	}
	v := c.version()
	s, err := c.Users.BrowserSession(ctx, key)
	switch {
	case errors.Is(err, latch.ErrUnavailable) && usable:
		return cached, nil // the last known answer, within staleMax
	case err != nil:
		return latch.BrowserSession{}, err
	}
	cachePut(c, c.b, key, s, v)
	return s, nil
}

// TouchBrowserSession records the session's use, in the store and here.
func (c *SessionCache) TouchBrowserSession(ctx context.Context, key string, at time.Time) error {
	err := c.Users.TouchBrowserSession(ctx, key, at)
	c.mu.Lock()
	if e, ok := c.b[key]; ok {
		if err == nil {
			e.v.LastSeen = at
			c.b[key] = e
		} else {
			delete(c.b, key)
			c.drops++
		}
	}
	c.mu.Unlock()
	return err
}

// DeleteBrowserSession ends the session, in the store and here.
func (c *SessionCache) DeleteBrowserSession(ctx context.Context, key string) error {
	err := c.Users.DeleteBrowserSession(ctx, key)
	c.mu.Lock()
	delete(c.b, key)
	c.drops++
	c.mu.Unlock()
	return err
}

// changed drops what is cached about email after a write to that user, so
// this process sees it at once.
func (c *SessionCache) changed(email string) {
	key, err := latch.NormalizeEmail(email)
	c.mu.Lock()
	if err == nil {
		delete(c.m, key)
		// The store ended the user's browser sessions with the change.
		for k, e := range c.b {
			if e.v.Email == key {
				delete(c.b, k)
			}
		}
	}
	c.drops++
	c.mu.Unlock()
	if c.onChange != nil {
		c.onChange(email)
	}
}

// cacheGet returns m's entry for key and whether it is fresh enough to use
// without asking the store (fresh) or, the store being down, at all
// (usable).
func cacheGet[T any](c *SessionCache, m map[string]entry[T], key string) (v T, fresh, usable bool) {
	c.mu.RLock()
	e, ok := m[key]
	c.mu.RUnlock()
	if !ok {
		return v, false, false
	}
	age := c.now().Sub(e.fetched)
	return e.v, c.ttl == 0 || age < c.ttl, age < c.staleMax
}

// version is what put needs to know that no drop happened since; take it
// before reading the store.
func (c *SessionCache) version() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.drops
}

// cachePut caches v in m under key unless a drop happened since version
// returned ver; a full map starts over.
func cachePut[T any](c *SessionCache, m map[string]entry[T], key string, v T, ver uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drops != ver {
		return
	}
	if len(m) >= c.max {
		clear(m)
	}
	m[key] = entry[T]{v: v, fetched: c.now()}
}
