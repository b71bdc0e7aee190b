package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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

// accessLine is one request's access-log line. On protected paths it is
// also the decision log: roles, decision and the deciding rule. Both
// writers (lineWriter and slog's JSONHandler through attrs) give it the same
// keys and value types (durations in nanoseconds), so they produce the same
// object (TestAccessLineWritersAgree).
type accessLine struct {
	Time                       time.Time
	Level                      slog.Level // INFO, or ERROR for a 5xx
	RequestID, Method, Path    string
	Class                      string
	Status                     int
	Bytes                      int64
	Duration, UpstreamDuration int64
	Subject                    string
	Roles                      []string
	Decision, Rule             string
	UpstreamError              string
	ErrorID, Error, Cause      string
}

// accessMsg is every access line's msg.
const accessMsg = "request"

// fieldSink receives an access line's fields, in order: each writer's
// encoding implements it, so both write the same fields (walk).
type fieldSink interface {
	str(key, v string)
	num(key string, v int64)
	dur(key string, nanos int64)
	strs(key string, v []string)
}

// walk gives s the line's fields; the optional ones only when set.
func (l *accessLine) walk(s fieldSink) {
	s.str("request_id", l.RequestID)
	s.str("method", l.Method)
	s.str("path", l.Path)
	s.str("class", l.Class)
	s.num("status", int64(l.Status))
	s.num("bytes", l.Bytes)
	s.dur("duration", l.Duration)
	s.dur("upstream_duration", l.UpstreamDuration)
	s.str("subject", l.Subject)
	if len(l.Roles) > 0 {
		s.strs("roles", l.Roles)
	}
	for _, a := range [...]struct{ k, v string }{{"decision", l.Decision}, {"rule", l.Rule},
		{"upstream_error", l.UpstreamError}, {"error_id", l.ErrorID}, {"error", l.Error}, {"cause", l.Cause}} {
		if a.v != "" {
			s.str(a.k, a.v)
		}
	}
}

// slogAttrs collects the fields for the Logger path.
type slogAttrs []slog.Attr

func (a *slogAttrs) str(k, v string)           { *a = append(*a, slog.String(k, v)) }
func (a *slogAttrs) num(k string, v int64)     { *a = append(*a, slog.Int64(k, v)) }
func (a *slogAttrs) dur(k string, v int64)     { *a = append(*a, slog.Duration(k, time.Duration(v))) }
func (a *slogAttrs) strs(k string, v []string) { *a = append(*a, slog.Any(k, v)) }

// zapFields collects the fields for lineWriter.
type zapFields []zapcore.Field

func (f *zapFields) str(k, v string)           { *f = append(*f, zap.String(k, v)) }
func (f *zapFields) num(k string, v int64)     { *f = append(*f, zap.Int64(k, v)) }
func (f *zapFields) dur(k string, v int64)     { *f = append(*f, zap.Duration(k, time.Duration(v))) }
func (f *zapFields) strs(k string, v []string) { *f = append(*f, zap.Strings(k, v)) }

// lineWriter writes access lines as JSON straight to a writer with zap's
// JSON encoder (zapcore: pooled buffers, no reflection) and a single Write,
// instead of slog's generic record path (a caller lookup and an attribute
// walk per line) or encoding/json's reflection: the access line was the
// largest share of latch's own CPU per proxied request (bench/RESULTS.md).
type lineWriter struct {
	w    io.Writer
	enc  zapcore.Encoder
	pool sync.Pool // *lineBuf
}

type lineBuf struct {
	line   accessLine
	fields [20]zapcore.Field
	f      zapFields // over fields
}

func newLineWriter(w io.Writer) *lineWriter {
	lw := &lineWriter{w: w, enc: zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey:        "time",
		LevelKey:       "level",
		MessageKey:     "msg",
		EncodeTime:     zapcore.RFC3339NanoTimeEncoder,
		EncodeLevel:    zapcore.CapitalLevelEncoder,
		EncodeDuration: zapcore.NanosDurationEncoder,
		LineEnding:     "\n",
	})}
	lw.pool.New = func() any { return new(lineBuf) }
	return lw
}

// get returns a cleared line (write clears it) to fill and pass to write.
func (lw *lineWriter) get() *lineBuf { return lw.pool.Get().(*lineBuf) }

func (lw *lineWriter) write(b *lineBuf) {
	l := &b.line
	b.f = b.fields[:0]
	l.walk(&b.f)
	level := zapcore.InfoLevel
	if l.Level >= slog.LevelError {
		level = zapcore.ErrorLevel
	}
	buf, err := lw.enc.EncodeEntry(zapcore.Entry{Level: level, Time: l.Time, Message: accessMsg}, b.f)
	if err == nil {
		_, _ = lw.w.Write(buf.Bytes())
		buf.Free()
	}
	clear(b.fields[:])
	b.f, b.line = nil, accessLine{}
	lw.pool.Put(b)
}

// finish writes the access-log line and the request metrics.
func (h *Handler) finish(r *http.Request, st *reqState, rec *recorder, start time.Time) {
	status := rec.status
	if !rec.wrote {
		status = http.StatusOK
	}
	end := h.now()
	d := end.Sub(start)
	h.metrics.observe(st.class, r.Method, status, d)

	var b *lineBuf
	var l *accessLine
	if h.lines != nil {
		b = h.lines.get()
		l = &b.line
	} else {
		l = new(accessLine)
	}
	l.Time, l.Level = end, slog.LevelInfo
	if status >= 500 {
		l.Level = slog.LevelError
	}
	l.RequestID, l.Method, l.Class, l.Status, l.Bytes = st.requestID, r.Method, st.class, status, rec.bytes
	l.Duration, l.UpstreamDuration = int64(d), int64(st.upstream)
	l.Path = st.escaped
	if l.Path == "" {
		l.Path = "(refused)"
	}
	if st.identity != nil {
		l.Subject = st.identity.Subject
	}
	if st.decision != "" {
		if st.identity != nil {
			l.Roles = st.identity.Roles
		}
		l.Decision, l.Rule = st.decision, strings.Join(st.rule, ", ")
	}
	l.UpstreamError = st.upstreamErr
	if st.errorID != "" {
		l.ErrorID, l.Error = st.errorID, st.errorName
		if st.cause != nil {
			l.Cause = st.cause.Error()
		}
	}
	if b != nil {
		h.lines.write(b)
		return
	}
	attrs := make(slogAttrs, 0, 16)
	l.walk(&attrs)
	h.log.LogAttrs(r.Context(), l.Level, accessMsg, attrs...)
}
