package main

import (
	"slices"
	"testing"
	"time"

	"github.com/latch-dev/latch/proxy"
)

func TestSessionCache(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	sess := proxy.Session{Found: true, Generation: 7, PasswordChanged: time.Unix(500, 0), Roles: []string{"admin"}}

	exact := newSessionCache(3, 0, 0, clock)
	exact.put("a", sess, exact.version())
	now = now.Add(24 * time.Hour)
	if got, fresh, _ := exact.get("a"); !fresh || got.Generation != 7 || !got.PasswordChanged.Equal(sess.PasswordChanged) {
		t.Errorf("ttl 0: got %+v fresh=%v, want %+v fresh after a day", got, fresh, sess)
	}
	// The cache hands out copies of the roles.
	got, _, _ := exact.get("a")
	got.Roles[0] = "changed"
	if again, _, _ := exact.get("a"); !slices.Equal(again.Roles, []string{"admin"}) {
		t.Errorf("roles after a caller changed its copy: %v", again.Roles)
	}
	exact.drop("a")
	if _, fresh, usable := exact.get("a"); fresh || usable {
		t.Error("dropped entry still served")
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		exact.put(k, sess, exact.version())
	}
	if len(exact.m) > 3 {
		t.Errorf("cache holds %d entries, want at most 3", len(exact.m))
	}

	shared := newSessionCache(10, 5*time.Second, 5*time.Minute, clock)
	shared.put("a", sess, shared.version())
	tests := []struct {
		after         time.Duration
		fresh, usable bool
	}{
		{time.Second, true, true},
		{6 * time.Second, false, true},
		{6 * time.Minute, false, false},
	}
	start := now
	for _, tt := range tests {
		now = start.Add(tt.after)
		if _, fresh, usable := shared.get("a"); fresh != tt.fresh || usable != tt.usable {
			t.Errorf("after %v: fresh=%v usable=%v, want %v %v", tt.after, fresh, usable, tt.fresh, tt.usable)
		}
	}
}

// TestSessionCacheReadBeforeChange: an answer read from the store before a
// change to the user, put after the change dropped the entry, is not
// cached (with ttl 0 it would never go stale).
func TestSessionCacheReadBeforeChange(t *testing.T) {
	t.Parallel()
	c := newSessionCache(10, 0, 0, time.Now)
	v := c.version()                                                       // a reader starts
	c.drop("ada@example.com")                                              // a password change ends
	c.put("ada@example.com", proxy.Session{Found: true, Generation: 1}, v) // the reader's old answer
	if s, fresh, _ := c.get("ada@example.com"); fresh {
		t.Errorf("an answer read before the change is cached: %+v", s)
	}
	c.put("ada@example.com", proxy.Session{Found: true, Generation: 2}, c.version())
	if s, fresh, _ := c.get("ada@example.com"); !fresh || s.Generation != 2 {
		t.Errorf("an answer read after the change: got %+v fresh=%v", s, fresh)
	}
}
