package resetstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
	"github.com/latch-dev/latch/resetstore/storetest"
)

// cheapHash keeps argon2id fast in tests; the format is the same.
var cheapHash = resetstore.HashParams{Time: 1, MemoryKiB: 64, Threads: 1}

// openStore opens a store in a fresh temporary directory with cheap hashing
// and, unless opts says otherwise, a storetest.Clock. It is closed at cleanup.
func openStore(t testing.TB, opts resetstore.Options) (*resetstore.Store, *storetest.Clock) {
	t.Helper()
	clock := storetest.NewClock()
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

func mustAddUser(t testing.TB, s *resetstore.Store, email, password string, roles ...string) latch.User {
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

// waitLimit bounds every wait in these tests. It guards against hanging,
// not against slowness: nothing asserts how fast a wait ends.
const waitLimit = time.Minute

// waitUntil polls cond until it holds, failing the test after waitLimit.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", waitLimit, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitClosed waits until ch is closed or sends, failing the test after
// waitLimit.
func waitClosed[T any](t testing.TB, what string, ch <-chan T) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("gave up after %v waiting for %s", waitLimit, what)
	}
}
