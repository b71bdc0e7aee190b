package resetstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/resetstore"
)

// bbolt locks the file with flock, which belongs to the open file
// description, so a second Open in the same process conflicts like another
// process would.
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	first, err := resetstore.Open(path, resetstore.Options{Hash: cheapHash})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	_, err = resetstore.Open(path, resetstore.Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, resetstore.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	want := "data file " + path + " is in use by another process (is latch serve running?)"
	if err.Error() != want {
		t.Errorf("second Open error = %q, want %q", err, want)
	}

	// Once the first is closed the file opens again.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := resetstore.Open(path, resetstore.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close = %v", err)
	}
	second.Close()
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := resetstore.Open(filepath.Join(dir, "missing", "latch.db"), resetstore.Options{})
	if err == nil || errors.Is(err, resetstore.ErrLocked) {
		t.Errorf("Open in missing dir = %v, want a non-lock error", err)
	}
	_, err = resetstore.Open(dir, resetstore.Options{})
	if err == nil {
		t.Errorf("Open of a directory succeeded")
	}
}

func TestClosed(t *testing.T) {
	s, err := resetstore.Open(filepath.Join(t.TempDir(), "latch.db"), resetstore.Options{Hash: cheapHash})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	ctx := context.Background()
	if _, err := s.AddUser(ctx, "a@b.c", nil, ""); !errors.Is(err, resetstore.ErrClosed) {
		t.Errorf("AddUser after Close = %v, want ErrClosed", err)
	}
	if _, _, err := s.IssueResetToken(ctx, "a@b.c"); !errors.Is(err, resetstore.ErrClosed) {
		t.Errorf("IssueResetToken after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Sweep(ctx); !errors.Is(err, resetstore.ErrClosed) {
		t.Errorf("Sweep after Close = %v, want ErrClosed", err)
	}
}

func TestCancelledContext(t *testing.T) {
	s, _ := openStore(t, resetstore.Options{})
	mustAddUser(t, s, "a@example.com", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.IssueResetToken(ctx, "a@example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("IssueResetToken(cancelled) = %v, want context.Canceled", err)
	}
	if n := bucketLen(t, s, resetstore.BucketTokens); n != 0 {
		t.Errorf("tokens after cancelled issue = %d, want 0", n)
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := resetstore.Open(path, resetstore.Options{Hash: cheapHash})
	if err != nil {
		t.Fatal(err)
	}
	mustAddUser(t, s, "frank@example.com", "pw-Passw0rd!", "admin")
	tok := mustIssue(t, s, "frank@example.com")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = resetstore.Open(path, resetstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if u, err := s.GetUser(ctx, "frank@example.com"); err != nil || strings.Join(u.Roles, ",") != "admin" {
		t.Errorf("GetUser after reopen = %+v, %v", u, err)
	}
	if email, _, err := s.ValidateResetToken(ctx, tok); err != nil || email != "frank@example.com" {
		t.Errorf("ValidateResetToken after reopen = %q, %v", email, err)
	}
}
