package resetstore_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
)

// newSessionKey returns a fresh key as the proxy makes one: the hex
// SHA-256 of a random secret.
func newSessionKey(t testing.TB) string {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// mustCreateSession starts a session for the user (read back for its
// Generation) expiring ttl after the store's clock, and returns its key.
func mustCreateSession(t testing.TB, s *resetstore.Store, now time.Time, email string, ttl time.Duration) string {
	t.Helper()
	u, err := s.GetUser(context.Background(), email)
	if err != nil {
		t.Fatalf("GetUser(%q): %v", email, err)
	}
	key := newSessionKey(t)
	err = s.CreateBrowserSession(context.Background(), key, latch.BrowserSession{Email: email,
		Generation: u.Generation, Created: now, LastSeen: now, Expires: now.Add(ttl)})
	if err != nil {
		t.Fatalf("CreateBrowserSession(%q): %v", email, err)
	}
	return key
}

// sessionBuckets are the session record bucket and its two indexes.
var sessionBuckets = []string{resetstore.BucketSessions, resetstore.BucketSessionExpiry, resetstore.BucketUserSessions}

// wantSessionBuckets checks each session bucket holds n keys.
func wantSessionBuckets(t *testing.T, s *resetstore.Store, what string, n int) {
	t.Helper()
	for _, b := range sessionBuckets {
		if got := bucketLen(t, s, b); got != n {
			t.Errorf("%s: bucket %s holds %d keys, want %d", what, b, got, n)
		}
	}
}

// TestSessionIndexesFollowChanges: each change that ends a user's sessions
// removes their records and both index entries, and only that user's.
func TestSessionIndexesFollowChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock := openStore(t, resetstore.Options{MinInterval: -1})
	changes := []struct {
		name string
		fn   func(email string) error
	}{
		{"SetPassword", func(e string) error { return s.SetPassword(ctx, e, "New-Passw0rd!") }},
		{"RedeemResetToken", func(e string) error {
			_, err := s.RedeemResetToken(ctx, mustIssue(t, s, e), "New-Passw0rd!")
			return err
		}},
		{"SetRoles", func(e string) error { _, err := s.SetRoles(ctx, e, []string{"viewer"}); return err }},
		{"DeleteUser", func(e string) error { return s.DeleteUser(ctx, e) }},
	}
	mustAddUser(t, s, "bob@example.com", "")
	for range 3 {
		mustCreateSession(t, s, clock.Now(), "bob@example.com", time.Hour)
	}
	for _, c := range changes {
		mustAddUser(t, s, "ada@example.com", "")
		for range 2 {
			mustCreateSession(t, s, clock.Now(), "ada@example.com", time.Hour)
		}
		wantSessionBuckets(t, s, "before "+c.name, 5)
		if err := c.fn("ada@example.com"); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		wantSessionBuckets(t, s, "after "+c.name, 3) // bob's
		if c.name != "DeleteUser" {
			if err := s.DeleteUser(ctx, "ada@example.com"); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestSweepSessions: Sweep removes sessions whose Expires has passed on the
// store's clock, with both index entries, in as many transactions as it
// takes, and keeps the others.
func TestSweepSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock := openStore(t, resetstore.Options{TokenTTL: time.Hour, MinInterval: -1})
	resetstore.SetSweepBatch(s, 3)
	mustAddUser(t, s, "ada@example.com", "")
	mustAddUser(t, s, "bob@example.com", "")
	now := clock.Now()
	var short, long []string
	for range 4 {
		short = append(short, mustCreateSession(t, s, now, "ada@example.com", time.Hour))
		short = append(short, mustCreateSession(t, s, now, "bob@example.com", time.Hour))
		long = append(long, mustCreateSession(t, s, now, "ada@example.com", 2*time.Hour))
	}
	mustIssue(t, s, "ada@example.com") // expires with the short sessions
	wantSessionBuckets(t, s, "before", 12)

	clock.Advance(time.Hour - time.Nanosecond)
	if n, err := s.Sweep(ctx); n != 0 || err != nil {
		t.Errorf("Sweep before any expiry = %d, %v; want 0", n, err)
	}
	clock.Advance(time.Nanosecond) // exactly the short sessions' Expires
	if n, err := s.Sweep(ctx); n != 1+len(short) || err != nil {
		t.Errorf("Sweep = %d, %v; want %d (a token and the short sessions)", n, err, 1+len(short))
	}
	wantSessionBuckets(t, s, "after the first Sweep", len(long))
	for _, k := range short {
		if _, err := s.BrowserSession(ctx, k); !errors.Is(err, latch.ErrSessionNotFound) {
			t.Errorf("swept session: %v, want ErrSessionNotFound", err)
		}
	}
	for _, k := range long {
		if _, err := s.BrowserSession(ctx, k); err != nil {
			t.Errorf("unexpired session after Sweep: %v", err)
		}
	}
	clock.Advance(time.Hour)
	if n, err := s.Sweep(ctx); n != len(long) || err != nil {
		t.Errorf("second Sweep = %d, %v; want %d", n, err, len(long))
	}
	wantSessionBuckets(t, s, "after the second Sweep", 0)
}

// TestSweepSessionMalformedIndexKey: a damaged session expiry entry is
// removed by Sweep without being counted, and does not stop it.
func TestSweepSessionMalformedIndexKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock := openStore(t, resetstore.Options{})
	mustAddUser(t, s, "ada@example.com", "")
	mustCreateSession(t, s, clock.Now(), "ada@example.com", time.Minute)
	if err := resetstore.PutRaw(s, resetstore.BucketSessionExpiry, []byte{0, 1}, nil); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if n, err := s.Sweep(ctx); n != 1 || err != nil {
		t.Errorf("Sweep = %d, %v; want the one expired session", n, err)
	}
	wantSessionBuckets(t, s, "after Sweep", 0)
}

// TestSessionPersistsAcrossReopen: a session is in the file, not in memory.
func TestSessionPersistsAcrossReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "latch.db")
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	opts := resetstore.Options{Now: func() time.Time { return clock }, Hash: cheapHash}
	s, err := resetstore.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustAddUser(t, s, "ada@example.com", "")
	key := mustCreateSession(t, s, clock, "ada@example.com", time.Hour)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = resetstore.Open(path, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.BrowserSession(ctx, key)
	if err != nil || got.Email != "ada@example.com" || !got.Expires.Equal(clock.Add(time.Hour)) {
		t.Errorf("BrowserSession after reopen = %+v, %v", got, err)
	}
}
