package resetstore_test

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
)

func TestResetLoop(t *testing.T) {
	s, clock := openStore(t, resetstore.Options{})
	ctx := context.Background()
	mustAddUser(t, s, "Grace@Example.com", "old-Passw0rd!")

	tok, expires, err := s.IssueResetToken(ctx, "GRACE@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(tok); err != nil || len(raw) != 32 {
		t.Errorf("token %q: %d bytes, %v; want 32 base64url bytes", tok, len(raw), err)
	}
	if want := clock.Now().Add(resetstore.DefaultTokenTTL); !expires.Equal(want) {
		t.Errorf("expires = %v, want %v", expires, want)
	}
	email, exp, err := s.ValidateResetToken(ctx, tok)
	if err != nil || email != "grace@example.com" || !exp.Equal(expires) {
		t.Fatalf("ValidateResetToken = %q, %v, %v; want grace@example.com, %v", email, exp, err, expires)
	}

	// Only the token's hash reaches the disk.
	for _, b := range []string{resetstore.BucketTokens, resetstore.BucketTokenExpiry, resetstore.BucketUserTokens} {
		raw, err := resetstore.RawBucket(s, b)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range raw {
			if strings.Contains(k, tok) || strings.Contains(string(v), tok) {
				t.Errorf("bucket %s holds the plain token", b)
			}
		}
	}

	clock.Advance(time.Minute)
	email, err = s.RedeemResetToken(ctx, tok, "new-Passw0rd!")
	if err != nil || email != "grace@example.com" {
		t.Fatalf("RedeemResetToken = %q, %v", email, err)
	}
	if _, err := s.RedeemResetToken(ctx, tok, "other-Passw0rd!"); !errors.Is(err, latch.ErrUsedToken) {
		t.Errorf("second RedeemResetToken = %v, want ErrUsedToken", err)
	}
	if _, _, err := s.ValidateResetToken(ctx, tok); !errors.Is(err, latch.ErrUsedToken) {
		t.Errorf("ValidateResetToken after redeem = %v, want ErrUsedToken", err)
	}
	if _, ok, err := s.VerifyPassword(ctx, "grace@example.com", "new-Passw0rd!"); !ok || err != nil {
		t.Errorf("VerifyPassword(new) = %v, %v; want true", ok, err)
	}
	if _, ok, err := s.VerifyPassword(ctx, "grace@example.com", "old-Passw0rd!"); ok || err != nil {
		t.Errorf("VerifyPassword(old) = %v, %v; want false", ok, err)
	}
	if _, ok, _ := s.VerifyPassword(ctx, "grace@example.com", "other-Passw0rd!"); ok {
		t.Errorf("the refused second redemption changed the password")
	}
	u, err := s.GetUser(ctx, "grace@example.com")
	if err != nil || !u.PasswordChanged.Equal(clock.Now()) {
		t.Errorf("PasswordChanged = %v, %v; want %v", u.PasswordChanged, err, clock.Now())
	}
}

func TestRedeemGivesPasswordToUserWithout(t *testing.T) {
	s, _ := openStore(t, resetstore.Options{})
	ctx := context.Background()
	mustAddUser(t, s, "new@example.com", "")
	tok := mustIssue(t, s, "new@example.com")
	if _, err := s.RedeemResetToken(ctx, tok, ""); !errors.Is(err, resetstore.ErrEmptyPassword) {
		t.Errorf("RedeemResetToken(empty password) = %v, want ErrEmptyPassword", err)
	}
	if _, err := s.RedeemResetToken(ctx, tok, "first-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	if u, ok, err := s.VerifyPassword(ctx, "new@example.com", "first-Passw0rd!"); !ok || err != nil || !u.HasPassword {
		t.Errorf("VerifyPassword = %+v, %v, %v", u, ok, err)
	}
}

func TestNewTokenSupersedesOld(t *testing.T) {
	s, clock := openStore(t, resetstore.Options{})
	ctx := context.Background()
	mustAddUser(t, s, "heidi@example.com", "")
	mustAddUser(t, s, "ivan@example.com", "")
	first := mustIssue(t, s, "heidi@example.com")
	other := mustIssue(t, s, "ivan@example.com")
	clock.Advance(resetstore.DefaultMinInterval)
	second := mustIssue(t, s, "heidi@example.com")

	if _, _, err := s.ValidateResetToken(ctx, first); !errors.Is(err, latch.ErrInvalidToken) {
		t.Errorf("first token after reissue = %v, want ErrInvalidToken", err)
	}
	if _, err := s.RedeemResetToken(ctx, first, "x-Passw0rd!"); !errors.Is(err, latch.ErrInvalidToken) {
		t.Errorf("redeeming first token = %v, want ErrInvalidToken", err)
	}
	for _, tok := range []string{second, other} {
		if _, _, err := s.ValidateResetToken(ctx, tok); err != nil {
			t.Errorf("ValidateResetToken = %v, want nil", err)
		}
	}
	if n := bucketLen(t, s, resetstore.BucketTokens); n != 2 {
		t.Errorf("token records = %d, want 2", n)
	}
	if n, err := s.ActiveTokens(ctx); n != 2 || err != nil {
		t.Errorf("ActiveTokens = %d, %v; want 2", n, err)
	}
}

