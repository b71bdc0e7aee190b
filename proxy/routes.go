package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// routes registers the routes latch answers itself when it has a Store.
// Patterns match the canonical path with ASCII letters lower-cased (Target's
// Key); those under a protected prefix, and always those under
// privilegedPrefixes, pass authentication and the policy first.
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
		h.handle("GET "+lowerASCII(h.resetURL.Path), h.resetPage)
	}
}

// handle registers pattern ("METHOD /path") on the local mux and notes the
// literal part of its path, before any wildcard, which every path it
// matches starts with. fn answers success itself and returns what went
// wrong, which fail answers: route handlers never write an error body.
func (h *Handler) handle(pattern string, fn func(http.ResponseWriter, *http.Request) error) {
	h.local.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			fail(w, r, err)
		}
	})
	_, path, _ := strings.Cut(pattern, " ")
	if i := strings.IndexByte(path, '{'); i >= 0 {
		path = path[:i]
	}
	h.localPrefixes = append(h.localPrefixes, path)
}

// localRoute finds the local handler for r and its route class. Patterns
// match the Target's Key (the canonical path, ASCII letters lower-cased), and
// the returned request carries that path, so handlers read their path
// parameters from the same string the policy decided. Most requests match
// nothing: a path that starts with no local pattern's literal prefix is
// passed at once, and otherwise the mux is probed with a small request; r is
// copied only on a match.
func (h *Handler) localRoute(r *http.Request, t *Target) (*http.Request, string) {
	if !hasAnyPrefix(t.Key, h.localPrefixes) {
		return nil, ""
	}
	path, err := unescape(t.Key)
	if err != nil {
		return nil, ""
	}
	probe := &http.Request{Method: r.Method, Host: r.Host, URL: &url.URL{Path: path, RawPath: t.Key}}
	_, pattern := h.local.Handler(probe)
	if pattern == "" {
		return nil, ""
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = path, t.Key
	r2.URL = &u
	return r2, classOf(pattern)
}

// privilegedPrefixes hold latch's own routes that change users or issue
// reset links. They are always protected: authenticated and decided by the
// policy, whatever policy.protect lists.
var privilegedPrefixes = []string{"/api/admin/user-admin/"}

// ProtectedPrefixes returns the configured protected prefixes with latch's
// own privileged routes added, as the proxy applies them when it answers
// those routes itself. `latch policy explain` uses the same list.
func ProtectedPrefixes(configured []string) []string {
	out := append([]string(nil), configured...)
	for _, p := range privilegedPrefixes {
		if !Protected(p, configured) {
			out = append(out, p)
		}
	}
	return out
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
