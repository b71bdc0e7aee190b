package resetstore

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/latch-dev/latch"
)

// The rules below are exported for the other backend (etcdstore), so that
// every backend applies them exactly as this one does and a record copied
// between them (see Export) means the same thing. So are NewToken,
// ParseToken and TokenHash (token.go), HashPassword (password.go),
// ErrTokenExpired and the session errors (errors.go). The rules shared
// beyond the stores (email folding, the shape of a session key, password
// rules) are the root package's: latch.NormalizeEmail,
// latch.ValidSessionKey, latch.PasswordProblems.

// CheckRateLimit returns a *latch.RateLimitError if the user was issued a
// reset token less than minInterval before now, so that every backend
// applies Options.MinInterval alike; nil otherwise. minInterval <= 0
// disables the limit.
func (r *UserRecord) CheckRateLimit(now time.Time, minInterval time.Duration) error {
	if minInterval <= 0 || r.ResetIssued.IsZero() {
		return nil
	}
	if wait := r.ResetIssued.Add(minInterval).Sub(now); wait > 0 {
		return &latch.RateLimitError{RetryAfter: min(wait, minInterval)}
	}
	return nil
}

// DummyHash returns a function giving a hash of a random password with p,
// computed on first use, for VerifyUser to check against when there is no
// real hash.
func DummyHash(p HashParams) func() string {
	return sync.OnceValue(func() string {
		pw := make([]byte, 32)
		_, _ = rand.Read(pw)
		h, _ := HashPassword(string(pw), p)
		return h
	})
}

// VerifyUser is every backend's VerifyPassword once the user is read (rec
// nil if there is none): an unknown user, a user without a password and an
// empty or wrong password all return false with a nil error, after an
// argon2id computation against dummyHash when there is no real hash, so a
// miss costs about as much as a hit. err is only for a malformed stored hash.
func VerifyUser(rec *UserRecord, password string, dummyHash func() string) (latch.User, bool, error) {
	if rec == nil || rec.PasswordHash == "" || password == "" {
		_, _ = checkPassword(dummyHash(), password)
		return latch.User{}, false, nil
	}
	ok, err := checkPassword(rec.PasswordHash, password)
	if err != nil {
		return latch.User{}, false, fmt.Errorf("resetstore: user %q: %w", rec.Email, err)
	}
	if !ok {
		return latch.User{}, false, nil
	}
	return rec.User(), true, nil
}

// NewGeneration draws a user's next Generation: random, never zero and
// never prev.
func NewGeneration(prev uint64) uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		if g := binary.BigEndian.Uint64(b[:]); g != 0 && g != prev {
			return g
		}
	}
}

// SessionLive is every backend's liveness rule for a stored session: it is
// live while now is before its Expires, as reset tokens are.
func SessionLive(s latch.BrowserSession, now time.Time) bool { return now.Before(s.Expires) }

// CheckNewSession is every backend's check of a session about to be
// created for the user rec (rec.Email already folded): the session must
// begin in the user's current Generation and must not already be expired
// at now.
func CheckNewSession(rec *UserRecord, s latch.BrowserSession, now time.Time) error {
	if s.Generation != rec.Generation {
		return ErrStaleSession
	}
	if !SessionLive(s, now) {
		return ErrSessionExpired
	}
	return nil
}

// NewSessionEmail folds a new session's email as the stores fold emails, for
// CreateBrowserSession. An address NormalizeEmail refuses belongs to no
// user: the error is both latch.ErrUserNotFound and latch.ErrInvalidEmail.
func NewSessionEmail(email string) (string, error) {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return "", fmt.Errorf("%w: %w", latch.ErrUserNotFound, err)
	}
	return key, nil
}
