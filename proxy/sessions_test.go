package proxy

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch"
)

// clock is a settable clock for a SessionCache.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newCache(st *memStore, shared bool) (*SessionCache, *clock, *[]string) {
	clk := &clock{t: time.Unix(1000, 0)}
	var changed []string
	c := NewSessionCache(st, SessionCacheOptions{Shared: shared, Now: clk.now, MaxEntries: 3,
		OnChange: func(email string) { changed = append(changed, email) }})
	return c, clk, &changed
}

// TestSessionCacheExact: with a store only this process changes (not
// Shared), an entry is used however old it is, and every change made
// through the cache drops it and is reported to OnChange.
func TestSessionCacheExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	ada := st.add("ada@example.com", "viewer")
	c, clk, changed := newCache(st, false)

	s, err := c.Session(ctx, "Ada@Example.com")
	if err != nil || !s.Found || s.Generation != ada.Generation || !slices.Equal(s.Roles, []string{"viewer"}) {
		t.Fatalf("Session = %+v, %v; want ada's generation %d and roles [viewer]", s, err, ada.Generation)
	}
	clk.add(24 * time.Hour)
	if _, err := c.Session(ctx, "ada@example.com"); err != nil || st.reads() != 1 {
		t.Errorf("after a day: %d store reads, err %v; want the entry used (1 read)", st.reads(), err)
	}
	// The cache hands out copies of the roles.
	s, _ = c.Session(ctx, "ada@example.com")
	s.Roles[0] = "changed"
	if again, _ := c.Session(ctx, "ada@example.com"); !slices.Equal(again.Roles, []string{"viewer"}) {
		t.Errorf("roles after a caller changed its copy: %v", again.Roles)
	}

	if _, err := c.SetRoles(ctx, "ADA@example.com", []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Session(ctx, "ada@example.com"); !slices.Equal(s.Roles, []string{"admin"}) {
		t.Errorf("roles after SetRoles through the cache: %v, want [admin]", s.Roles)
	}
	if err := c.DeleteUser(ctx, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Session(ctx, "ada@example.com"); s.Found {
		t.Errorf("after DeleteUser: %+v, want not found", s)
	}
	if _, err := c.AddUser(ctx, "ada@example.com", nil, ""); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Session(ctx, "ada@example.com"); !s.Found || s.Generation == ada.Generation {
		t.Errorf("after re-creating: %+v, want found with a new generation", s)
	}
	tok := st.issue("ada@example.com")
	before, _ := c.Session(ctx, "ada@example.com")
	if _, err := c.RedeemResetToken(ctx, tok, "Str0ng-Passw0rd"); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Session(ctx, "ada@example.com"); s.Generation == before.Generation || s.PasswordChanged.IsZero() {
		t.Errorf("after a reset: %+v, want a new generation and a password change", s)
	}
	want := []string{"ADA@example.com", "ada@example.com", "ada@example.com", "ada@example.com"}
	if !slices.Equal(*changed, want) {
		t.Errorf("OnChange got %q, want %q", *changed, want)
	}
	// A refused redemption changes nothing and is not reported.
	if _, err := c.RedeemResetToken(ctx, "no-such-token", "Str0ng-Passw0rd"); !errors.Is(err, latch.ErrInvalidToken) {
		t.Errorf("RedeemResetToken(unknown) = %v, want ErrInvalidToken", err)
	}
	if len(*changed) != len(want) {
		t.Errorf("OnChange after a refused redemption: %q", *changed)
	}
}

// TestSessionCacheShared: with Shared, an entry is read again after
// SharedSessionTTL, and while the store is unavailable it is used up to
// SharedSessionStaleMax old; a subject never seen fails.
func TestSessionCacheShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	st.add("ada@example.com", "viewer")
	c, clk, _ := newCache(st, true)
	if _, err := c.Session(ctx, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	clk.add(SharedSessionTTL - time.Second)
	c.Session(ctx, "ada@example.com")
	if st.reads() != 1 {
		t.Errorf("within the ttl: %d store reads, want 1", st.reads())
	}
	st.setRoles("ada@example.com", "admin") // another replica's change
	clk.add(2 * time.Second)
	if s, _ := c.Session(ctx, "ada@example.com"); !slices.Equal(s.Roles, []string{"admin"}) || st.reads() != 2 {
		t.Errorf("after the ttl: roles %v after %d reads, want [admin] after 2", s.Roles, st.reads())
	}

	down := errors.Join(errors.New("etcd: no leader"), latch.ErrUnavailable)
	st.fail(down)
	clk.add(SharedSessionStaleMax - time.Second)
	if s, err := c.Session(ctx, "ada@example.com"); err != nil || !slices.Equal(s.Roles, []string{"admin"}) {
		t.Errorf("store down, entry within staleMax: %+v, %v; want the cached entry", s, err)
	}
	clk.add(2 * time.Second)
	if _, err := c.Session(ctx, "ada@example.com"); !errors.Is(err, latch.ErrUnavailable) {
		t.Errorf("store down, entry past staleMax: err %v, want ErrUnavailable", err)
	}
	if _, err := c.Session(ctx, "bob@example.com"); !errors.Is(err, latch.ErrUnavailable) {
		t.Errorf("store down, subject never seen: err %v, want ErrUnavailable", err)
	}
	other := errors.New("decoding user: bad json")
	st.fail(other)
	clk.add(-(SharedSessionStaleMax - SharedSessionTTL - time.Second)) // stale but usable: not for this error
	if _, err := c.Session(ctx, "ada@example.com"); !errors.Is(err, other) {
		t.Errorf("a failure other than unavailable: err %v, want it passed on", err)
	}
}

// TestSessionCacheKeys: entries are keyed as the store keys users (ASCII
// letters folded, nothing else), an address no user can have is not found
// without a read, and the cache starts over when full.
func TestSessionCacheKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	st.add("admi\u0307n@example.com", "viewer") // i + COMBINING DOT ABOVE
	c, _, _ := newCache(st, false)
	if s, _ := c.Session(ctx, "admi\u0307n@example.com"); !s.Found {
		t.Fatalf("stored user not found: %+v", s)
	}
	// U+0130 lower-cases (Unicode) to "i\u0307": another user to the store.
	if s, _ := c.Session(ctx, "adm\u0130n@example.com"); s.Found {
		t.Errorf("adm\u0130n shares the entry of admi\u0307n: %+v", s)
	}
	reads := st.reads()
	if s, err := c.Session(ctx, "not an email"); s.Found || err != nil || st.reads() != reads {
		t.Errorf("Session(not an email) = %+v, %v after %d more reads; want not found, no read", s, err, st.reads()-reads)
	}
	for _, e := range []string{"a@x.y", "b@x.y", "c@x.y", "d@x.y"} {
		c.Session(ctx, e)
	}
	c.mu.RLock()
	n := len(c.m)
	c.mu.RUnlock()
	if n > 3 {
		t.Errorf("cache holds %d entries, want at most MaxEntries 3", n)
	}
}

