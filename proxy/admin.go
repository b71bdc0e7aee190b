package proxy

import (
	"context"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness condition, named Name in /readyz's answer.
type Check struct {
	Name string
	// Err returns nil when the condition holds. ctx is the /readyz
	// request's: it ends when the caller goes away.
	Err func(ctx context.Context) error
}

// AdminOptions adds optional routes to the admin handler.
type AdminOptions struct {
	// Pprof mounts Go's profiler at /debug/pprof/. Default false.
	Pprof bool
}

// Admin returns the admin-port handler: /healthz (alive), /readyz (every
// check holds, else 503 naming the failing ones) and, when g is not nil,
// /metrics. It is never mounted on the proxy port.
func Admin(checks []Check, g prometheus.Gatherer, o AdminOptions) http.Handler {
	mux := http.NewServeMux()
	if o.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		failing := map[string]string{}
		for _, c := range checks {
			if err := c.Err(r.Context()); err != nil {
				failing[c.Name] = err.Error()
			}
		}
		if len(failing) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failing": failing})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if g != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	}
	return mux
}
