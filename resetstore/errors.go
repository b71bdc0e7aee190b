package resetstore

import (
	"errors"
	"fmt"

	"github.com/latch-dev/latch"
)

// Errors of this package's own. A store also reports the errors the root
// package latch declares (latch.ErrUserNotFound, latch.ErrUserExists,
// latch.ErrInvalidEmail, latch.ErrInvalidToken, latch.ErrUsedToken,
// latch.ErrSessionNotFound, latch.ErrUnavailable, *latch.RateLimitError).
// Compare with errors.Is; the store may wrap them with more detail.
var (
	// ErrEmptyPassword means SetPassword or RedeemResetToken was given "".
	ErrEmptyPassword = errors.New("resetstore: empty password")
	// ErrLocked means another Store (in this or another process) holds the
	// data file. Open's error wraps it.
	ErrLocked = errors.New("resetstore: data file is locked")
	// ErrClosed means the Store has been closed. It is also
	// latch.ErrUnavailable: a caller that answers "try again later" for an
	// unreachable store does so for a closed one.
	ErrClosed error = closedError{}
)

type closedError struct{}

func (closedError) Error() string        { return "resetstore: store is closed" }
func (closedError) Is(target error) bool { return target == latch.ErrUnavailable }

// ErrTokenExpired refines latch.ErrInvalidToken for an expired token, so
// that every backend refuses (and counts, see Metrics.Reject) an expired
// token alike. errors.Is(ErrTokenExpired, latch.ErrInvalidToken) holds.
var ErrTokenExpired = fmt.Errorf("%w: expired", latch.ErrInvalidToken)

// Refinements of latch.ErrSessionNotFound, so that every backend refuses a
// session alike; errors.Is(err, latch.ErrSessionNotFound) holds for each.
var (
	// ErrSessionExpired refuses a session whose Expires is not after the
	// store's clock (reading, touching, or creating it).
	ErrSessionExpired = fmt.Errorf("%w: expired", latch.ErrSessionNotFound)
	// ErrStaleSession refuses to create a session whose Generation is not
	// its user's: the password was set, or the user deleted and
	// re-created, after the login was checked. The login must be redone.
	ErrStaleSession = fmt.Errorf("%w: the user's generation has changed", latch.ErrSessionNotFound)
)

// errSessionKeyMalformed refuses a key latch.ValidSessionKey refuses.
var errSessionKeyMalformed = fmt.Errorf("%w: malformed key", latch.ErrSessionNotFound)

// ErrSessionKeyInUse refuses to create a session under a key a session
// already has. Keys are hashes of fresh random secrets, so it does not
// happen by chance; a caller retrying after latch.ErrUnavailable (whose
// create may have been applied) should draw a new secret.
var ErrSessionKeyInUse = errors.New("resetstore: session key already in use")

// Unexported refinements of latch.ErrInvalidToken, so metrics and logs can
// tell why a token was refused while callers only need
// errors.Is(err, latch.ErrInvalidToken).
var (
	errTokenMalformed = fmt.Errorf("%w: malformed", latch.ErrInvalidToken)
	errTokenUnknown   = fmt.Errorf("%w: unknown", latch.ErrInvalidToken)
)

// lockError is Open's error when the data file is held by someone else.
type lockError struct{ path string }

func (e *lockError) Error() string {
	return fmt.Sprintf("data file %s is in use by another process (is latch serve running?)", e.path)
}

func (e *lockError) Unwrap() error { return ErrLocked }