// TestSessionCacheReadBeforeChange: an answer read from the store before a
// change to the user, and put after the change dropped the entry, is not
// cached (not Shared, it would never go stale).
func TestSessionCacheReadBeforeChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	st.add("ada@example.com", "viewer")
	c, _, _ := newCache(st, false)
	reading, release := make(chan struct{}), make(chan struct{})
	st.onGet = func() { close(reading); <-release }
	old := make(chan Session, 1)
	go func() { s, _ := c.Session(ctx, "ada@example.com"); old <- s }()
	select {
	case <-reading:
	case <-time.After(10 * time.Second):
		t.Fatal("Session never read the store")
	}
	st.onGet = nil // (the reader holds the store's lock-free hook already)
	if _, err := c.SetRoles(ctx, "ada@example.com", []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	close(release)
	var s Session
	select {
	case s = <-old:
	case <-time.After(10 * time.Second):
		t.Fatal("Session never returned")
	}
	if !slices.Equal(s.Roles, []string{"viewer"}) {
		t.Fatalf("the racing read got %v, want the roles before the change", s.Roles)
	}
	if s, _ := c.Session(ctx, "ada@example.com"); !slices.Equal(s.Roles, []string{"admin"}) {
		t.Errorf("after the change: roles %v, want [admin] (the older read was cached)", s.Roles)
	}
}

