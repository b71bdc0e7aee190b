package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unsafe"

	"github.com/latch-dev/latch"
)

// Browser sessions: what the login page starts. The cookie holds a random
// secret and nothing else (no JWT, no user); the store keeps the session's
// record under the SHA-256 of the secret (latch.BrowserSession), so a copy
// of the store signs nobody in.
const (
	// cookieName is the session cookie's name over plain http.
	cookieName = "latch_session"
	// hostCookieName is its name when the public URL is https: the
	// __Host- prefix makes browsers refuse it unless Secure, Path=/ and
	// without Domain, so no sibling host can set or shadow it.
	hostCookieName = "__Host-" + cookieName
	// secretLen is the cookie value's length: 32 random bytes, base64url.
	secretLen = 43
)

// Session timing defaults (config session.*).
const (
	DefaultSessionIdle     = 12 * time.Hour
	DefaultSessionAbsolute = 7 * 24 * time.Hour
)

// sessionSecret returns the value of latch's session cookie in h, "" if it
// has none of the right shape. Requests without one pay a header lookup.
func (h *Handler) sessionSecret(hd http.Header) string {
	lines := hd["Cookie"]
	if len(lines) == 0 {
		return ""
	}
	for _, line := range lines {
		if !strings.Contains(line, cookieName) {
			continue
		}
		for part := range strings.SplitSeq(line, ";") {
			name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && name == h.cookie && validSecret(val) {
				return val
			}
		}
	}
	return ""
}

func validSecret(v string) bool {
	if len(v) != secretLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// sessionKey is the store's key for a cookie secret.
func sessionKey(secret string) string {
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(secret), len(secret))) // read only
	return hex.EncodeToString(sum[:])
}

// dropSessionCookie removes latch's session cookies (either name) from the
// Cookie lines of an outgoing request, keeping every other cookie: the
// upstream never sees latch's session.
func dropSessionCookie(hd http.Header) {
	lines := hd["Cookie"]
	if len(lines) == 0 {
		return
	}
	touched := false
	for _, line := range lines {
		if strings.Contains(line, cookieName) {
			touched = true
			break
		}
	}
	if !touched {
		return
	}
	out := lines[:0:0]
	for _, line := range lines {
		if !strings.Contains(line, cookieName) {
			out = append(out, line)
			continue
		}
		var kept []string
		for part := range strings.SplitSeq(line, ";") {
			p := strings.TrimSpace(part)
			name, _, _ := strings.Cut(p, "=")
			if p == "" || name == cookieName || name == hostCookieName {
				continue
			}
			kept = append(kept, p)
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, "; "))
		}
	}
	if len(out) == 0 {
		delete(hd, "Cookie")
		return
	}
	hd["Cookie"] = out
}

// Denials of a session cookie.
var (
	errBrowserSessionEnded = &Denial{Reason: "session_ended", Message: "Your session has ended; log in again."}
)

// touchEvery is how stale a session's recorded LastSeen may get before a
// request records it again: at most one store write per session a minute.
func (h *Handler) touchEvery() time.Duration {
	return min(time.Minute, h.opts.SessionIdle/4)
}

// authenticateSession checks a session cookie's secret: the record must be
// live (not past its absolute end, used within the idle timeout) and its
// user stored with the generation it began with. It acts with the roles
// stored now (a role change also ends the session in the store: the cache
// bound, 5s on a shared store, is how long those roles may be used).
func (h *Handler) authenticateSession(ctx context.Context, secret string) (Identity, *Denial, error) {
	if h.opts.Store == nil {
		return Identity{}, errBrowserSessionEnded, nil
	}
	key := sessionKey(secret)
	s, err := h.opts.Store.BrowserSession(ctx, key)
	switch {
	case errors.Is(err, latch.ErrSessionNotFound):
		return Identity{}, errBrowserSessionEnded, nil
	case err != nil:
		return Identity{}, nil, err
	}
	now := h.now()
	if !now.Before(s.Expires) {
		return Identity{}, errBrowserSessionEnded, nil
	}
	if now.Sub(s.LastSeen) >= h.opts.SessionIdle {
		// Idle too long: end it for good (best effort; it is refused anyway).
		_ = h.opts.Store.DeleteBrowserSession(ctx, key)
		return Identity{}, errBrowserSessionEnded, nil
	}
	sess, err := h.opts.Sessions.Session(ctx, s.Email)
	if err != nil {
		return Identity{}, nil, err
	}
	if !sess.Found || sess.Generation != s.Generation {
		return Identity{}, errBrowserSessionEnded, nil
	}
	if now.Sub(s.LastSeen) >= h.touchEvery() {
		if err := h.opts.Store.TouchBrowserSession(ctx, key, now); err != nil {
			if errors.Is(err, latch.ErrSessionNotFound) {
				return Identity{}, errBrowserSessionEnded, nil
			}
			// The session is good; its idle clock moves on next time.
			h.log.Warn("could not record a session's use", "error", err.Error(), "request_id", requestIDFrom(ctx))
		}
	}
	return Identity{Subject: s.Email, Roles: sess.Roles, Kind: "session", Generation: s.Generation, Bound: true}, nil, nil
}

