package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
)

func testExportImport(t *testing.T, open Opener) {
	clock := NewClock()
	opts := Options{TokenTTL: 2 * time.Hour, MinInterval: time.Hour}
	src := open(t, clock.Now, opts)
	mustAdd(t, src, "ada@example.com", "Ada-Passw0rd!", "admin")
	mustAdd(t, src, "bob@example.com", "")
	mustAdd(t, src, "carol@example.com", "", "viewer")
	mustAdd(t, src, "dave@example.com", "")
	expired := mustIssue(t, src, "carol@example.com")
	clock.Advance(90 * time.Minute)
	live := mustIssue(t, src, "bob@example.com")
	used := mustIssue(t, src, "dave@example.com")
	if _, err := src.RedeemResetToken(ctx, used, "Dave-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(31 * time.Minute) // carol's token has expired, the others live

	var recs []resetstore.Record
	users, tokens := 0, 0
	err := src.Export(ctx, func(r resetstore.Record) error {
		if (r.User == nil) == (r.Token == nil) {
			t.Errorf("record %+v: want exactly one of User and Token", r)
		}
		if r.User != nil {
			users++
			if tokens > 0 {
				t.Errorf("user %s exported after a token", r.User.Email)
			}
		} else {
			tokens++
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if users != 4 || tokens != 2 {
		t.Errorf("exported %d users and %d tokens, want 4 and 2 (expired tokens left out)", users, tokens)
	}
	stop := errors.New("stop")
	if err := src.Export(ctx, func(resetstore.Record) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Export with a failing fn = %v, want its error", err)
	}

	dst := open(t, clock.Now, opts)
	if err := dst.Import(ctx, recs); err != nil {
		t.Fatal(err)
	}
	want, _ := src.ListUsers(ctx)
	got, err := dst.ListUsers(ctx)
	if err != nil || len(got) != len(want) {
		t.Fatalf("imported users = %+v, %v; want %+v", got, err, want)
	}
	for i := range want {
		if !equalUser(got[i], want[i]) {
			t.Errorf("imported user %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, ok, err := dst.VerifyPassword(ctx, "ada@example.com", "Ada-Passw0rd!"); !ok || err != nil {
		t.Errorf("ada's password after import: %v, %v", ok, err)
	}
	if _, ok, err := dst.VerifyPassword(ctx, "dave@example.com", "Dave-Passw0rd!"); !ok || err != nil {
		t.Errorf("dave's reset password after import: %v, %v", ok, err)
	}
	wantValid(t, dst, live, "bob@example.com")
	_, _, err = dst.ValidateResetToken(ctx, used)
	wantErr(t, "used token after import", err, latch.ErrUsedToken)
	_, _, err = dst.ValidateResetToken(ctx, expired)
	wantInvalid(t, "expired token after import", err)
	// The rate limit moves along: bob was issued a link 31 minutes ago.
	var rl *latch.RateLimitError
	if _, _, err := dst.IssueResetToken(ctx, "bob@example.com"); !errors.As(err, &rl) || rl.RetryAfter != 29*time.Minute {
		t.Errorf("issuing for bob after import: %v, want a 29m rate limit", err)
	}
	if _, err := dst.RedeemResetToken(ctx, live, "Bobs-Passw0rd!"); err != nil {
		t.Errorf("redeeming the imported token: %v", err)
	}
	if n, err := dst.ActiveTokens(ctx); n != 0 || err != nil {
		t.Errorf("ActiveTokens after redeeming = %d, %v; want 0", n, err)
	}

	// Importing again replaces, and a token needs its user.
	if err := dst.Import(ctx, recs[:users]); err != nil {
		t.Errorf("importing the users again: %v", err)
	}
	if u, _ := dst.GetUser(ctx, "carol@example.com"); !slices.Equal(u.Roles, []string{"viewer"}) {
		t.Errorf("carol after re-import = %+v", u)
	}
	orphan := resetstore.Record{Token: &resetstore.TokenRecord{Email: "ghost@example.com",
		Created: clock.Now(), Expires: clock.Now().Add(time.Hour)}}
	empty := open(t, clock.Now, opts)
	if err := empty.Import(ctx, []resetstore.Record{orphan}); !errors.Is(err, latch.ErrUserNotFound) {
		t.Errorf("importing a token without its user: %v, want ErrUserNotFound", err)
	}
}
