package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// SeedRoute is the one route latch answers in the upstream's own URL
// space: the API page's reset-password route. Everything else latch serves
// is under its namespace (Options.Namespace).
const SeedRoute = "/api/admin/user-admin/reset-password"

// routes registers the routes latch answers itself. Patterns match the
// canonical path with ASCII letters lower-cased (Target's Key); those under
// a protected prefix, and always the privileged ones (ProtectedPrefixes),
// pass authentication and the policy first. Under the namespace, a path no
// route matches is answered 404 (see namespaceMiss), never forwarded.
func (h *Handler) routes() {
	ns := h.ns
	h.handle(open, "GET "+ns+"/me", h.me)
	if h.opts.JWKS != nil {
		h.handle(open, "GET "+ns+"/jwks.json", h.jwks)
	}
	if h.opts.Store == nil {
		return
	}
	h.handle(privileged, "POST "+SeedRoute, h.resetPassword)
	h.handle(open, "GET "+ns+"/login", h.loginPage)
	h.handle(open, "POST "+ns+"/login", h.loginRoute)
	h.handle(open, "POST "+ns+"/logout", h.logout)
	h.handle(privileged, "GET "+ns+"/users", h.listUsers)
	h.handle(privileged, "POST "+ns+"/users", h.createUser)
	h.handle(privileged, "GET "+ns+"/users/{id}", h.getUser)
	h.handle(privileged, "PUT "+ns+"/users/{id}", h.putUser)
	h.handle(privileged, "DELETE "+ns+"/users/{id}", h.deleteUser)
	h.handle(open, "GET "+ns+"/reset/validate", h.validateReset)
	h.handle(open, "POST "+ns+"/reset/redeem", h.redeemReset)
	h.handle(open, "GET "+ns+"/reset-password", h.resetPage)
	// Only an exact page path: "/" or a path ending in "/" would be a
	// subtree pattern, taking every GET below it from the upstream.
	if p := lowerASCII(h.resetURL.Path); p != ns+"/reset-password" && p != "" && !strings.HasSuffix(p, "/") &&
		!strings.ContainsAny(p, "{}") && !strings.HasPrefix(p, ns+"/") {
		// reset.url names a page of latch's elsewhere in the upstream's
		// space: the operator asked for it.
		h.handle(open, "GET "+p, h.resetPage)
	}
}

// Access of a local route: privileged routes are always protected (see
// ProtectedPrefixes); open ones (the login, logout, reset and key routes,
// which must work for someone not signed in) never are, whatever
// policy.protect covers, so protecting "/" cannot lock everyone out.
const (
	open       = false
	privileged = true
)

// handle registers pattern ("METHOD /path") on the local mux and notes the
// literal part of its path, before any wildcard, which every path it
// matches starts with. fn answers success itself and returns what went
// wrong, which fail answers: route handlers never write an error body.
func (h *Handler) handle(priv bool, pattern string, fn func(http.ResponseWriter, *http.Request) error) {
	if !priv {
		h.openRoutes[pattern] = true
	}
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
func (h *Handler) localRoute(r *http.Request, t *Target) (_ *http.Request, class string, openRoute bool) {
	if !hasAnyPrefix(t.Key, h.localPrefixes) {
		return nil, "", false
	}
	path, err := unescape(t.Key)
	if err != nil {
		return nil, "", false
	}
	probe := &http.Request{Method: r.Method, Host: r.Host, URL: &url.URL{Path: path, RawPath: t.Key}}
	_, pattern := h.local.Handler(probe)
	if pattern == "" {
		return nil, "", false
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = path, t.Key
	r2.URL = &u
	return r2, classOf(pattern), h.openRoutes[pattern]
}

// privilegedPrefixes are latch's own routes that change users or issue
// reset links under namespace ns. They are always protected: authenticated
// and decided by the policy, whatever policy.protect lists.
func privilegedPrefixes(ns string) []string {
	return []string{SeedRoute, ns + "/users"}
}

// ProtectedPrefixes returns the configured protected prefixes with latch's
// own privileged routes under namespace ns added, as the proxy applies them
// when it answers those routes itself. `latch policy explain` uses the same
// list.
func ProtectedPrefixes(configured []string, ns string) []string {
	out := append([]string(nil), configured...)
	for _, p := range privilegedPrefixes(cleanNamespace(ns)) {
		if !Protected(p, configured) {
			out = append(out, p)
		}
	}
	return out
}

// DefaultNamespace is where latch serves its own pages and APIs.
const DefaultNamespace = "/.latch"

// cleanNamespace is ns lower-cased, without a trailing slash; "" is
// DefaultNamespace.
func cleanNamespace(ns string) string {
	if ns == "" {
		return DefaultNamespace
	}
	return strings.TrimRight(lowerASCII(ns), "/")
}

// validNamespace: a clean path of at least one segment, of letters,
// digits, '.', '-' and '_' (as config checks namespace).
func validNamespace(ns string) bool {
	if len(ns) < 2 || ns[0] != '/' {
		return false
	}
	for _, seg := range strings.Split(ns[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// inNamespace reports whether the canonical key is the namespace or below it.
func (h *Handler) inNamespace(key string) bool {
	return strings.HasPrefix(key, h.ns) && (len(key) == len(h.ns) || key[len(h.ns)] == '/')
}

// namespaceMiss is the answer for a path under the namespace that no route
// of latch's matches: 405 when another method would match, 404 otherwise.
func (h *Handler) namespaceMiss(r *http.Request, key string) *Error {
	path, err := unescape(key)
	if err == nil {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			probe := &http.Request{Method: m, Host: r.Host, URL: r.URL.JoinPath()}
			probe.URL.Path, probe.URL.RawPath = path, key
			if _, p := h.local.Handler(probe); p != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			return &Error{Status: http.StatusMethodNotAllowed, Name: NameMethodNotAllowed,
				Message: fmt.Sprintf("%s is not allowed here; use %s.", r.Method, strings.Join(allow, " or "))}
		}
	}
	return &Error{Status: http.StatusNotFound, Name: NameNotFound, Message: msgNotFound}
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
	case strings.Contains(pattern, "/login"), strings.Contains(pattern, "/logout"), strings.Contains(pattern, "/me"):
		return "auth"
	default:
		return "local"
	}
}