// startSession records a new session for u and sets its cookie on w.
func (h *Handler) startSession(ctx context.Context, w http.ResponseWriter, u latch.User) error {
	var raw [32]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	now := h.now()
	err := h.opts.Store.CreateBrowserSession(ctx, sessionKey(secret), latch.BrowserSession{
		Email: u.Email, Generation: u.Generation, Created: now, LastSeen: now,
		Expires: now.Add(h.opts.SessionAbsolute),
	})
	if err != nil {
		return err
	}
	http.SetCookie(w, h.sessionCookie(secret, int(h.opts.SessionAbsolute/time.Second)))
	return nil
}

// sessionCookie is latch's session cookie with value v; maxAge < 0 deletes
// it.
func (h *Handler) sessionCookie(v string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: h.cookie, Value: v, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: h.opts.SecureCookie, SameSite: http.SameSiteLaxMode}
}

// endSession deletes the session whose cookie r carries, if any, and
// clears the cookie.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, h.sessionCookie("", -1))
	secret := h.sessionSecret(r.Header)
	if secret == "" {
		return nil
	}
	return h.opts.Store.DeleteBrowserSession(r.Context(), sessionKey(secret))
}

// navigation reports whether r is a browser loading a page (not a script's
// fetch): it then gets the login page rather than a 401 body.
func navigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// safeRedirect returns rd when it is a same-origin relative reference, a
// path starting with one '/', and "/" otherwise: no scheme, no host, no
// "//host" or "/\host" (which browsers read as another host), no control
// characters or backslashes (browsers drop tabs and newlines and turn '\'
// into '/'), at most 2 KiB.
func safeRedirect(rd string) string {
	if rd == "" || len(rd) > 2048 || rd[0] != '/' {
		return "/"
	}
	if len(rd) > 1 && (rd[1] == '/' || rd[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(rd); i++ {
		if c := rd[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	return rd
}

// loginURL is the login page's path, returning to rd after sign-in.
func (h *Handler) loginURL(rd string) string {
	if rd == "" || rd == "/" {
		return h.ns + "/login"
	}
	return h.ns + "/login?rd=" + url.QueryEscape(rd)
}

// redirectToLogin sends a browser to the login page, to come back to the
// path and query it asked for.
func (h *Handler) redirectToLogin(w http.ResponseWriter, r *http.Request, t *Target) {
	rd := t.Escaped
	if r.URL.RawQuery != "" {
		rd += "?" + r.URL.RawQuery
	}
	hd := w.Header()
	hd.Set("Location", h.loginURL(safeRedirect(rd)))
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// me answers GET <ns>/me: who the caller is, by any credential latch
// knows, and their roles now; 401 without one.
func (h *Handler) me(w http.ResponseWriter, r *http.Request) error {
	st := stateFrom(r.Context())
	if st == nil || st.identity == nil {
		return h.authRequired(msgNoCredential)
	}
	id := st.identity
	roles := id.Roles
	if roles == nil {
		roles = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"subject": id.Subject, "email": id.Subject, "roles": roles, "kind": id.Kind})
	return nil
}

// logout answers POST <ns>/logout: the session ends at once, in the store,
// and the cookie is cleared. A browser is sent to the login page; a script
// asking for JSON gets 204.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	if err := h.cop.Check(r); err != nil {
		return withCause(errCrossOrigin, err)
	}
	if err := h.endSession(w, r); err != nil {
		return err
	}
	if st := stateFrom(r.Context()); st != nil && st.identity != nil {
		h.log.Info("logout", "subject", st.identity.Subject, "request_id", requestIDFrom(r.Context()))
	}
	if wantsJSON(r) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("Location", h.ns+"/login")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
	return nil
}

// wantsJSON reports whether the client asks for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return strings.Contains(a, "application/json") && !strings.Contains(a, "text/html")
}

var errCrossOrigin = &Error{Status: http.StatusForbidden, Name: NameNoAccess,
	Message: "Cross-origin request refused: a request made with latch's session cookie must come from this site's own pages."}
