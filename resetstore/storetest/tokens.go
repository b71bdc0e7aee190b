package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
)

func testIssueValidateRedeem(t *testing.T, open Opener) {
	s, clock := start(t, open, Options{TokenTTL: 2 * time.Hour})
	mustAdd(t, s, "ada@example.com", "Old-Passw0rd!")
	tok, exp, err := s.IssueResetToken(ctx, "ADA@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 43 {
		t.Errorf("token length = %d, want 43 (32 bytes base64url)", len(tok))
	}
	if want := clock.Now().Add(2 * time.Hour); !exp.Equal(want) {
		t.Errorf("expiry = %v, want %v", exp, want)
	}
	email, vexp, err := s.ValidateResetToken(ctx, tok)
	if err != nil || email != "ada@example.com" || !vexp.Equal(exp) {
		t.Errorf("ValidateResetToken = %q, %v, %v; want ada@example.com, %v", email, vexp, err, exp)
	}
	wantValid(t, s, tok, "ada@example.com") // validating does not use it

	clock.Advance(time.Minute)
	_, err = s.RedeemResetToken(ctx, tok, "")
	wantErr(t, "RedeemResetToken(empty password)", err, resetstore.ErrEmptyPassword)
	email, err = s.RedeemResetToken(ctx, tok, "New-Passw0rd!")
	if err != nil || email != "ada@example.com" {
		t.Fatalf("RedeemResetToken = %q, %v", email, err)
	}
	if _, ok, _ := s.VerifyPassword(ctx, "ada@example.com", "Old-Passw0rd!"); ok {
		t.Error("the old password still works")
	}
	u, ok, err := s.VerifyPassword(ctx, "ada@example.com", "New-Passw0rd!")
	if !ok || err != nil || !u.PasswordChanged.Equal(clock.Now()) {
		t.Errorf("VerifyPassword(new) = %+v, %v, %v; want PasswordChanged %v", u, ok, err, clock.Now())
	}
	// A user without a password gets one through a link.
	mustAdd(t, s, "bob@example.com", "")
	email, err = s.RedeemResetToken(ctx, mustIssue(t, s, "bob@example.com"), "Bobs-Passw0rd!")
	if err != nil || email != "bob@example.com" {
		t.Fatalf("RedeemResetToken(bob) = %q, %v", email, err)
	}
	if u, _ := s.GetUser(ctx, "bob@example.com"); !u.HasPassword {
		t.Error("bob has no password after redeeming")
	}
}

func testUsedToken(t *testing.T, open Opener) {
	s, clock := start(t, open, Options{MinInterval: -1})
	mustAdd(t, s, "ada@example.com", "")
	tok := mustIssue(t, s, "ada@example.com")
	if _, err := s.RedeemResetToken(ctx, tok, "First-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	_, err := s.RedeemResetToken(ctx, tok, "Second-Passw0rd!")
	wantErr(t, "redeeming twice", err, latch.ErrUsedToken)
	if errors.Is(err, latch.ErrInvalidToken) {
		t.Errorf("a used token is also ErrInvalidToken: %v", err)
	}
	_, _, err = s.ValidateResetToken(ctx, tok)
	wantErr(t, "validating a used token", err, latch.ErrUsedToken)
	if _, ok, _ := s.VerifyPassword(ctx, "ada@example.com", "First-Passw0rd!"); !ok {
		t.Error("the second redemption changed the password")
	}
	// A used token stays "used" when a new token is issued, until it expires.
	clock.Advance(time.Hour)
	mustIssue(t, s, "ada@example.com")
	_, _, err = s.ValidateResetToken(ctx, tok)
	wantErr(t, "used token after a new issue", err, latch.ErrUsedToken)
	clock.Advance(resetstore.DefaultTokenTTL)
	_, _, err = s.ValidateResetToken(ctx, tok)
	wantInvalid(t, "used token after its expiry", err)
}

func testInvalidTokens(t *testing.T, open Opener) {
	s, _ := start(t, open, Options{})
	mustAdd(t, s, "ada@example.com", "")
	tok := mustIssue(t, s, "ada@example.com")
	other, _, err := resetstore.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "x", tok + "A", tok[:42], tok[:42] + "!", other} {
		_, _, err := s.ValidateResetToken(ctx, bad)
		wantInvalid(t, fmt.Sprintf("ValidateResetToken(%q)", bad), err)
		_, err = s.RedeemResetToken(ctx, bad, "Some-Passw0rd!")
		wantInvalid(t, fmt.Sprintf("RedeemResetToken(%q)", bad), err)
	}
	wantValid(t, s, tok, "ada@example.com")
}

