package proxy

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Sessions tells when a subject last changed its password, so tokens issued
// before then are refused. A zero time means never or unknown subject.
type Sessions interface {
	PasswordChanged(ctx context.Context, email string) (time.Time, error)
}

// routes registers the routes latch answers itself. Patterns are matched
// against the lower-cased canonical path.
func (h *Handler) routes() {}

// localRoute finds the local handler for r and its route class, or nil.
func (h *Handler) localRoute(r *http.Request, st *reqState) (http.Handler, string) {
	probe := r.Clone(r.Context())
	probe.URL.Path = strings.ToLower(st.path)
	probe.URL.RawPath = ""
	handler, pattern := h.local.Handler(probe)
	if pattern == "" {
		return nil, ""
	}
	return handler, classOf(pattern)
}

// classOf maps a local route pattern to its metric class.
func classOf(pattern string) string {
	switch {
	case strings.Contains(pattern, "/reset"):
		return "reset"
	case strings.Contains(pattern, "/auth/"):
		return "auth"
	default:
		return "local"
	}
}
