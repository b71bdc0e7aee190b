package proxy

import (
	"context"
	"time"

	"github.com/latch-dev/latch"
)

// Users is what latch's own routes need from the user and token store, in
// the root package's terms: resetstore.Store and etcdstore.Store satisfy it
// as they are. Its methods report latch's errors (latch.ErrUserNotFound,
// latch.ErrUserExists, latch.ErrInvalidEmail, latch.ErrInvalidToken,
// latch.ErrUsedToken, latch.ErrUnavailable, *latch.RateLimitError), wrapped
// or not; the routes answer them with the documented codes (see answerFor).
// Any other error is a failure: 500, its cause logged, never sent.
type Users interface {
	IssueResetToken(ctx context.Context, email string) (token string, expires time.Time, err error)
	ValidateResetToken(ctx context.Context, token string) (email string, expires time.Time, err error)
	RedeemResetToken(ctx context.Context, token, newPassword string) (email string, err error)
	// VerifyPassword returns the user as read with the password hash, its
	// Generation included: a login token is tied to that state, not to
	// whatever the user is by the time the (slow) check ends.
	VerifyPassword(ctx context.Context, email, password string) (latch.User, bool, error)
	ListUsers(ctx context.Context) ([]latch.User, error)
	GetUser(ctx context.Context, email string) (latch.User, error)
	AddUser(ctx context.Context, email string, roles []string, password string) (latch.User, error)
	SetRoles(ctx context.Context, email string, roles []string) (latch.User, error)
	DeleteUser(ctx context.Context, email string) error
	// Browser sessions, by key (latch.SessionKeyLen hex digits, the
	// SHA-256 of the cookie's secret). BrowserSession and
	// TouchBrowserSession report latch.ErrSessionNotFound for a session
	// that is gone or past its Expires; DeleteBrowserSession of a missing
	// one is not an error. A change of a user's password, roles or
	// existence ends all of the user's sessions.
	CreateBrowserSession(ctx context.Context, key string, s latch.BrowserSession) error
	BrowserSession(ctx context.Context, key string) (latch.BrowserSession, error)
	TouchBrowserSession(ctx context.Context, key string, at time.Time) error
	DeleteBrowserSession(ctx context.Context, key string) error
}

// Store is Users with the session check's reads: what Options.Store takes.
// NewSessionCache makes one from a Users.
type Store interface {
	Users
	Sessions
}

// Minter issues latch's own JWTs at login. The token carries gen, the
// user's Generation read with the password hash; the Authenticator reports
// it back as a Bound Identity.
type Minter interface {
	MintSession(sub string, roles []string, gen uint64, ttl time.Duration) (token string, exp time.Time, err error)
}
