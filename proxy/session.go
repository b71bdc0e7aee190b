package proxy

import (
	"context"
	"time"
)

// Identity is who an authenticated request comes from.
type Identity struct {
	Subject  string
	Roles    []string
	Kind     string    // "jwt" or "api_token"
	IssuedAt time.Time // zero when the credential has none
}

// Sessions tells when a subject last changed its password, so tokens issued
// before then are refused. A zero time means never, or an unknown subject.
type Sessions interface {
	PasswordChanged(ctx context.Context, email string) (time.Time, error)
}

func (h *Handler) checkSession(ctx context.Context, id Identity) (*Denial, error) {
	changed, err := h.opts.Sessions.PasswordChanged(ctx, id.Subject)
	if err != nil {
		return nil, err
	}
	// latch's own tokens carry their issue time to the nanosecond (iat_ns);
	// other issuers' iat has one-second precision, so a token whose iat is
	// the second of the change may come from before it and is refused too
	// (fail closed).
	if !changed.IsZero() && (id.IssuedAt.IsZero() || !id.IssuedAt.After(changed)) {
		return &Denial{Reason: "revoked", Message: "The token was issued before the last password change; log in again."}, nil
	}
	return nil, nil
}
