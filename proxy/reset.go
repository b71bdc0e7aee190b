package proxy

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

// storeFailure answers for a store error that is not one of the expected
// refusals: 503 when the store says it is unavailable, 500 otherwise. The
// cause is logged, never sent.
func (h *Handler) storeFailure(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrUnavailable) {
		writeError(w, r, h.log, &Error{Status: http.StatusServiceUnavailable, Name: NameUnavailable,
			Message: "The user store is unavailable; try again later.", RetryAfter: 5 * time.Second}, err)
		return
	}
	writeError(w, r, h.log, &Error{Status: http.StatusInternalServerError, Name: NameInternal,
		Message: "latch could not complete this request."}, err)
}

// resetPassword answers POST /api/admin/user-admin/reset-password, after
// authentication (401) and the policy (403): 415, 400, then 404, 429 or 200.
func (h *Handler) resetPassword(w http.ResponseWriter, r *http.Request) {
	b, e := h.readObject(w, r, []field{{name: "id", required: true, email: true}})
	if e != nil {
		writeError(w, r, h.log, e, nil)
		return
	}
	email := b.strs["id"]
	token, _, err := h.opts.Store.IssueResetToken(r.Context(), email)
	var rl *RateLimited
	if errors.As(err, &rl) {
		writeError(w, r, h.log, &Error{Status: http.StatusTooManyRequests, Name: NameRateLimit,
			Message:    "You can only send one new reset password email per minute, per user. Please try again later.",
			RetryAfter: rl.RetryAfter}, nil)
		return
	}
	h.userAnswer(w, r, email, err, func() {
		writeJSON(w, http.StatusOK, map[string]string{"resetPasswordUrl": h.resetLink(token)})
	})
}

// resetLink is ResetURL with the token added to its query.
func (h *Handler) resetLink(token string) string {
	u := *h.resetURL
	q := u.Query()
	q.Set("token", token)
	u.RawQuery = q.Encode()
	return u.String()
}

// tokenParam reads the single token query parameter.
func tokenParam(r *http.Request) string {
	v := r.URL.Query()["token"]
	if len(v) != 1 || len(v[0]) > 256 {
		return ""
	}
	return strings.TrimSpace(v[0])
}

var errRedeemBusy = &Error{Status: http.StatusServiceUnavailable, Name: NameUnavailable,
	Message: "Too many password changes right now. Please try again shortly.", RetryAfter: time.Second}

var (
	errInvalidToken = &Error{Status: http.StatusUnauthorized, Name: NameInvalidToken, Message: "Token was not valid"}
	errUsedToken    = &Error{Status: http.StatusForbidden, Name: NameUsedToken, Message: "Token was already used"}
)

// validateReset answers GET /auth/reset/validate?token=...
func (h *Handler) validateReset(w http.ResponseWriter, r *http.Request) {
	token := tokenParam(r)
	if token == "" {
		writeError(w, r, h.log, errInvalidToken, nil)
		return
	}
	email, expires, err := h.opts.Store.ValidateResetToken(r.Context(), token)
	h.tokenAnswer(w, r, err, func() {
		writeJSON(w, http.StatusOK, map[string]any{"email": email, "expiresAt": expires.UTC().Format(time.RFC3339)})
	})
}

// tokenAnswer answers a request about a reset token: 401 for an invalid
// one, 403 for a used one, a store failure, or ok.
func (h *Handler) tokenAnswer(w http.ResponseWriter, r *http.Request, err error, ok func()) {
	switch {
	case errors.Is(err, ErrInvalidToken):
		writeError(w, r, h.log, errInvalidToken, nil)
	case errors.Is(err, ErrUsedToken):
		writeError(w, r, h.log, errUsedToken, nil)
	case err != nil:
		h.storeFailure(w, r, err)
	default:
		ok()
	}
}

// redeemReset answers POST /auth/reset/password {token, password}: the
// password rules first, then the token's check, and only then, within the
// password-hash budget shared with login (503 beyond it), the
// one-transaction redemption. Concurrent redemptions of one token are
// taken one at a time, so however many race, at most one hashes while the
// token is live (in this process; each replica of a shared store adds at
// most one).
func (h *Handler) redeemReset(w http.ResponseWriter, r *http.Request) {
	b, e := h.readObject(w, r, []field{{name: "token", required: true, nonEmpty: true}, {name: "password"}})
	if e != nil {
		writeError(w, r, h.log, e, nil)
		return
	}
	if e := passwordError(b.strs["password"]); e != nil {
		writeError(w, r, h.log, e, nil)
		return
	}
	token := b.strs["token"]
	// One redemption of a token at a time in this process: the others
	// wait, then find it used below without hashing.
	release, err := h.login.claimToken(r.Context(), token)
	if err != nil {
		writeError(w, r, h.log, errRedeemBusy, err) // the client gave up waiting
		return
	}
	defer release()
	// Refuse an unknown, expired or used token before spending the hash
	// budget on it (the redemption checks again in its transaction).
	if _, _, err := h.opts.Store.ValidateResetToken(r.Context(), token); err != nil {
		h.tokenAnswer(w, r, err, nil)
		return
	}
	// Hashing the new password comes out of the budget logins use.
	releaseSlot, busy := h.login.hashSlot()
	if busy != nil {
		writeError(w, r, h.log, errRedeemBusy, nil)
		return
	}
	defer releaseSlot()
	email, err := h.opts.Store.RedeemResetToken(r.Context(), token, b.strs["password"])
	h.tokenAnswer(w, r, err, func() {
		h.log.Info("password reset", "subject", email, "request_id", requestIDFrom(r.Context()))
		writeJSON(w, http.StatusOK, map[string]string{"email": email})
	})
}
