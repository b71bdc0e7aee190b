package proxy

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Sessions tells when a subject last changed its password, so tokens issued
// before then are refused. A zero time means never, or an unknown subject.
type Sessions interface {
	PasswordChanged(ctx context.Context, email string) (time.Time, error)
}

// routes registers the routes latch answers itself when it has a Store.
// Patterns match the lower-cased canonical path; those under a protected
// prefix pass authentication and the policy first, like any admin route.
func (h *Handler) routes() {
	if h.opts.Store == nil {
		return
	}
	h.local.HandleFunc("POST /api/admin/user-admin/reset-password", h.resetPassword)
	h.local.HandleFunc("GET /api/admin/user-admin", h.listUsers)
	h.local.HandleFunc("POST /api/admin/user-admin", h.createUser)
	h.local.HandleFunc("GET /api/admin/user-admin/{id}", h.getUser)
	h.local.HandleFunc("PUT /api/admin/user-admin/{id}", h.putUser)
	h.local.HandleFunc("DELETE /api/admin/user-admin/{id}", h.deleteUser)
	h.local.HandleFunc("GET /auth/reset/validate", h.validateReset)
	h.local.HandleFunc("POST /auth/reset/password", h.redeemReset)
	h.local.HandleFunc("POST /auth/simple/login", h.loginRoute)
	if u, err := url.Parse(h.opts.ResetURL); err == nil && u.Path != "" {
		h.local.HandleFunc("GET "+strings.ToLower(u.Path), h.resetPage)
	}
}

// localRoute finds the local handler for r and its route class. The
// returned request has the lower-cased canonical path the pattern matched,
// so handlers read path values from it. Most requests match nothing, so the
// mux is probed with a small request and r is copied only on a match.
func (h *Handler) localRoute(r *http.Request, st *reqState) (*http.Request, string) {
	lower := strings.ToLower(st.path)
	probe := &http.Request{Method: r.Method, Host: r.Host, URL: &url.URL{Path: lower}}
	if _, pattern := h.local.Handler(probe); pattern == "" {
		return nil, ""
	} else {
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = lower, ""
		r2.URL = &u
		return r2, classOf(pattern)
	}
}

// classOf maps a local route pattern to its metric class.
func classOf(pattern string) string {
	switch {
	case strings.Contains(pattern, "reset"):
		return "reset"
	case strings.Contains(pattern, "/auth/"):
		return "auth"
	default:
		return "local"
	}
}
