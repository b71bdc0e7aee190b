package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
)

// Store is what the suite exercises: the methods cmd/latch uses (browser
// sessions included), plus SetPassword and the Export/Import pair behind
// `latch store migrate`.
type Store interface {
	AddUser(ctx context.Context, email string, roles []string, password string) (latch.User, error)
	GetUser(ctx context.Context, email string) (latch.User, error)
	ListUsers(ctx context.Context) ([]latch.User, error)
	DeleteUser(ctx context.Context, email string) error
	SetRoles(ctx context.Context, email string, roles []string) (latch.User, error)
	SetPassword(ctx context.Context, email, password string) error
	VerifyPassword(ctx context.Context, email, password string) (latch.User, bool, error)
	IssueResetToken(ctx context.Context, email string) (string, time.Time, error)
	ValidateResetToken(ctx context.Context, token string) (string, time.Time, error)
	RedeemResetToken(ctx context.Context, token, newPassword string) (string, error)
	ActiveTokens(ctx context.Context) (int, error)
	CreateBrowserSession(ctx context.Context, key string, s latch.BrowserSession) error
	BrowserSession(ctx context.Context, key string) (latch.BrowserSession, error)
	TouchBrowserSession(ctx context.Context, key string, at time.Time) error
	DeleteBrowserSession(ctx context.Context, key string) error
	Export(ctx context.Context, fn func(resetstore.Record) error) error
	Import(ctx context.Context, recs []resetstore.Record) error
	Close() error
}

// Options are the settings a test asks its store for. The zero value asks
// for the backend's defaults.
type Options struct {
	// TokenTTL is the reset tokens' lifetime; zero means
	// resetstore.DefaultTokenTTL (24h).
	TokenTTL time.Duration
	// MinInterval is the per-user rate limit on issuing tokens; zero means
	// resetstore.DefaultMinInterval (1m), negative turns it off.
	MinInterval time.Duration
}

// Opener returns a new, empty store that reads time from clock and honours
// opts. It should use cheap argon2id parameters, and close the store when t
// ends (Close may already have been called). Stores from two calls in one
// test must not share data.
type Opener func(t *testing.T, clock func() time.Time, opts Options) Store

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at a fixed instant (whole seconds, UTC).
func NewClock() *Clock { return &Clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Run runs the whole suite against stores from open, each test in its own
// subtest with its own store and clock.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Users", testUsers},
		{"UserErrors", testUserErrors},
		{"VerifyPassword", testVerifyPassword},
		{"IssueValidateRedeem", testIssueValidateRedeem},
		{"UsedToken", testUsedToken},
		{"InvalidTokens", testInvalidTokens},
		{"NewTokenExpiresOlder", testNewTokenExpiresOlder},
		{"PasswordChangeExpiresAll", testPasswordChangeExpiresAll},
		{"RateLimit", testRateLimit},
		{"TTL", testTTL},
		{"ConcurrentRedeem", testConcurrentRedeem},
		{"DeleteUserRemovesTokens", testDeleteUserRemovesTokens},
		{"ActiveTokens", testActiveTokens},
		{"ExportImport", testExportImport},
		{"Generation", testGeneration},
		{"GenerationMigrates", testGenerationMigrates},
		// The browser-session tests run in parallel with each other (each
		// on its own store), after the tests above.
		{"Sessions", testSessions},
		{"SessionUnknownUser", testSessionUnknownUser},
		{"SessionBadKeys", testSessionBadKeys},
		{"SessionExpiry", testSessionExpiry},
		{"SessionsEndWithUserChanges", testSessionsEndWithUserChanges},
		{"SessionsNotRevived", testSessionsNotRevived},
		{"SessionsNotMigrated", testSessionsNotMigrated},
		{"SessionsRaceUserChange", testSessionsRaceUserChange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}
