package storetest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
)

// waitLimit bounds every wait in the suite. It guards against hanging, not
// against slowness: nothing asserts how fast a wait ends.
const waitLimit = time.Minute

// newKey returns a fresh session key as the proxy makes one: the hex
// SHA-256 of a random secret.
func newKey() string {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// session is a session for u beginning at now and lasting ttl.
func session(u latch.User, now time.Time, ttl time.Duration) latch.BrowserSession {
	return latch.BrowserSession{Email: u.Email, Generation: u.Generation, Created: now, LastSeen: now,
		Expires: now.Add(ttl)}
}

// mustCreate creates a session for the user as stored now, lasting ttl on
// clock, and returns its key.
func mustCreate(t *testing.T, s Store, clock *Clock, email string, ttl time.Duration) string {
	t.Helper()
	u, err := s.GetUser(ctx, email)
	if err != nil {
		t.Fatalf("GetUser(%q): %v", email, err)
	}
	key := newKey()
	if err := s.CreateBrowserSession(ctx, key, session(u, clock.Now(), ttl)); err != nil {
		t.Fatalf("CreateBrowserSession(%q): %v", email, err)
	}
	return key
}

// wantSession checks the session under key is live and is want.
func wantSession(t *testing.T, s Store, what, key string, want latch.BrowserSession) {
	t.Helper()
	got, err := s.BrowserSession(ctx, key)
	if err != nil {
		t.Errorf("%s: BrowserSession = %v, want a live session", what, err)
		return
	}
	if got.Email != want.Email || got.Generation != want.Generation || !got.Created.Equal(want.Created) ||
		!got.LastSeen.Equal(want.LastSeen) || !got.Expires.Equal(want.Expires) {
		t.Errorf("%s: BrowserSession = %+v, want %+v", what, got, want)
	}
}

// wantEnded checks the session under key is gone: not readable, not
// touchable (which must not revive it either).
func wantEnded(t *testing.T, s Store, what, key string, now time.Time) {
	t.Helper()
	if got, err := s.BrowserSession(ctx, key); !errors.Is(err, latch.ErrSessionNotFound) {
		t.Errorf("%s: BrowserSession = %+v, %v; want ErrSessionNotFound", what, got, err)
	}
	wantErr(t, what+": TouchBrowserSession", s.TouchBrowserSession(ctx, key, now), latch.ErrSessionNotFound)
	if got, err := s.BrowserSession(ctx, key); !errors.Is(err, latch.ErrSessionNotFound) {
		t.Errorf("%s: BrowserSession after a touch = %+v, %v; want ErrSessionNotFound", what, got, err)
	}
}

// testSessions: create, read, touch and delete, with the email folded and
// every field kept; sessions of one user are independent of each other.
func testSessions(t *testing.T, open Opener) {
	t.Parallel()
	s, clock := start(t, open, Options{})
	ada := mustAdd(t, s, "Ada@Example.com", "Ada-Passw0rd!")
	created := clock.Now()
	key, other := newKey(), newKey()
	in := session(ada, created, 12*time.Hour)
	in.Email = "ADA@example.COM"
	for _, k := range []string{key, other} {
		if err := s.CreateBrowserSession(ctx, k, in); err != nil {
			t.Fatalf("CreateBrowserSession: %v", err)
		}
	}
	want := session(ada, created, 12*time.Hour)
	wantSession(t, s, "created", key, want)

	// A key in use is refused, and the session stays as it was.
	stolen := session(mustAdd(t, s, "eve@example.com", ""), created, 24*time.Hour)
	wantErr(t, "CreateBrowserSession(key in use)", s.CreateBrowserSession(ctx, key, stolen), resetstore.ErrSessionKeyInUse)
	wantSession(t, s, "after a refused re-create", key, want)

	clock.Advance(time.Minute)
	seen := clock.Now().Add(time.Second) // the caller's time, not the store's
	if err := s.TouchBrowserSession(ctx, key, seen); err != nil {
		t.Fatalf("TouchBrowserSession: %v", err)
	}
	want.LastSeen = seen
	wantSession(t, s, "touched", key, want)
	wantSession(t, s, "the other session after a touch of the first", other, session(ada, created, 12*time.Hour))

	if err := s.DeleteBrowserSession(ctx, key); err != nil {
		t.Fatalf("DeleteBrowserSession: %v", err)
	}
	wantEnded(t, s, "deleted", key, clock.Now())
	if err := s.DeleteBrowserSession(ctx, key); err != nil {
		t.Errorf("DeleteBrowserSession again = %v, want nil", err)
	}
	if err := s.DeleteBrowserSession(ctx, newKey()); err != nil {
		t.Errorf("DeleteBrowserSession(never created) = %v, want nil", err)
	}
	wantSession(t, s, "the other session after a delete of the first", other, session(ada, created, 12*time.Hour))
	// The user is untouched by its sessions coming and going.
	if u, err := s.GetUser(ctx, "ada@example.com"); err != nil || u.Generation != ada.Generation {
		t.Errorf("GetUser = %+v, %v; want Generation %d", u, err, ada.Generation)
	}
}

// testSessionUnknownUser: a session for no user is refused and not stored.
func testSessionUnknownUser(t *testing.T, open Opener) {
	t.Parallel()
	s, clock := start(t, open, Options{})
	mustAdd(t, s, "ada@example.com", "")
	for _, email := range []string{"nobody@example.com", "not-an-email", ""} {
		key := newKey()
		err := s.CreateBrowserSession(ctx, key, latch.BrowserSession{Email: email, Generation: 1,
			Created: clock.Now(), LastSeen: clock.Now(), Expires: clock.Now().Add(time.Hour)})
		wantErr(t, "CreateBrowserSession("+email+")", err, latch.ErrUserNotFound)
		if _, err := s.BrowserSession(ctx, key); !errors.Is(err, latch.ErrSessionNotFound) {
			t.Errorf("session refused for %q: BrowserSession = %v, want ErrSessionNotFound", email, err)
		}
	}
}

// testSessionBadKeys: keys that are not 64 lower-case hex digits are
// refused by every session method with ErrSessionNotFound, even when they
// spell a live session's key in another case.
func testSessionBadKeys(t *testing.T, open Opener) {
	t.Parallel()
	s, clock := start(t, open, Options{})
	mustAdd(t, s, "ada@example.com", "")
	key := mustCreate(t, s, clock, "ada@example.com", time.Hour)
	secret := make([]byte, 32)
	bad := map[string]string{
		"empty":            "",
		"63 digits":        key[:63],
		"65 digits":        key + "0",
		"128 digits":       key + key,
		"upper-case hex":   strings.ToUpper(key),
		"one upper digit":  key[:63] + strings.ToUpper(newKeyEndingInLetter()[63:]),
		"non-hex":          strings.Repeat("g", 64),
		"space":            " " + key[1:],
		"base64 secret":    base64.RawURLEncoding.EncodeToString(secret),
		"raw 32 bytes":     string(secret),
		"path":             "../" + key[3:],
		"prefix of a path": key[:32] + "/" + key[33:],
	}
	u, _ := s.GetUser(ctx, "ada@example.com")
	for name, k := range bad {
		if latch.ValidSessionKey(k) {
			t.Fatalf("%s: %q is a valid key; the test is wrong", name, k)
		}
		if got, err := s.BrowserSession(ctx, k); !errors.Is(err, latch.ErrSessionNotFound) {
			t.Errorf("BrowserSession(%s) = %+v, %v; want ErrSessionNotFound", name, got, err)
		}
		wantErr(t, "TouchBrowserSession("+name+")", s.TouchBrowserSession(ctx, k, clock.Now()), latch.ErrSessionNotFound)
		wantErr(t, "DeleteBrowserSession("+name+")", s.DeleteBrowserSession(ctx, k), latch.ErrSessionNotFound)
		wantErr(t, "CreateBrowserSession("+name+")",
			s.CreateBrowserSession(ctx, k, session(u, clock.Now(), time.Hour)), latch.ErrSessionNotFound)
	}
	// None of that touched the real session.
	wantSession(t, s, "after bad keys", key, session(u, clock.Now(), time.Hour))
}

// newKeyEndingInLetter returns a fresh key whose last digit is a-f.
func newKeyEndingInLetter() string {
	for {
		if k := newKey(); k[63] >= 'a' {
			return k
		}
	}
}

// testSessionExpiry: a session is live while the store's clock is before
// its Expires, and then ends for reading and touching; a session that
// would begin expired is refused.
func testSessionExpiry(t *testing.T, open Opener) {
	t.Parallel()
	s, clock := start(t, open, Options{})
	u := mustAdd(t, s, "ada@example.com", "")
	begin := clock.Now()
	key := mustCreate(t, s, clock, "ada@example.com", time.Hour)
	want := session(u, begin, time.Hour)

	clock.Advance(time.Hour - time.Nanosecond)
	wantSession(t, s, "a nanosecond before Expires", key, want)
	if err := s.TouchBrowserSession(ctx, key, clock.Now()); err != nil {
		t.Errorf("TouchBrowserSession a nanosecond before Expires = %v", err)
	}
	clock.Advance(time.Nanosecond)
	wantEnded(t, s, "at Expires", key, clock.Now())
	clock.Advance(time.Hour)
	wantEnded(t, s, "after Expires", key, clock.Now())
	if err := s.DeleteBrowserSession(ctx, key); err != nil {
		t.Errorf("DeleteBrowserSession(expired) = %v, want nil", err)
	}

	// The clock is the store's: Created and Expires are the caller's, but
	// a session must not be over on arrival.
	for name, ttl := range map[string]time.Duration{"expiring now": 0, "expired": -time.Minute} {
		k := newKey()
		err := s.CreateBrowserSession(ctx, k, session(u, clock.Now(), ttl))
		wantErr(t, "CreateBrowserSession("+name+")", err, latch.ErrSessionNotFound)
		if _, err := s.BrowserSession(ctx, k); !errors.Is(err, latch.ErrSessionNotFound) {
			t.Errorf("%s: BrowserSession = %v, want ErrSessionNotFound", name, err)
		}
	}
	// Expires is what counts, not Created or LastSeen.
	k := newKey()
	old := latch.BrowserSession{Email: u.Email, Generation: u.Generation, Created: begin.Add(-48 * time.Hour),
		LastSeen: begin.Add(-47 * time.Hour), Expires: clock.Now().Add(time.Minute)}
	if err := s.CreateBrowserSession(ctx, k, old); err != nil {
		t.Fatalf("CreateBrowserSession(old Created) = %v", err)
	}
	wantSession(t, s, "created long ago, expiring later", k, old)
}

// testSessionsEndWithUserChanges: setting a user's password (either way),
// roles or existence ends every session of that user, and no one else's.
func testSessionsEndWithUserChanges(t *testing.T, open Opener) {
	t.Parallel()
	changes := []struct {
		name string
		fn   func(s Store, email string) error
		// newGen: the change draws a new Generation, so a login checked
		// before it cannot begin a session after it.
		newGen bool
	}{
		{"SetPassword", func(s Store, e string) error { return s.SetPassword(ctx, e, "New-Passw0rd!") }, true},
		{"RedeemResetToken", func(s Store, e string) error {
			tok, _, err := s.IssueResetToken(ctx, e)
			if err != nil {
				return err
			}
			_, err = s.RedeemResetToken(ctx, tok, "New-Passw0rd!")
			return err
		}, true},
		{"SetRoles", func(s Store, e string) error { _, err := s.SetRoles(ctx, e, []string{"viewer"}); return err }, false},
		{"DeleteUser", func(s Store, e string) error { return s.DeleteUser(ctx, e) }, false},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, clock := start(t, open, Options{})
			before := mustAdd(t, s, "ada@example.com", "Ada-Passw0rd!", "admin")
			bob := mustAdd(t, s, "bob@example.com", "", "admin")
			// "ada@example.co" shares a prefix with ada's email.
			adaCo := mustAdd(t, s, "ada@example.co", "")
			var adas, others []string
			for range 3 {
				adas = append(adas, mustCreate(t, s, clock, "ada@example.com", time.Hour))
			}
			others = append(others, mustCreate(t, s, clock, "bob@example.com", time.Hour),
				mustCreate(t, s, clock, "bob@example.com", time.Hour),
				mustCreate(t, s, clock, "ada@example.co", time.Hour))
			begin := clock.Now()
			clock.Advance(time.Second)

			if err := c.fn(s, "ada@example.com"); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			for i, k := range adas {
				wantEnded(t, s, c.name+": ada's session "+string(rune('0'+i)), k, clock.Now())
			}
			for i, k := range others[:2] {
				wantSession(t, s, c.name+": bob's session "+string(rune('0'+i)), k, session(bob, begin, time.Hour))
			}
			wantSession(t, s, c.name+": ada@example.co's session", others[2], session(adaCo, begin, time.Hour))

			if c.name == "DeleteUser" {
				return // testSessionsNotRevived goes on from here
			}
			// A login checked before the change: refused if the change drew
			// a new Generation, a live session if not.
			late := newKey()
			err := s.CreateBrowserSession(ctx, late, session(before, clock.Now(), time.Hour))
			if c.newGen {
				wantErr(t, c.name+": CreateBrowserSession with the old Generation", err, resetstore.ErrStaleSession)
				wantErr(t, c.name+": ErrStaleSession", err, latch.ErrSessionNotFound)
				if _, err := s.BrowserSession(ctx, late); !errors.Is(err, latch.ErrSessionNotFound) {
					t.Errorf("%s: a refused session is readable: %v", c.name, err)
				}
			} else if err != nil {
				t.Errorf("%s: CreateBrowserSession with the kept Generation = %v", c.name, err)
			}
			// A login after the change begins a session as usual.
			mustCreate(t, s, clock, "ada@example.com", time.Hour)
		})
	}
}

