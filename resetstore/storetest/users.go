package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
)

var ctx = context.Background()

// start opens a store on a fresh clock.
func start(t *testing.T, open Opener, opts Options) (Store, *Clock) {
	t.Helper()
	c := NewClock()
	return open(t, c.Now, opts), c
}

func mustAdd(t *testing.T, s Store, email, password string, roles ...string) latch.User {
	t.Helper()
	u, err := s.AddUser(ctx, email, roles, password)
	if err != nil {
		t.Fatalf("AddUser(%q): %v", email, err)
	}
	return u
}

func mustIssue(t *testing.T, s Store, email string) string {
	t.Helper()
	tok, _, err := s.IssueResetToken(ctx, email)
	if err != nil {
		t.Fatalf("IssueResetToken(%q): %v", email, err)
	}
	return tok
}

func wantValid(t *testing.T, s Store, token, email string) {
	t.Helper()
	if got, _, err := s.ValidateResetToken(ctx, token); err != nil || got != email {
		t.Errorf("ValidateResetToken = %q, %v; want %q", got, err, email)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

// wantInvalid checks a refusal is ErrInvalidToken and not ErrUsedToken.
func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, latch.ErrInvalidToken) || errors.Is(err, latch.ErrUsedToken) {
		t.Errorf("%s: got %v, want ErrInvalidToken", what, err)
	}
}

func testUsers(t *testing.T, open Opener) {
	s, clock := start(t, open, Options{})
	now := clock.Now()
	u := mustAdd(t, s, "Ada@Example.COM", "Correct-Horse-9", "admin", "editor")
	want := latch.User{Email: "ada@example.com", Roles: []string{"admin", "editor"}, HasPassword: true,
		Created: now, PasswordChanged: now}
	if !equalUser(u, want) {
		t.Errorf("AddUser = %+v, want %+v", u, want)
	}
	for _, email := range []string{"ada@example.com", "ADA@example.com", "Ada@Example.Com"} {
		got, err := s.GetUser(ctx, email)
		if err != nil || !equalUser(got, want) {
			t.Errorf("GetUser(%q) = %+v, %v; want %+v", email, got, err, want)
		}
	}
	clock.Advance(time.Minute)
	b := mustAdd(t, s, "bob@example.com", "")
	if b.HasPassword || b.Roles != nil || !b.PasswordChanged.IsZero() || !b.Created.Equal(now.Add(time.Minute)) {
		t.Errorf("user without password or roles = %+v", b)
	}
	mustAdd(t, s, "carol@example.com", "", "viewer")

	list, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var emails []string
	for _, u := range list {
		emails = append(emails, u.Email)
	}
	if want := []string{"ada@example.com", "bob@example.com", "carol@example.com"}; !slices.Equal(emails, want) {
		t.Errorf("ListUsers emails = %v, want %v", emails, want)
	}

	u, err = s.SetRoles(ctx, "BOB@example.com", []string{"viewer"})
	if err != nil || !slices.Equal(u.Roles, []string{"viewer"}) {
		t.Errorf("SetRoles = %+v, %v", u, err)
	}
	if u, err = s.SetRoles(ctx, "bob@example.com", nil); err != nil || u.Roles != nil {
		t.Errorf("SetRoles(nil) = %+v, %v; want no roles", u, err)
	}
	if got, _ := s.GetUser(ctx, "bob@example.com"); got.Roles != nil {
		t.Errorf("roles after clearing = %v, want nil", got.Roles)
	}

	if err := s.DeleteUser(ctx, "Carol@Example.com"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err = s.GetUser(ctx, "carol@example.com")
	wantErr(t, "GetUser after delete", err, latch.ErrUserNotFound)
	if list, _ := s.ListUsers(ctx); len(list) != 2 {
		t.Errorf("ListUsers after delete: %d users, want 2", len(list))
	}
	// The email is free again.
	mustAdd(t, s, "carol@example.com", "")
}

func testUserErrors(t *testing.T, open Opener) {
	s, _ := start(t, open, Options{})
	mustAdd(t, s, "ada@example.com", "")
	_, err := s.AddUser(ctx, "ADA@EXAMPLE.COM", nil, "")
	wantErr(t, "AddUser twice (other case)", err, latch.ErrUserExists)
	for _, bad := range []string{"", "ada", "@example.com", "ada@", "a@b@c", "ada @example.com", "ada\x00@example.com"} {
		_, err := s.AddUser(ctx, bad, nil, "")
		wantErr(t, "AddUser("+bad+")", err, latch.ErrInvalidEmail)
	}
	_, err = s.GetUser(ctx, "nobody@example.com")
	wantErr(t, "GetUser(unknown)", err, latch.ErrUserNotFound)
	wantErr(t, "DeleteUser(unknown)", s.DeleteUser(ctx, "nobody@example.com"), latch.ErrUserNotFound)
	_, err = s.SetRoles(ctx, "nobody@example.com", nil)
	wantErr(t, "SetRoles(unknown)", err, latch.ErrUserNotFound)
	wantErr(t, "SetPassword(unknown)", s.SetPassword(ctx, "nobody@example.com", "Pw-123456789!"), latch.ErrUserNotFound)
	wantErr(t, "SetPassword(empty)", s.SetPassword(ctx, "ada@example.com", ""), resetstore.ErrEmptyPassword)
	_, _, err = s.IssueResetToken(ctx, "nobody@example.com")
	wantErr(t, "IssueResetToken(unknown)", err, latch.ErrUserNotFound)
	_, _, err = s.IssueResetToken(ctx, "not-an-email")
	wantErr(t, "IssueResetToken(bad email)", err, latch.ErrInvalidEmail)
}

func testVerifyPassword(t *testing.T, open Opener) {
	s, clock := start(t, open, Options{})
	mustAdd(t, s, "ada@example.com", "Correct-Horse-9", "admin")
	mustAdd(t, s, "bob@example.com", "")
	u, ok, err := s.VerifyPassword(ctx, "ADA@example.com", "Correct-Horse-9")
	if !ok || err != nil || u.Email != "ada@example.com" || !slices.Equal(u.Roles, []string{"admin"}) {
		t.Errorf("VerifyPassword(right) = %+v, %v, %v", u, ok, err)
	}
	for _, tt := range []struct{ email, pw string }{
		{"ada@example.com", "correct-horse-9"},
		{"ada@example.com", ""},
		{"bob@example.com", ""},
		{"bob@example.com", "anything"},
		{"nobody@example.com", "Correct-Horse-9"},
		{"not-an-email", "Correct-Horse-9"},
	} {
		if u, ok, err := s.VerifyPassword(ctx, tt.email, tt.pw); ok || err != nil || u.Email != "" {
			t.Errorf("VerifyPassword(%q, %q) = %+v, %v, %v; want a denial without error", tt.email, tt.pw, u, ok, err)
		}
	}
	clock.Advance(time.Hour)
	if err := s.SetPassword(ctx, "Bob@example.com", "Bobs-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	if u, ok, err := s.VerifyPassword(ctx, "bob@example.com", "Bobs-Passw0rd!"); !ok || err != nil || !u.HasPassword ||
		!u.PasswordChanged.Equal(clock.Now()) {
		t.Errorf("VerifyPassword after SetPassword = %+v, %v, %v", u, ok, err)
	}
}

func equalUser(a, b latch.User) bool {
	return a.Email == b.Email && slices.Equal(a.Roles, b.Roles) && a.HasPassword == b.HasPassword &&
		a.Created.Equal(b.Created) && a.PasswordChanged.Equal(b.PasswordChanged)
}
