package resetstore

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by the Store. Compare with errors.Is; the store may wrap
// them with more detail.
var (
	// ErrUserNotFound means no user has that email address.
	ErrUserNotFound = errors.New("resetstore: user not found")
	// ErrUserExists means AddUser was given an email address already in use,
	// compared case-insensitively.
	ErrUserExists = errors.New("resetstore: user already exists")
	// ErrInvalidEmail means the email address is empty, too long, or not of
	// the form local@domain without spaces or control characters.
	ErrInvalidEmail = errors.New("resetstore: invalid email address")
	// ErrEmptyPassword means SetPassword or RedeemResetToken was given "".
	ErrEmptyPassword = errors.New("resetstore: empty password")
	// ErrInvalidToken means the reset token is malformed, unknown,
	// superseded or expired.
	ErrInvalidToken = errors.New("resetstore: invalid reset token")
	// ErrUsedToken means the reset token was valid but has been redeemed.
	ErrUsedToken = errors.New("resetstore: reset token already used")
	// ErrLocked means another Store (in this or another process) holds the
	// data file. Open's error wraps it.
	ErrLocked = errors.New("resetstore: data file is locked")
	// ErrClosed means the Store has been closed.
	ErrClosed = errors.New("resetstore: store is closed")
	// ErrUnavailable means a networked backend (etcdstore) could not be
	// reached or did not answer in time; the operation may or may not have
	// taken effect. The bbolt Store never returns it.
	ErrUnavailable = errors.New("resetstore: store unavailable")
)

// Unexported refinements of ErrInvalidToken, so metrics and logs can tell why
// a token was refused while callers only need errors.Is(err, ErrInvalidToken).
var (
	errTokenMalformed = fmt.Errorf("%w: malformed", ErrInvalidToken)
	errTokenUnknown   = fmt.Errorf("%w: unknown", ErrInvalidToken)
	errTokenExpired   = fmt.Errorf("%w: expired", ErrInvalidToken)
)

// RateLimitError is returned by IssueResetToken when the user was issued a
// token less than Options.MinInterval ago.
type RateLimitError struct {
	// RetryAfter is how long until the user may be issued a token again;
	// always positive and at most Options.MinInterval.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string { return "rate limited" }

// lockError is Open's error when the data file is held by someone else.
type lockError struct{ path string }

func (e *lockError) Error() string {
	return fmt.Sprintf("data file %s is in use by another process (is latch serve running?)", e.path)
}

func (e *lockError) Unwrap() error { return ErrLocked }