func TestSetPasswordExpiresTokens(t *testing.T) {
	s, _ := openStore(t, resetstore.Options{MinInterval: -1})
	ctx := context.Background()
	mustAddUser(t, s, "judy@example.com", "")
	mustAddUser(t, s, "ken@example.com", "")
	tok := mustIssue(t, s, "judy@example.com")
	kept := mustIssue(t, s, "ken@example.com")

	if err := s.SetPassword(ctx, "judy@example.com", "set-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ValidateResetToken(ctx, tok); !errors.Is(err, latch.ErrInvalidToken) {
		t.Errorf("token after SetPassword = %v, want ErrInvalidToken", err)
	}
	if _, _, err := s.ValidateResetToken(ctx, kept); err != nil {
		t.Errorf("other user's token after SetPassword = %v, want nil", err)
	}
	for _, b := range []string{resetstore.BucketTokens, resetstore.BucketTokenExpiry, resetstore.BucketUserTokens} {
		if n := bucketLen(t, s, b); n != 1 {
			t.Errorf("bucket %s has %d keys, want 1", b, n)
		}
	}
}

func TestDeleteUserDeletesTokens(t *testing.T) {
	s, _ := openStore(t, resetstore.Options{})
	ctx := context.Background()
	mustAddUser(t, s, "leo@example.com", "")
	tok := mustIssue(t, s, "leo@example.com")
	if err := s.DeleteUser(ctx, "leo@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ValidateResetToken(ctx, tok); !errors.Is(err, latch.ErrInvalidToken) {
		t.Errorf("token after DeleteUser = %v, want ErrInvalidToken", err)
	}
	for _, b := range []string{resetstore.BucketTokens, resetstore.BucketTokenExpiry, resetstore.BucketUserTokens} {
		if n := bucketLen(t, s, b); n != 0 {
			t.Errorf("bucket %s has %d keys after DeleteUser, want 0", b, n)
		}
	}
	// A re-added user does not inherit the old token or rate limit.
	mustAddUser(t, s, "leo@example.com", "")
	mustIssue(t, s, "leo@example.com")
}

