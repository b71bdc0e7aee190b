package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// User is an account as the store shows it; never a hash or a token.
type User struct {
	Email           string    `json:"email"`
	Roles           []string  `json:"roles"`
	HasPassword     bool      `json:"hasPassword"`
	Created         time.Time `json:"createdAt"`
	PasswordChanged time.Time `json:"passwordChangedAt,omitzero"`
	// Generation is the user's session generation (see Session); never
	// sent.
	Generation uint64 `json:"-"`
}

// Store is what latch's own routes need from the user and token store.
// Implementations return the sentinel errors below (wrapped or not) and
// *RateLimited, so the routes can answer with the documented codes.
type Store interface {
	Sessions
	IssueResetToken(ctx context.Context, email string) (token string, expires time.Time, err error)
	ValidateResetToken(ctx context.Context, token string) (email string, expires time.Time, err error)
	RedeemResetToken(ctx context.Context, token, newPassword string) (email string, err error)
	// VerifyPassword returns the user as read with the password hash, its
	// Generation included: a login token is tied to that state, not to
	// whatever the user is by the time the (slow) check ends.
	VerifyPassword(ctx context.Context, email, password string) (User, bool, error)
	ListUsers(ctx context.Context) ([]User, error)
	GetUser(ctx context.Context, email string) (User, error)
	AddUser(ctx context.Context, email string, roles []string, password string) (User, error)
	SetRoles(ctx context.Context, email string, roles []string) (User, error)
	DeleteUser(ctx context.Context, email string) error
}

// Minter issues latch's own JWTs at login. The token carries gen, the
// user's Generation read with the password hash; the Authenticator reports
// it back as a Bound Identity.
type Minter interface {
	MintSession(sub string, roles []string, gen uint64, ttl time.Duration) (token string, exp time.Time, err error)
}

// Errors a Store reports; anything else is a failure (503/500, logged).
var (
	ErrUserNotFound = errors.New("user not found")
	ErrUserExists   = errors.New("user already exists")
	ErrInvalidToken = errors.New("invalid or expired token")
	ErrUsedToken    = errors.New("token already used")
	ErrUnavailable  = errors.New("store unavailable")
)

// RateLimited is a Store's refusal to issue another link yet.
type RateLimited struct{ RetryAfter time.Duration }

func (e *RateLimited) Error() string {
	return fmt.Sprintf("rate limited; retry after %v", e.RetryAfter)
}
