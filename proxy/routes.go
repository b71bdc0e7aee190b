package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// routes registers the routes latch answers itself when it has a Store.
// Patterns match the lower-cased canonical path; those under a protected
// prefix pass authentication and the policy first, like any admin route.
func (h *Handler) routes() {
	if h.opts.Store == nil {
		return
	}
	h.handle("POST /api/admin/user-admin/reset-password", h.resetPassword)
	h.handle("GET /api/admin/user-admin", h.listUsers)
	h.handle("POST /api/admin/user-admin", h.createUser)
	h.handle("GET /api/admin/user-admin/{id}", h.getUser)
	h.handle("PUT /api/admin/user-admin/{id}", h.putUser)
	h.handle("DELETE /api/admin/user-admin/{id}", h.deleteUser)
	h.handle("GET /auth/reset/validate", h.validateReset)
	h.handle("POST /auth/reset/password", h.redeemReset)
	h.handle("POST /auth/simple/login", h.loginRoute)
	if h.resetURL.Path != "" {
		h.handle("GET "+strings.ToLower(h.resetURL.Path), h.resetPage)
	}
}

// handle registers pattern ("METHOD /path") on the local mux and notes the
// literal part of its path, before any wildcard, which every path it
// matches starts with.
func (h *Handler) handle(pattern string, fn http.HandlerFunc) {
	h.local.HandleFunc(pattern, fn)
	_, path, _ := strings.Cut(pattern, " ")
	if i := strings.IndexByte(path, '{'); i >= 0 {
		path = path[:i]
	}
	h.localPrefixes = append(h.localPrefixes, path)
}

// localRoute finds the local handler for r and its route class. The
// returned request has the lower-cased canonical path the pattern matched,
// so handlers read path values from it. Most requests match nothing: a path
// that starts with no local pattern's literal prefix is passed at once, and
// otherwise the mux is probed with a small request; r is copied only on a
// match.
func (h *Handler) localRoute(r *http.Request, st *reqState) (*http.Request, string) {
	lower := strings.ToLower(st.path)
	if !hasAnyPrefix(lower, h.localPrefixes) {
		return nil, ""
	}
	probe := &http.Request{Method: r.Method, Host: r.Host, URL: &url.URL{Path: lower}}
	_, pattern := h.local.Handler(probe)
	if pattern == "" {
		return nil, ""
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = lower, ""
	r2.URL = &u
	return r2, classOf(pattern)
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
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
