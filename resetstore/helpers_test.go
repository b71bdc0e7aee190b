package resetstore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch/resetstore"
)

// cheapHash keeps argon2id fast in tests; the format is the same.
var cheapHash = resetstore.HashParams{Time: 1, MemoryKiB: 64, Threads: 1}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openStore opens a store in a fresh temporary directory with cheap hashing
// and, unless opts says otherwise, a fake clock. It is closed at cleanup.
func openStore(t testing.TB, opts resetstore.Options) (*resetstore.Store, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	if opts.Hash == (resetstore.HashParams{}) {
		opts.Hash = cheapHash
	}
	s, err := resetstore.Open(filepath.Join(t.TempDir(), "latch.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, clock
}

func mustAddUser(t testing.TB, s *resetstore.Store, email, password string, roles ...string) resetstore.User {
	t.Helper()
	u, err := s.AddUser(context.Background(), email, roles, password)
	if err != nil {
		t.Fatalf("AddUser(%q): %v", email, err)
	}
	return u
}

func mustIssue(t testing.TB, s *resetstore.Store, email string) string {
	t.Helper()
	tok, _, err := s.IssueResetToken(context.Background(), email)
	if err != nil {
		t.Fatalf("IssueResetToken(%q): %v", email, err)
	}
	return tok
}

func bucketLen(t testing.TB, s *resetstore.Store, name string) int {
	t.Helper()
	n, err := resetstore.BucketLen(s, name)
	if err != nil {
		t.Fatalf("BucketLen(%s): %v", name, err)
	}
	return n
}