func TestBadTokens(t *testing.T) {
	s, _ := openStore(t, resetstore.Options{})
	ctx := context.Background()
	mustAddUser(t, s, "mia@example.com", "")
	tok := mustIssue(t, s, "mia@example.com")
	unknown := base64.RawURLEncoding.EncodeToString(make([]byte, 32))

	tests := []struct{ name, token string }{
		{"empty", ""},
		{"short", tok[:20]},
		{"long", tok + "AA"},
		{"padded", tok + "="},
		{"std alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(unknown) + "+"},
		{"not base64", strings.Repeat("!", len(tok))},
		{"unknown", unknown},
	}
	for _, tt := range tests {
		if _, _, err := s.ValidateResetToken(ctx, tt.token); !errors.Is(err, latch.ErrInvalidToken) {
			t.Errorf("%s: ValidateResetToken = %v, want ErrInvalidToken", tt.name, err)
		}
		if _, err := s.RedeemResetToken(ctx, tt.token, "pw-Passw0rd!"); !errors.Is(err, latch.ErrInvalidToken) {
			t.Errorf("%s: RedeemResetToken = %v, want ErrInvalidToken", tt.name, err)
		}
	}
	if _, _, err := s.ValidateResetToken(ctx, tok); err != nil {
		t.Errorf("real token after bad attempts = %v", err)
	}
}

func TestIssueErrors(t *testing.T) {
	s, _ := openStore(t, resetstore.Options{})
	ctx := context.Background()
	if _, _, err := s.IssueResetToken(ctx, "nobody@example.com"); !errors.Is(err, latch.ErrUserNotFound) {
		t.Errorf("IssueResetToken(unknown) = %v, want ErrUserNotFound", err)
	}
	if _, _, err := s.IssueResetToken(ctx, "nobody"); !errors.Is(err, latch.ErrInvalidEmail) {
		t.Errorf("IssueResetToken(malformed) = %v, want ErrInvalidEmail", err)
	}
}

func TestExpiryAndSweep(t *testing.T) {
	const ttl = time.Hour
	s, clock := openStore(t, resetstore.Options{TokenTTL: ttl, MinInterval: -1})
	ctx := context.Background()
	for _, e := range []string{"a@x.io", "b@x.io", "c@x.io", "d@x.io"} {
		mustAddUser(t, s, e, "")
	}
	expiring := mustIssue(t, s, "a@x.io")
	used := mustIssue(t, s, "b@x.io")
	if _, err := s.RedeemResetToken(ctx, used, "pw-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	fresh := mustIssue(t, s, "c@x.io")

	// Nothing has expired yet: Sweep removes nothing.
	if n, err := s.Sweep(ctx); n != 0 || err != nil {
		t.Errorf("early Sweep = %d, %v; want 0", n, err)
	}
	if n, err := s.ActiveTokens(ctx); n != 2 || err != nil {
		t.Errorf("ActiveTokens = %d, %v; want 2 (the used one is not active)", n, err)
	}

	clock.Advance(30 * time.Minute) // exactly the TTL for the first two
	if _, _, err := s.ValidateResetToken(ctx, expiring); !errors.Is(err, latch.ErrInvalidToken) {
		t.Errorf("token at its TTL = %v, want ErrInvalidToken", err)
	}
	if _, err := s.RedeemResetToken(ctx, expiring, "pw-Passw0rd!"); !errors.Is(err, latch.ErrInvalidToken) {
		t.Errorf("redeeming expired token = %v, want ErrInvalidToken", err)
	}
	if _, _, err := s.ValidateResetToken(ctx, fresh); err != nil {
		t.Errorf("fresh token = %v, want nil", err)
	}
	if got := bucketLen(t, s, resetstore.BucketTokens); got != 3 {
		t.Fatalf("token records before Sweep = %d, want 3 (expiry is checked on read)", got)
	}

	n, err := s.Sweep(ctx)
	if n != 2 || err != nil {
		t.Errorf("Sweep = %d, %v; want 2 (one expired, one used)", n, err)
	}
	for _, b := range []string{resetstore.BucketTokens, resetstore.BucketTokenExpiry, resetstore.BucketUserTokens} {
		if got := bucketLen(t, s, b); got != 1 {
			t.Errorf("bucket %s after Sweep = %d keys, want 1", b, got)
		}
	}
	if _, _, err := s.ValidateResetToken(ctx, fresh); err != nil {
		t.Errorf("fresh token after Sweep = %v, want nil", err)
	}
	if _, _, err := s.ValidateResetToken(ctx, expiring); !errors.Is(err, latch.ErrInvalidToken) {
		t.Errorf("swept token = %v, want ErrInvalidToken", err)
	}
	if n, err := s.Sweep(ctx); n != 0 || err != nil {
		t.Errorf("second Sweep = %d, %v; want 0", n, err)
	}
}

func TestSweepManyBatches(t *testing.T) {
	s, clock := openStore(t, resetstore.Options{TokenTTL: time.Minute, MinInterval: -1})
	ctx := context.Background()
	resetstore.SetSweepBatch(s, 4) // so 3 users x 5 rounds takes several transactions
	const users = 3
	const rounds = 5
	var emails []string
	for i := range users {
		e := "u" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@x.io"
		emails = append(emails, e)
		mustAddUser(t, s, e, "")
	}
	for range rounds {
		for _, e := range emails {
			tok := mustIssue(t, s, e)
			if _, err := s.RedeemResetToken(ctx, tok, "pw"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := bucketLen(t, s, resetstore.BucketTokens); got != users*rounds {
		t.Fatalf("used records = %d, want %d", got, users*rounds)
	}
	clock.Advance(time.Minute)
	if n, err := s.Sweep(ctx); n != users*rounds || err != nil {
		t.Errorf("Sweep = %d, %v; want %d", n, err, users*rounds)
	}
	if got := bucketLen(t, s, resetstore.BucketTokenExpiry); got != 0 {
		t.Errorf("expiry index after Sweep = %d, want 0", got)
	}
}

func TestRunSweeper(t *testing.T) {
	s, clock := openStore(t, resetstore.Options{TokenTTL: time.Minute})
	mustAddUser(t, s, "sam@example.com", "")
	mustIssue(t, s, "sam@example.com")
	clock.Advance(time.Minute)

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		s.RunSweeper(ctx, time.Millisecond)
		close(stopped)
	}()
	defer func() {
		cancel()
		waitClosed(t, "RunSweeper to return after its context was cancelled", stopped)
	}()
	waitUntil(t, "the sweeper to remove the expired token", func() bool {
		return bucketLen(t, s, resetstore.BucketTokens) == 0
	})
}

func TestNoSecretsInLogs(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, clock := openStore(t, resetstore.Options{Logger: logger, TokenTTL: time.Minute})
	ctx := context.Background()
	const pw1, pw2, pw3 = "first-Secret-1", "second-Secret-2", "third-Secret-3"
	mustAddUser(t, s, "tess@example.com", pw1)
	tok := mustIssue(t, s, "tess@example.com")
	_, _, _ = s.ValidateResetToken(ctx, tok)
	if _, err := s.RedeemResetToken(ctx, tok, pw2); err != nil {
		t.Fatal(err)
	}
	_, _ = s.RedeemResetToken(ctx, tok, pw3)
	_ = s.SetPassword(ctx, "tess@example.com", pw3)
	_, _, _ = s.VerifyPassword(ctx, "tess@example.com", pw3)
	clock.Advance(time.Hour)
	_, _ = s.Sweep(ctx)

	if logs.Len() == 0 {
		t.Fatal("nothing logged at debug level; the test would prove nothing")
	}
	for _, secret := range []string{tok, pw1, pw2, pw3, "argon2id"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log contains %q:\n%s", secret, logs.String())
		}
	}
}
