package proxy

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// recorder notes the status and size of an answer. It unwraps for
// http.ResponseController, so flushing (server-sent events) and hijacking
// (WebSocket upgrades) reach the real writer.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote && code >= 200 || code == http.StatusSwitchingProtocols {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.status, r.wrote = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// finish writes the access-log line and the request metrics. On protected
// paths the line is also the decision log: roles, decision and the deciding
// rule.
func (h *Handler) finish(r *http.Request, st *reqState, rec *recorder, start time.Time) {
	status := rec.status
	if !rec.wrote {
		status = http.StatusOK
	}
	d := h.now().Sub(start)
	h.metrics.observe(st.class, r.Method, status, d)
	subject := ""
	if st.identity != nil {
		subject = st.identity.Subject
	}
	path := st.escaped
	if path == "" {
		path = "(refused)"
	}
	attrs := []slog.Attr{
		slog.String("request_id", requestIDFrom(r.Context())),
		slog.String("method", r.Method),
		slog.String("path", path),
		slog.String("class", st.class),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", d),
		slog.Duration("upstream_duration", st.upstream),
		slog.String("subject", subject),
	}
	if st.decision != "" {
		roles := []string(nil)
		if st.identity != nil {
			roles = st.identity.Roles
		}
		attrs = append(attrs, slog.Any("roles", roles), slog.String("decision", st.decision),
			slog.String("rule", strings.Join(st.rule, ", ")))
	}
	if st.upstreamErr != "" {
		attrs = append(attrs, slog.String("upstream_error", st.upstreamErr))
	}
	if st.errorID != "" {
		attrs = append(attrs, slog.String("error_id", st.errorID), slog.String("error", st.errorName))
		if st.cause != nil {
			attrs = append(attrs, slog.String("cause", st.cause.Error()))
		}
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	h.log.LogAttrs(r.Context(), level, "request", attrs...)
}