func testNewTokenExpiresOlder(t *testing.T, open Opener) {
	s, _ := start(t, open, Options{MinInterval: -1})
	mustAdd(t, s, "ada@example.com", "")
	mustAdd(t, s, "bob@example.com", "")
	first := mustIssue(t, s, "ada@example.com")
	bobs := mustIssue(t, s, "bob@example.com")
	second := mustIssue(t, s, "ada@example.com")
	_, _, err := s.ValidateResetToken(ctx, first)
	wantInvalid(t, "superseded token", err)
	_, err = s.RedeemResetToken(ctx, first, "Some-Passw0rd!")
	wantInvalid(t, "redeeming a superseded token", err)
	wantValid(t, s, second, "ada@example.com")
	wantValid(t, s, bobs, "bob@example.com") // another user's token is untouched
}

func testPasswordChangeExpiresAll(t *testing.T, open Opener) {
	s, _ := start(t, open, Options{MinInterval: -1})
	mustAdd(t, s, "ada@example.com", "Old-Passw0rd!")
	mustAdd(t, s, "bob@example.com", "")
	tok := mustIssue(t, s, "ada@example.com")
	bobs := mustIssue(t, s, "bob@example.com")
	if err := s.SetPassword(ctx, "ada@example.com", "Set-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.ValidateResetToken(ctx, tok)
	wantInvalid(t, "token after SetPassword", err)
	wantValid(t, s, bobs, "bob@example.com")

	// Redeeming expires whatever else the user had.
	a := mustIssue(t, s, "bob@example.com")
	if _, err := s.RedeemResetToken(ctx, a, "Bobs-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.ValidateResetToken(ctx, bobs)
	wantInvalid(t, "bob's older token after a redemption", err)
	if n, err := s.ActiveTokens(ctx); n != 0 || err != nil {
		t.Errorf("ActiveTokens = %d, %v; want 0", n, err)
	}
}

func testRateLimit(t *testing.T, open Opener) {
	s, clock := start(t, open, Options{MinInterval: time.Minute})
	mustAdd(t, s, "ada@example.com", "")
	mustAdd(t, s, "bob@example.com", "")
	first := mustIssue(t, s, "ada@example.com")
	clock.Advance(20 * time.Second)
	_, _, err := s.IssueResetToken(ctx, "ADA@example.com")
	var rl *latch.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("second issue within a minute: %v, want *RateLimitError", err)
	}
	if rl.RetryAfter != 40*time.Second {
		t.Errorf("RetryAfter = %v, want 40s", rl.RetryAfter)
	}
	if err.Error() != "rate limited" {
		t.Errorf("Error() = %q, want %q", err.Error(), "rate limited")
	}
	wantValid(t, s, first, "ada@example.com") // a refused issue expires nothing
	mustIssue(t, s, "bob@example.com")        // the limit is per user

	clock.Advance(40*time.Second - time.Nanosecond)
	if _, _, err := s.IssueResetToken(ctx, "ada@example.com"); !errors.As(err, &rl) || rl.RetryAfter != time.Nanosecond {
		t.Fatalf("issue 1ns early = %v, want RetryAfter 1ns", err)
	}
	clock.Advance(time.Nanosecond)
	second := mustIssue(t, s, "ada@example.com")
	wantValid(t, s, second, "ada@example.com")

	// Redeeming does not lift the limit: it counts from the last issue.
	if _, err := s.RedeemResetToken(ctx, second, "Some-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.IssueResetToken(ctx, "ada@example.com"); !errors.As(err, &rl) {
		t.Errorf("issue right after redeeming: %v, want *RateLimitError", err)
	}
	// A clock that steps back never asks for more than the interval.
	clock.Advance(-time.Hour)
	if _, _, err := s.IssueResetToken(ctx, "ada@example.com"); !errors.As(err, &rl) || rl.RetryAfter != time.Minute {
		t.Errorf("issue after clock step back = %v, want RetryAfter 1m0s", err)
	}

	// Off when negative.
	s2, _ := start(t, open, Options{MinInterval: -1})
	mustAdd(t, s2, "ada@example.com", "")
	for range 3 {
		mustIssue(t, s2, "ada@example.com")
	}
}

func testTTL(t *testing.T, open Opener) {
	s, clock := start(t, open, Options{TokenTTL: time.Hour})
	mustAdd(t, s, "ada@example.com", "")
	tok := mustIssue(t, s, "ada@example.com")
	clock.Advance(time.Hour - time.Second)
	wantValid(t, s, tok, "ada@example.com")
	if n, err := s.ActiveTokens(ctx); n != 1 || err != nil {
		t.Errorf("ActiveTokens before expiry = %d, %v; want 1", n, err)
	}
	clock.Advance(time.Second)
	_, _, err := s.ValidateResetToken(ctx, tok)
	wantInvalid(t, "validating at expiry", err)
	_, err = s.RedeemResetToken(ctx, tok, "Late-Passw0rd!")
	wantInvalid(t, "redeeming at expiry", err)
	if u, _ := s.GetUser(ctx, "ada@example.com"); u.HasPassword {
		t.Error("an expired token set a password")
	}
	if n, err := s.ActiveTokens(ctx); n != 0 || err != nil {
		t.Errorf("ActiveTokens after expiry = %d, %v; want 0", n, err)
	}
}

func testConcurrentRedeem(t *testing.T, open Opener) {
	s, _ := start(t, open, Options{})
	mustAdd(t, s, "race@example.com", "Old-Passw0rd!")
	tok := mustIssue(t, s, "race@example.com")
	const redeemers = 50
	var (
		wg      sync.WaitGroup
		begin   = make(chan struct{})
		errs    = make([]error, redeemers)
		mu      sync.Mutex
		winners []int
	)
	for i := range redeemers {
		wg.Go(func() {
			<-begin
			_, err := s.RedeemResetToken(ctx, tok, fmt.Sprintf("Pw-%02d-Passw0rd!", i))
			errs[i] = err
			if err == nil {
				mu.Lock()
				winners = append(winners, i)
				mu.Unlock()
			}
		})
	}
	close(begin)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d redeemers won (%v), want exactly 1", len(winners), winners)
	}
	for i, err := range errs {
		if i != winners[0] && !errors.Is(err, latch.ErrUsedToken) {
			t.Errorf("redeemer %d: %v, want ErrUsedToken", i, err)
		}
	}
	for i := range redeemers {
		_, ok, err := s.VerifyPassword(ctx, "race@example.com", fmt.Sprintf("Pw-%02d-Passw0rd!", i))
		if err != nil || ok != (i == winners[0]) {
			t.Errorf("VerifyPassword(redeemer %d) = %v, %v; want %v", i, ok, err, i == winners[0])
		}
	}
}