// testSessionsNotRevived: a deleted and re-created user gets none of the
// old sessions back, and a login checked before the delete cannot begin
// one for the new user.
func testSessionsNotRevived(t *testing.T, open Opener) {
	t.Parallel()
	s, clock := start(t, open, Options{})
	old := mustAdd(t, s, "ada@example.com", "Ada-Passw0rd!", "admin")
	keys := []string{mustCreate(t, s, clock, "ada@example.com", time.Hour),
		mustCreate(t, s, clock, "ada@example.com", time.Hour)}
	if err := s.DeleteUser(ctx, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CreateBrowserSession for a deleted user",
		s.CreateBrowserSession(ctx, newKey(), session(old, clock.Now(), time.Hour)), latch.ErrUserNotFound)
	again := mustAdd(t, s, "ada@example.com", "Ada-Passw0rd!", "admin")
	for _, k := range keys {
		wantEnded(t, s, "a deleted user's session after re-creation", k, clock.Now())
	}
	stale := newKey()
	wantErr(t, "CreateBrowserSession with the deleted user's Generation",
		s.CreateBrowserSession(ctx, stale, session(old, clock.Now(), time.Hour)), resetstore.ErrStaleSession)
	key := mustCreate(t, s, clock, "ada@example.com", time.Hour)
	wantSession(t, s, "the re-created user's session", key, session(again, clock.Now(), time.Hour))
}

