package resetstore

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Helpers shared with other backends (etcdstore), so that every backend
// normalises emails, encodes tokens and hashes passwords exactly as this one
// does, and a record copied between them (see Export) means the same thing.

// TokenHash is the SHA-256 of a reset token's raw bytes: the only form of a
// token any backend stores.
type TokenHash = [sha256.Size]byte

// NormalizeEmail lowercases email and checks it has the shape local@domain
// without spaces or control characters; otherwise it returns ErrInvalidEmail.
func NormalizeEmail(email string) (string, error) { return normalizeEmail(email) }

// NewToken returns a fresh reset token (32 random bytes, base64url without
// padding) and its hash.
func NewToken() (string, TokenHash, error) { return newToken() }

// ParseToken decodes a token as NewToken hands it out and returns its hash.
// A malformed token is an error wrapping ErrInvalidToken.
func ParseToken(token string) (TokenHash, error) { return parseToken(token) }

// HashPassword returns the PHC-encoded argon2id hash of password with p
// (zero fields take their defaults).
func HashPassword(password string, p HashParams) (string, error) {
	return hashPassword(password, p.withDefaults())
}

// ErrTokenExpired is the ErrInvalidToken refinement for an expired token,
// so that other backends refuse (and count) an expired token as this one
// does. errors.Is(ErrTokenExpired, ErrInvalidToken) holds.
var ErrTokenExpired = errTokenExpired

// IsTokenExpired reports whether err is a refusal for an expired token.
func IsTokenExpired(err error) bool { return errors.Is(err, errTokenExpired) }

// CheckRateLimit returns a *RateLimitError if the user was issued a reset
// token less than minInterval before now, so that every backend applies
// Options.MinInterval alike; nil otherwise. minInterval <= 0 disables the
// limit.
func (r *UserRecord) CheckRateLimit(now time.Time, minInterval time.Duration) error {
	if minInterval <= 0 || r.ResetIssued.IsZero() {
		return nil
	}
	if wait := r.ResetIssued.Add(minInterval).Sub(now); wait > 0 {
		return &RateLimitError{RetryAfter: min(wait, minInterval)}
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
		h, _ := hashPassword(string(pw), p.withDefaults())
		return h
	})
}

// VerifyUser is every backend's VerifyPassword once the user is read (rec
// nil if there is none): an unknown user, a user without a password and an
// empty or wrong password all return false with a nil error, after an
// argon2id computation against dummyHash when there is no real hash, so a
// miss costs about as much as a hit. err is only for a malformed stored hash.
func VerifyUser(rec *UserRecord, password string, dummyHash func() string) (User, bool, error) {
	if rec == nil || rec.PasswordHash == "" || password == "" {
		_, _ = checkPassword(dummyHash(), password)
		return User{}, false, nil
	}
	ok, err := checkPassword(rec.PasswordHash, password)
	if err != nil {
		return User{}, false, fmt.Errorf("resetstore: user %q: %w", rec.Email, err)
	}
	if !ok {
		return User{}, false, nil
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
