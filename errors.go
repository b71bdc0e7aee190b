package latch

import (
	"errors"
	"time"
)

// Errors a user and token store reports. Compare with errors.Is: a store may
// wrap them with more detail. Any other error is a failure of the store.
var (
	// ErrUserNotFound means no user has that email address.
	ErrUserNotFound = errors.New("user not found")
	// ErrUserExists means the email address is already a user's, compared
	// as NormalizeEmail folds it.
	ErrUserExists = errors.New("user already exists")
	// ErrInvalidEmail means NormalizeEmail refused the address; no user can
	// have it.
	ErrInvalidEmail = errors.New("invalid email address")
	// ErrInvalidToken means a reset token is malformed, unknown, superseded
	// or expired.
	ErrInvalidToken = errors.New("invalid or expired reset token")
	// ErrUsedToken means a reset token was valid but has been redeemed.
	ErrUsedToken = errors.New("reset token already used")
	// ErrUnavailable means the store could not be reached or did not answer
	// in time (a networked backend), or is closed; the operation may or may
	// not have taken effect.
	ErrUnavailable = errors.New("store unavailable")
	// ErrSessionNotFound means no live browser session has that key: it
	// never existed, was ended (logout, or a change of the user's
	// password, roles or existence), or is past its Expires.
	ErrSessionNotFound = errors.New("session not found")
)

// RateLimitError refuses a reset link for a user who was issued one less
// than the store's minimum interval ago.
type RateLimitError struct {
	// RetryAfter is how long until the user may be issued a link again;
	// always positive and at most the minimum interval.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string { return "rate limited" }