// testSessionsNotMigrated: Export carries no sessions, and Import ends the
// sessions of the users it replaces.
func testSessionsNotMigrated(t *testing.T, open Opener) {
	t.Parallel()
	clock := NewClock()
	src := open(t, clock.Now, Options{})
	mustAdd(t, src, "ada@example.com", "Ada-Passw0rd!")
	mustAdd(t, src, "bob@example.com", "")
	key := mustCreate(t, src, clock, "ada@example.com", time.Hour)
	var recs []resetstore.Record
	if err := src.Export(ctx, func(r resetstore.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	dst := open(t, clock.Now, Options{})
	mustAdd(t, dst, "ada@example.com", "")
	mustAdd(t, dst, "carol@example.com", "")
	replaced := mustCreate(t, dst, clock, "ada@example.com", time.Hour)
	kept := mustCreate(t, dst, clock, "carol@example.com", time.Hour)
	if err := dst.Import(ctx, recs); err != nil {
		t.Fatal(err)
	}
	wantEnded(t, dst, "the source's session in the destination", key, clock.Now())
	wantEnded(t, dst, "a session of a user Import replaced", replaced, clock.Now())
	carol, _ := dst.GetUser(ctx, "carol@example.com")
	wantSession(t, dst, "a session of a user Import left alone", kept, session(carol, clock.Now(), time.Hour))
	// The source is unchanged by exporting.
	ada, _ := src.GetUser(ctx, "ada@example.com")
	wantSession(t, src, "the source's session after Export", key, session(ada, clock.Now(), time.Hour))
}

// testSessionsRaceUserChange: logins (creates) and touches racing a
// password change leave no session of the old state alive, and touches of
// another user's session all succeed.
func testSessionsRaceUserChange(t *testing.T, open Opener) {
	t.Parallel()
	s, clock := start(t, open, Options{})
	ada := mustAdd(t, s, "ada@example.com", "Ada-Passw0rd!")
	bob := mustAdd(t, s, "bob@example.com", "")
	touched := mustCreate(t, s, clock, "ada@example.com", time.Hour)
	bobs := mustCreate(t, s, clock, "bob@example.com", time.Hour)

	const creators, touchers, maxCreates = 4, 4, 200
	var (
		creating, touching sync.WaitGroup
		mu                 sync.Mutex
		created            []string // keys whose create succeeded
		first              = make(chan struct{})
		once               sync.Once
		errs               = make(chan error, creators+touchers)
		stop               = make(chan struct{})
	)
	for range creators {
		creating.Go(func() {
			for range maxCreates {
				k := newKey()
				err := s.CreateBrowserSession(ctx, k, session(ada, clock.Now(), time.Hour))
				if errors.Is(err, resetstore.ErrStaleSession) {
					return // the password change has happened
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				created = append(created, k)
				mu.Unlock()
				once.Do(func() { close(first) })
			}
		})
	}
	for range touchers {
		touching.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.TouchBrowserSession(ctx, bobs, clock.Now()); err != nil {
					errs <- err
					return
				}
				err := s.TouchBrowserSession(ctx, touched, clock.Now())
				if err != nil && !errors.Is(err, latch.ErrSessionNotFound) { // not found: ended by the change
					errs <- err
					return
				}
			}
		})
	}
	waitFor(t, "a first session", first)
	if err := s.SetPassword(ctx, "ada@example.com", "New-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the creators", waitGroupDone(&creating))
	close(stop)
	waitFor(t, "the touchers", waitGroupDone(&touching))
	close(errs)
	for err := range errs {
		t.Errorf("racing call: %v", err)
	}
	for _, k := range append(created, touched) {
		wantEnded(t, s, "a session of the old password", k, clock.Now())
	}
	wantSession(t, s, "bob's session", bobs, session(bob, clock.Now(), time.Hour))
}

// waitGroupDone returns a channel closed when wg's goroutines are done.
func waitGroupDone(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}

// waitFor waits until ch is closed, failing the test after waitLimit.
func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("gave up after %v waiting for %s", waitLimit, what)
	}
}
