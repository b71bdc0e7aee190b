package resetstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
)

// The 50-redeemers race is in the conformance suite (storetest), which
// conformance_test.go runs against this store.

func TestConcurrentIssueDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	s, err := resetstore.Open(path, resetstore.Options{Hash: cheapHash})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const users = 200
	emails := make([]string, users)
	for i := range emails {
		emails[i] = fmt.Sprintf("user%03d@example.com", i)
		mustAddUser(t, s, emails[i], "")
	}
	groups := 0
	resetstore.SetBatchHook(s, func(n int) {
		if n > 1 {
			groups++ // only the issuer goroutine writes this
		}
	})

	tokens := make([]string, users)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range users {
		wg.Go(func() {
			<-start
			tok, _, err := s.IssueResetToken(ctx, emails[i])
			if err != nil {
				t.Errorf("IssueResetToken(%s): %v", emails[i], err)
			}
			tokens[i] = tok
		})
	}
	close(start)
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d issuances, %d multi-request groups", users, groups)

	s, err = resetstore.Open(path, resetstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, tok := range tokens {
		if email, _, err := s.ValidateResetToken(ctx, tok); err != nil || email != emails[i] {
			t.Errorf("token %d after reopen: %q, %v; want %s", i, email, err, emails[i])
		}
	}
	if n, err := s.ActiveTokens(ctx); n != users || err != nil {
		t.Errorf("ActiveTokens = %d, %v; want %d", n, err, users)
	}
}

// With the issuer held inside its first commit, the other requests queue up
// and must all be committed together in the next group, each answered with
// its own result: refusals (unknown user, rate limited, cancelled) do not
// fail the rest.
func TestGroupCommit(t *testing.T) {
	s, _ := openStore(t, resetstore.Options{})
	ctx := context.Background()
	const queued = 40
	for i := range queued {
		mustAddUser(t, s, fmt.Sprintf("g%02d@example.com", i), "")
	}
	mustAddUser(t, s, "first@example.com", "")
	mustIssue(t, s, "g00@example.com") // so g00 is rate limited below

	var sizes []int
	release := make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	defer letGo() // also when the test fails below, so the store can close
	entered := make(chan struct{})
	resetstore.SetBatchHook(s, func(n int) {
		sizes = append(sizes, n)
		if len(sizes) == 1 {
			close(entered)
			<-release
		}
	})

	var wg sync.WaitGroup
	wg.Go(func() { mustIssue(t, s, "first@example.com") })
	waitClosed(t, "the issuer to enter its first commit", entered)

	cancelled, cancel := context.WithCancel(ctx)
	type result struct {
		tok string
		err error
	}
	results := make([]result, queued+2)
	for i := range queued {
		wg.Go(func() {
			tok, _, err := s.IssueResetToken(ctx, fmt.Sprintf("g%02d@example.com", i))
			results[i] = result{tok, err}
		})
	}
	wg.Go(func() {
		_, _, err := s.IssueResetToken(ctx, "ghost@example.com")
		results[queued] = result{"", err}
	})
	wg.Go(func() {
		_, _, err := s.IssueResetToken(cancelled, "g01@example.com")
		results[queued+1] = result{"", err}
	})
	// Wait until every request is queued, then cancel one and let go.
	waitUntil(t, fmt.Sprintf("%d requests to queue", queued+2), func() bool {
		return resetstore.QueueLen(s) >= queued+2
	})
	cancel()
	letGo()
	wg.Wait()

	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != queued+2 {
		t.Errorf("group sizes = %v, want [1 %d]", sizes, queued+2)
	}
	var rl *latch.RateLimitError
	if !errors.As(results[0].err, &rl) {
		t.Errorf("g00 (rate limited) = %v, want *RateLimitError", results[0].err)
	}
	if !errors.Is(results[queued].err, latch.ErrUserNotFound) {
		t.Errorf("ghost = %v, want ErrUserNotFound", results[queued].err)
	}
	if !errors.Is(results[queued+1].err, context.Canceled) {
		t.Errorf("cancelled request = %v, want context.Canceled", results[queued+1].err)
	}
	for i := 1; i < queued; i++ {
		r := results[i]
		if r.err != nil {
			t.Errorf("g%02d: %v", i, r.err)
			continue
		}
		if _, _, err := s.ValidateResetToken(ctx, r.tok); err != nil {
			t.Errorf("g%02d token: %v", i, err)
		}
	}
}