// browserReads counts the store reads of browser sessions.
type browserReads struct {
	*memStore
	mu sync.Mutex
	n  int
}

func (b *browserReads) BrowserSession(ctx context.Context, key string) (latch.BrowserSession, error) {
	b.mu.Lock()
	b.n++
	b.mu.Unlock()
	return b.memStore.BrowserSession(ctx, key)
}

func (b *browserReads) reads() int { b.mu.Lock(); defer b.mu.Unlock(); return b.n }

// TestSessionCacheBrowserSessions: browser sessions are cached under the
// rules of Session: on a shared store read again after SharedSessionTTL
// and used up to SharedSessionStaleMax old while it is unavailable; a
// touch moves the cached LastSeen, a deletion and a change of the user
// drop the entry.
func TestSessionCacheBrowserSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	st.add("ada@example.com", "viewer")
	b := latch.BrowserSession{Email: "ada@example.com", Created: memNow, LastSeen: memNow, Expires: memNow.Add(time.Hour)}
	for _, k := range []string{"k1", "k2"} {
		if err := st.CreateBrowserSession(ctx, k, b); err != nil {
			t.Fatal(err)
		}
	}
	w := &browserReads{memStore: st}
	clk := &clock{t: time.Unix(1000, 0)}
	c := NewSessionCache(w, SessionCacheOptions{Shared: true, Now: clk.now})

	if got, err := c.BrowserSession(ctx, "k1"); err != nil || got != b {
		t.Fatalf("first read: %+v, %v; want %+v", got, err, b)
	}
	later := memNow.Add(time.Minute)
	if err := c.TouchBrowserSession(ctx, "k1", later); err != nil {
		t.Fatal(err)
	}
	clk.add(SharedSessionTTL - time.Second)
	if got, _ := c.BrowserSession(ctx, "k1"); w.reads() != 1 || !got.LastSeen.Equal(later) {
		t.Errorf("within the ttl: %d store reads, LastSeen %v; want 1 and the touch's %v", w.reads(), got.LastSeen, later)
	}
	clk.add(2 * time.Second)
	if c.BrowserSession(ctx, "k1"); w.reads() != 2 {
		t.Errorf("after the ttl: %d store reads, want 2", w.reads())
	}

	down := errors.Join(errors.New("etcd: no leader"), latch.ErrUnavailable)
	st.fail(down)
	clk.add(SharedSessionStaleMax - time.Second)
	if got, err := c.BrowserSession(ctx, "k1"); err != nil || got.Email != b.Email {
		t.Errorf("store down, entry within staleMax: %+v, %v; want the cached entry", got, err)
	}
	clk.add(2 * time.Second)
	if _, err := c.BrowserSession(ctx, "k1"); !errors.Is(err, latch.ErrUnavailable) {
		t.Errorf("store down, entry past staleMax: err %v, want ErrUnavailable", err)
	}
	if _, err := c.BrowserSession(ctx, "k2"); !errors.Is(err, latch.ErrUnavailable) {
		t.Errorf("store down, session never seen: err %v, want ErrUnavailable", err)
	}
	st.fail(nil)

	if err := c.DeleteBrowserSession(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BrowserSession(ctx, "k1"); !errors.Is(err, latch.ErrSessionNotFound) {
		t.Errorf("after its deletion: err %v, want ErrSessionNotFound", err)
	}
	if _, err := c.BrowserSession(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetRoles(ctx, "ada@example.com", []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BrowserSession(ctx, "k2"); !errors.Is(err, latch.ErrSessionNotFound) {
		t.Errorf("after a role change: err %v, want ErrSessionNotFound (the store ended it)", err)
	}
}
