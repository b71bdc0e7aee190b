package storetest

import (
	"testing"
	"time"

	"github.com/latch-dev/latch/resetstore"
)

// gen reads the user's Generation, failing the test if the user is missing.
func gen(t *testing.T, s Store, email string) uint64 {
	t.Helper()
	u, err := s.GetUser(ctx, email)
	if err != nil {
		t.Fatalf("GetUser(%q): %v", email, err)
	}
	return u.Generation
}

// testGeneration: every user has a non-zero Generation, read alike by
// AddUser, GetUser, ListUsers and VerifyPassword; setting the password (by
// SetPassword or a redeemed link) draws a new one; a role change and a
// reset link being issued keep it; a deleted and re-created user has
// another one.
func testGeneration(t *testing.T, open Opener) {
	s, clock := start(t, open, Options{MinInterval: -1})
	const email, pw = "ada@example.com", "Ada-Passw0rd!"
	added := mustAdd(t, s, email, pw, "admin")
	g := added.Generation
	if g == 0 {
		t.Fatal("AddUser: Generation is 0, want a drawn one")
	}
	if got := gen(t, s, email); got != g {
		t.Errorf("GetUser Generation = %d, want AddUser's %d", got, g)
	}
	if list, err := s.ListUsers(ctx); err != nil || len(list) != 1 || list[0].Generation != g {
		t.Errorf("ListUsers = %+v, %v; want Generation %d", list, err, g)
	}
	if other := mustAdd(t, s, "bob@example.com", ""); other.Generation == 0 || other.Generation == g {
		t.Errorf("a second user's Generation = %d (ada's %d), want its own", other.Generation, g)
	}
	// VerifyPassword returns the Generation it read with the hash.
	if u, ok, err := s.VerifyPassword(ctx, email, pw); !ok || err != nil || u.Generation != g {
		t.Errorf("VerifyPassword = %+v, %v, %v; want Generation %d", u, ok, err, g)
	}

	// A role change keeps it: sessions read the roles at check time.
	if u, err := s.SetRoles(ctx, email, []string{"viewer"}); err != nil || u.Generation != g {
		t.Errorf("SetRoles = %+v, %v; want Generation %d kept", u, err, g)
	}
	if got := gen(t, s, email); got != g {
		t.Errorf("Generation after SetRoles = %d, want %d kept", got, g)
	}
	// Issuing a link changes nothing a session depends on.
	mustIssue(t, s, email)
	if got := gen(t, s, email); got != g {
		t.Errorf("Generation after IssueResetToken = %d, want %d kept", got, g)
	}

	// Setting the password draws a new one.
	clock.Advance(time.Second)
	if err := s.SetPassword(ctx, email, "Ada-Passw0rd-2!"); err != nil {
		t.Fatal(err)
	}
	g2 := gen(t, s, email)
	if g2 == 0 || g2 == g {
		t.Errorf("Generation after SetPassword = %d (before %d), want a new non-zero one", g2, g)
	}
	// So does redeeming a link; the read before the redemption (a login
	// racing it) holds the old one.
	tok := mustIssue(t, s, email)
	before, ok, err := s.VerifyPassword(ctx, email, "Ada-Passw0rd-2!")
	if !ok || err != nil || before.Generation != g2 {
		t.Fatalf("VerifyPassword before redeem = %+v, %v, %v", before, ok, err)
	}
	if _, err := s.RedeemResetToken(ctx, tok, "Ada-Passw0rd-3!"); err != nil {
		t.Fatal(err)
	}
	g3 := gen(t, s, email)
	if g3 == 0 || g3 == g2 || g3 == g {
		t.Errorf("Generation after RedeemResetToken = %d (before %d, %d), want a new one", g3, g2, g)
	}
	if after, ok, err := s.VerifyPassword(ctx, email, "Ada-Passw0rd-3!"); !ok || err != nil || after.Generation != g3 {
		t.Errorf("VerifyPassword after redeem = %+v, %v, %v; want Generation %d", after, ok, err, g3)
	}

	// Delete and re-create: another one.
	if err := s.DeleteUser(ctx, email); err != nil {
		t.Fatal(err)
	}
	again := mustAdd(t, s, email, pw, "admin")
	if again.Generation == 0 || again.Generation == g3 {
		t.Errorf("re-created user's Generation = %d, deleted one's %d; want another", again.Generation, g3)
	}
}

// testGenerationMigrates: Export and Import carry the Generation, so the
// login tokens bound to it stay valid in a migrated store (browser
// sessions do not migrate: testSessionsNotMigrated).
func testGenerationMigrates(t *testing.T, open Opener) {
	clock := NewClock()
	src := open(t, clock.Now, Options{})
	mustAdd(t, src, "ada@example.com", "Ada-Passw0rd!", "admin")
	want := gen(t, src, "ada@example.com")
	var recs []resetstore.Record
	if err := src.Export(ctx, func(r resetstore.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	dst := open(t, clock.Now, Options{})
	if err := dst.Import(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if got := gen(t, dst, "ada@example.com"); got != want {
		t.Errorf("imported Generation = %d, want %d", got, want)
	}
}
