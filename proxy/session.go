package proxy

import (
	"context"
	"slices"
	"time"
)

// Identity is who an authenticated request comes from.
type Identity struct {
	Subject  string
	Roles    []string
	Kind     string    // "jwt" or "api_token"
	IssuedAt time.Time // zero when the credential has none
	// Bound is true for latch's own login token: it is tied to the
	// subject's stored state by Generation (the user's session generation
	// read with the password hash at login). Such a token is refused once
	// the user is gone or the generation differs, and it acts with the
	// roles stored now, not the ones it was minted with (see
	// ResolveSession).
	Bound      bool
	Generation uint64
}

// Session is what the store says about a subject for the session check.
type Session struct {
	// Found is false when no stored user has that email.
	Found bool
	// Generation is the user's session generation: drawn again when the
	// password is set and when the user is (re-)created.
	Generation uint64
	// PasswordChanged is when the password was last set; zero if never.
	PasswordChanged time.Time
	// Roles are the user's roles now.
	Roles []string
}

// Sessions reads a subject's Session, so credentials can be checked
// against the store on each request. Implementations may cache, within the
// bound they document (latch: at once on bbolt, 5s on etcd).
type Sessions interface {
	Session(ctx context.Context, email string) (Session, error)
}

// Denials of the session check.
var (
	errSessionEnded = &Denial{Reason: "revoked",
		Message: "The session has ended (a password change, or the user was removed); log in again."}
	errIssuedBefore = &Denial{Reason: "revoked",
		Message: "The token was issued before the last password change; log in again."}
)

// ResolveSession checks a JWT identity against the subject's stored
// Session and returns the identity to act on. Other kinds pass unchanged.
//
//   - A Bound identity (latch's login token) is refused when the user is
//     not stored or its Generation differs: the user was deleted (and
//     perhaps re-created), or the password was set since the login began.
//     Otherwise it gets the roles stored now, so a role change takes effect
//     within the Sessions cache bound without ending the session.
//   - Any other JWT (another issuer's, or one printed by `latch token`,
//     which is not tied to a stored user) keeps its own roles and is refused
//     only when its subject is a stored user whose password changed at or
//     after the token's issue time: latch's tokens carry it to the
//     nanosecond (iat_ns); other issuers' iat has one-second precision, so
//     a token whose iat is the second of the change may come from before it
//     and is refused too (fail closed). A token without iat is refused then.
func ResolveSession(ctx context.Context, s Sessions, id Identity) (Identity, *Denial, error) {
	if id.Kind != "jwt" {
		return id, nil, nil
	}
	sess, err := s.Session(ctx, id.Subject)
	if err != nil {
		return Identity{}, nil, err
	}
	if id.Bound {
		if !sess.Found || sess.Generation != id.Generation {
			return Identity{}, errSessionEnded, nil
		}
		id.Roles = slices.Clone(sess.Roles)
		return id, nil, nil
	}
	changed := sess.PasswordChanged
	if sess.Found && !changed.IsZero() && (id.IssuedAt.IsZero() || !id.IssuedAt.After(changed)) {
		return Identity{}, errIssuedBefore, nil
	}
	return id, nil, nil
}
