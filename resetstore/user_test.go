package resetstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
)

func TestAddUserValidation(t *testing.T) {
	s, _ := openStore(t, resetstore.Options{})
	ctx := context.Background()
	mustAddUser(t, s, "Alice@Example.com", "")

	tests := []struct {
		email string
		want  error
	}{
		{"alice@example.com", latch.ErrUserExists},
		{"ALICE@EXAMPLE.COM", latch.ErrUserExists},
		{"", latch.ErrInvalidEmail},
		{"alice", latch.ErrInvalidEmail},
		{"@example.com", latch.ErrInvalidEmail},
		{"alice@", latch.ErrInvalidEmail},
		{"a@b@c", latch.ErrInvalidEmail},
		{"al ice@example.com", latch.ErrInvalidEmail},
		{"alice@example.com\x00", latch.ErrInvalidEmail},
		{"bad\xff@example.com", latch.ErrInvalidEmail},
		{strings.Repeat("a", 250) + "@b.co", latch.ErrInvalidEmail},
		{"bob@example.com", nil},
	}
	for _, tt := range tests {
		_, err := s.AddUser(ctx, tt.email, nil, "")
		if !errors.Is(err, tt.want) {
			t.Errorf("AddUser(%q) = %v, want %v", tt.email, err, tt.want)
		}
	}
}

func TestUserCRUD(t *testing.T) {
	s, clock := openStore(t, resetstore.Options{})
	ctx := context.Background()
	created := clock.Now()

	u := mustAddUser(t, s, "Carol@Example.COM", "correct horse battery", "admin", "editor")
	want := latch.User{
		Email: "carol@example.com", Roles: []string{"admin", "editor"}, HasPassword: true,
		Created: created, PasswordChanged: created, Generation: u.Generation,
	}
	if u.Generation == 0 {
		t.Errorf("AddUser: Generation 0, want a drawn one")
	}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("AddUser = %+v, want %+v", u, want)
	}
	for _, email := range []string{"carol@example.com", "CAROL@example.com"} {
		got, err := s.GetUser(ctx, email)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("GetUser(%q) = %+v, %v; want %+v", email, got, err, want)
		}
	}

	mustAddUser(t, s, "alice@example.com", "")
	clock.Advance(time.Hour)
	u, err := s.SetRoles(ctx, "CAROL@example.com", []string{"viewer"})
	if err != nil || !slices.Equal(u.Roles, []string{"viewer"}) {
		t.Fatalf("SetRoles = %+v, %v; want roles [viewer]", u, err)
	}

	if u, err := s.SetRoles(ctx, "alice@example.com", []string{}); err != nil || u.Roles != nil {
		t.Errorf("SetRoles(empty) = %#v, %v; want nil roles", u.Roles, err)
	}
	list, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var emails []string
	for _, u := range list {
		emails = append(emails, u.Email)
	}
	if want := []string{"alice@example.com", "carol@example.com"}; !slices.Equal(emails, want) {
		t.Errorf("ListUsers emails = %v, want %v", emails, want)
	}
	if list[0].HasPassword || !list[1].HasPassword {
		t.Errorf("ListUsers HasPassword = %v, %v; want false, true", list[0].HasPassword, list[1].HasPassword)
	}

	if err := s.DeleteUser(ctx, "Carol@example.com"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := s.GetUser(ctx, "carol@example.com"); !errors.Is(err, latch.ErrUserNotFound) {
		t.Errorf("GetUser after delete = %v, want ErrUserNotFound", err)
	}
	if err := s.DeleteUser(ctx, "carol@example.com"); !errors.Is(err, latch.ErrUserNotFound) {
		t.Errorf("second DeleteUser = %v, want ErrUserNotFound", err)
	}
	if _, err := s.SetRoles(ctx, "nobody@example.com", nil); !errors.Is(err, latch.ErrUserNotFound) {
		t.Errorf("SetRoles(unknown) = %v, want ErrUserNotFound", err)
	}
	if err := s.SetPassword(ctx, "nobody@example.com", "x"); !errors.Is(err, latch.ErrUserNotFound) {
		t.Errorf("SetPassword(unknown) = %v, want ErrUserNotFound", err)
	}
	if err := s.SetPassword(ctx, "alice@example.com", ""); !errors.Is(err, resetstore.ErrEmptyPassword) {
		t.Errorf("SetPassword(empty) = %v, want ErrEmptyPassword", err)
	}
}

func TestUserNeverExposesHash(t *testing.T) {
	s, _ := openStore(t, resetstore.Options{})
	mustAddUser(t, s, "dave@example.com", "s3cret-Passw0rd!")

	// No field of User can carry a hash: only these exist.
	var fields []string
	for f := range reflect.TypeFor[latch.User]().Fields() {
		fields = append(fields, f.Name)
	}
	if want := []string{"Email", "Roles", "HasPassword", "Created", "PasswordChanged", "Generation"}; !slices.Equal(fields, want) {
		t.Errorf("User fields = %v, want %v", fields, want)
	}
	list, err := s.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if dump := fmt.Sprintf("%#v", list); strings.Contains(dump, "argon2") || strings.Contains(dump, "s3cret") {
		t.Errorf("ListUsers exposes secret material: %s", dump)
	}
	// The stored record holds a PHC argon2id hash, not the password.
	raw, err := resetstore.RawBucket(s, resetstore.BucketUsers)
	if err != nil {
		t.Fatal(err)
	}
	rec := string(raw["dave@example.com"])
	if !strings.Contains(rec, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(rec, "s3cret") {
		t.Errorf("stored user record = %s, want an argon2id hash and no password", rec)
	}
}

func TestVerifyPassword(t *testing.T) {
	s, _ := openStore(t, resetstore.Options{})
	ctx := context.Background()
	mustAddUser(t, s, "erin@example.com", "right-Passw0rd!")
	mustAddUser(t, s, "nopass@example.com", "")

	tests := []struct {
		email, password string
		want            bool
	}{
		{"erin@example.com", "right-Passw0rd!", true},
		{"ERIN@example.com", "right-Passw0rd!", true},
		{"erin@example.com", "wrong-Passw0rd!", false},
		{"erin@example.com", "", false},
		{"nobody@example.com", "right-Passw0rd!", false},
		{"nopass@example.com", "", false},
		{"nopass@example.com", "anything", false},
		{"not an email", "right-Passw0rd!", false},
	}
	for _, tt := range tests {
		u, ok, err := s.VerifyPassword(ctx, tt.email, tt.password)
		if err != nil || ok != tt.want {
			t.Errorf("VerifyPassword(%q, %q) = %v, %v; want %v, nil", tt.email, tt.password, ok, err, tt.want)
		}
		if ok && u.Email != "erin@example.com" {
			t.Errorf("VerifyPassword(%q) user = %q, want erin@example.com", tt.email, u.Email)
		}
	}

	// Changing the hash parameters later keeps old hashes verifiable.
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := resetstore.Open(path, resetstore.Options{Hash: resetstore.HashParams{Time: 2, MemoryKiB: 128, Threads: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, ok, err := s2.VerifyPassword(ctx, "erin@example.com", "right-Passw0rd!"); !ok || err != nil {
		t.Errorf("VerifyPassword after param change = %v, %v; want true, nil", ok, err)
	}
}
