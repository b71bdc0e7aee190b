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

// SessionRecord is a browser session as every backend stores it (JSON),
// so that a record means the same in both.
type SessionRecord struct {
	Email      string    `json:"email"`
	Generation uint64    `json:"gen,omitempty"`
	Created    time.Time `json:"created"`
	LastSeen   time.Time `json:"last_seen"`
	Expires    time.Time `json:"expires"`
}

// NewSessionRecord is the record CreateBrowserSession stores for s: its
// Email folded as the stores fold emails, its times without monotonic
// readings. An address NormalizeEmail refuses belongs to no user: the error
// is both latch.ErrUserNotFound and latch.ErrInvalidEmail.
func NewSessionRecord(s latch.BrowserSession) (*SessionRecord, error) {
	email, err := latch.NormalizeEmail(s.Email)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", latch.ErrUserNotFound, err)
	}
	return &SessionRecord{Email: email, Generation: s.Generation, Created: s.Created.Round(0),
		LastSeen: s.LastSeen.Round(0), Expires: s.Expires.Round(0)}, nil
}

// Session is the record as latch.BrowserSession.
func (r *SessionRecord) Session() latch.BrowserSession {
	return latch.BrowserSession{Email: r.Email, Generation: r.Generation, Created: r.Created,
		LastSeen: r.LastSeen, Expires: r.Expires}
}

// CheckLive is every backend's liveness rule for a stored session: nil
// while now is before its Expires (as for reset tokens), ErrSessionExpired
// after.
func (r *SessionRecord) CheckLive(now time.Time) error {
	if !now.Before(r.Expires) {
		return ErrSessionExpired
	}
	return nil
}

// CheckNew is every backend's check of a session about to be created for
// the user u: it must begin in the user's current Generation
// (ErrStaleSession) and must not already be expired at now.
func (r *SessionRecord) CheckNew(u *UserRecord, now time.Time) error {
	if r.Generation != u.Generation {
		return ErrStaleSession
	}
	return r.CheckLive(now)
}

// CheckSessionKey refuses, with an error wrapping latch.ErrSessionNotFound,
// a key latch.ValidSessionKey refuses, so that every backend refuses it alike.
func CheckSessionKey(key string) error {
	if !latch.ValidSessionKey(key) {
		return errSessionKeyMalformed
	}
	return nil
}
