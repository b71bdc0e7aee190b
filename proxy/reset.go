package proxy

import (
	"net/http"
	"strings"
	"time"

	"github.com/latch-dev/latch"
)

// resetPassword answers POST /api/admin/user-admin/reset-password, after
// authentication (401) and the policy (403): 415, 400, then 404, 429 or 200.
func (h *Handler) resetPassword(w http.ResponseWriter, r *http.Request) error {
	b, e := h.readObject(w, r, []field{{name: "id", required: true, email: true}})
	if e != nil {
		return e
	}
	email := b.strs["id"]
	token, _, err := h.opts.Store.IssueResetToken(r.Context(), email)
	if err != nil {
		return about(email, err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"resetPasswordUrl": h.resetLink(token)})
	return nil
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

// validateReset answers GET <ns>/reset/validate?token=...: 200, 401 for an
// invalid token, 403 for a used one.
func (h *Handler) validateReset(w http.ResponseWriter, r *http.Request) error {
	token := tokenParam(r)
	if token == "" {
		return latch.ErrInvalidToken
	}
	email, expires, err := h.opts.Store.ValidateResetToken(r.Context(), token)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"email": email, "expiresAt": expires.UTC().Format(time.RFC3339)})
	return nil
}

// redeemReset answers POST <ns>/reset/redeem {token, password}: the
// password rules first, then the token's check, and only then, within the
// password-hash budget shared with login (503 beyond it), the
// one-transaction redemption. Concurrent redemptions of one token are
// taken one at a time, so however many race, at most one hashes while the
// token is live (in this process; each replica of a shared store adds at
// most one).
func (h *Handler) redeemReset(w http.ResponseWriter, r *http.Request) error {
	b, e := h.readObject(w, r, []field{{name: "token", required: true, nonEmpty: true}, {name: "password"}})
	if e != nil {
		return e
	}
	if e := passwordError(b.strs["password"]); e != nil {
		return e
	}
	token := b.strs["token"]
	// One redemption of a token at a time in this process: the others
	// wait, then find it used below without hashing.
	release, err := h.login.claimToken(r.Context(), token)
	if err != nil {
		return withCause(errRedeemBusy, err) // the client gave up waiting
	}
	defer release()
	// Refuse an unknown, expired or used token before spending the hash
	// budget on it (the redemption checks again in its transaction).
	if _, _, err := h.opts.Store.ValidateResetToken(r.Context(), token); err != nil {
		return err
	}
	// Hashing the new password comes out of the budget logins use.
	releaseSlot, busy := h.login.hashSlot()
	if busy != nil {
		return errRedeemBusy
	}
	defer releaseSlot()
	email, err := h.opts.Store.RedeemResetToken(r.Context(), token, b.strs["password"])
	if err != nil {
		return err
	}
	h.log.Info("password reset", "subject", email, "request_id", requestIDFrom(r.Context()))
	writeJSON(w, http.StatusOK, map[string]string{"email": email})
	return nil
}