func testDeleteUserRemovesTokens(t *testing.T, open Opener) {
	s, _ := start(t, open, Options{MinInterval: -1})
	mustAdd(t, s, "ada@example.com", "")
	used := mustIssue(t, s, "ada@example.com")
	if _, err := s.RedeemResetToken(ctx, used, "Some-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	live := mustIssue(t, s, "ada@example.com")
	if err := s.DeleteUser(ctx, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	// A user re-added with the same email gets none of them back.
	mustAdd(t, s, "ada@example.com", "")
	for name, tok := range map[string]string{"live": live, "used": used} {
		_, _, err := s.ValidateResetToken(ctx, tok)
		wantInvalid(t, name+" token of a deleted user", err)
		_, err = s.RedeemResetToken(ctx, tok, "Other-Passw0rd!")
		wantInvalid(t, "redeeming the "+name+" token of a deleted user", err)
	}
	if n, err := s.ActiveTokens(ctx); n != 0 || err != nil {
		t.Errorf("ActiveTokens = %d, %v; want 0", n, err)
	}
}

func testActiveTokens(t *testing.T, open Opener) {
	s, clock := start(t, open, Options{MinInterval: -1, TokenTTL: time.Hour})
	for i := range 5 {
		mustAdd(t, s, fmt.Sprintf("u%d@example.com", i), "")
	}
	if n, err := s.ActiveTokens(ctx); n != 0 || err != nil {
		t.Errorf("ActiveTokens of an empty store = %d, %v", n, err)
	}
	var toks []string
	for i := range 5 {
		toks = append(toks, mustIssue(t, s, fmt.Sprintf("u%d@example.com", i)))
	}
	mustIssue(t, s, "u0@example.com") // supersedes toks[0]
	if _, err := s.RedeemResetToken(ctx, toks[1], "Some-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	mustIssue(t, s, "u1@example.com")
	if n, err := s.ActiveTokens(ctx); n != 5 || err != nil {
		t.Errorf("ActiveTokens = %d, %v; want 5", n, err)
	}
	clock.Advance(30 * time.Minute) // the first four live ones expire
	if n, err := s.ActiveTokens(ctx); n != 1 || err != nil {
		t.Errorf("ActiveTokens after an hour = %d, %v; want 1", n, err)
	}
}
