// Package resetstore owns latch's single bbolt data file: user accounts,
// their argon2id password hashes, password-reset tokens, browser sessions
// and the indexes that keep tokens and sessions cheap to expire and to end
// by user.
//
// # What is stored
//
// Users are keyed by their lowercased email address. Email addresses are
// case-insensitive and unique, and the store returns them lowercased: the
// display form given to AddUser is not kept. A password hash is never
// returned by any method; User only says whether one is set.
//
// Reset tokens are 32 random bytes handed out once, base64url-encoded without
// padding. Only the SHA-256 of the raw bytes is written to disk, so a copy of
// the data file does not let anyone redeem a live token. A token works exactly
// once: redemption checks the token, marks it used and sets the new password
// hash in one write transaction.
//
// # Lifecycle of a token
//
// Issuing a token for a user deletes that user's earlier unused tokens, and
// the same user cannot be issued another within Options.MinInterval
// (*latch.RateLimitError). Setting a password, by SetPassword or by redeeming a
// token, deletes all of the user's unused tokens. A used token's record is
// kept until its original expiry, so that replaying it reports latch.ErrUsedToken
// rather than latch.ErrInvalidToken; after that Sweep removes it. Expiry is checked
// on every read, so a store that is never swept is still correct, only larger.
//
// # Browser sessions
//
// A browser session (latch.BrowserSession) is stored under its key, the hex
// SHA-256 of the session cookie's secret; the store never sees the secret.
// Only keys latch.ValidSessionKey accepts (64 lower-case hex digits) are
// used; any other is refused with latch.ErrSessionNotFound. A session is
// live while the store's clock (Options.Now) is before its Expires; it is
// indexed by user, so that setting a user's password (SetPassword,
// RedeemResetToken), roles (SetRoles) or existence (DeleteUser, Import)
// ends all of the user's sessions in the transaction of that change.
// CreateBrowserSession refuses a session whose Generation is not its
// user's (ErrStaleSession), so a login checked before such a change cannot
// begin a session after it. Sweep removes expired sessions with expired
// tokens. Export does not carry sessions: after a migration, users log in
// again.
//
// # Durability and group commit
//
// Every write is an fsynced bbolt transaction. IssueResetToken returns only
// after the transaction holding its token has been committed. Concurrent
// issuances are grouped into one transaction by a single goroutine owned by
// the Store (see batch.go); one caller's validation failure (unknown user,
// rate limited) does not fail the others in its group.
//
// # Caveats
//
//   - The file is locked by the process that opens it; a second Open, from
//     this or another process, fails with an error wrapping ErrLocked after
//     Options.Timeout.
//   - Password rules (length, character classes) are the caller's business;
//     the store hashes whatever non-empty password it is given.
//   - Tokens and passwords are never logged; email addresses may be logged at
//     debug level, and at info level when a password is reset.
//   - A context only stops an operation before its transaction starts; bbolt
//     transactions are not interruptible.
package resetstore
