package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
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
// writers (lineWriter, and the Logger through slogAttrs) walk the same
// fields in the same order, so they write the same bytes
// (TestAccessLineEncoder, TestAccessLineWritersAgree).
type accessLine struct {
	Time                       time.Time
	Level                      slog.Level // INFO, or ERROR for a 5xx
	RequestID, Method, Path    string
	Class                      string
	Status                     int
	Bytes                      int64
	Duration, UpstreamDuration int64 // nanoseconds; logged in milliseconds
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
	ms(key string, nanos int64) // a duration, written in milliseconds
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
	s.ms("duration_ms", l.Duration)
	s.ms("upstream_duration_ms", l.UpstreamDuration)
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
func (a *slogAttrs) ms(k string, v int64)      { *a = append(*a, slog.Float64(k, millis(v))) }
func (a *slogAttrs) strs(k string, v []string) { *a = append(*a, slog.Any(k, v)) }

// lineWriter writes access lines as JSON straight to a writer, one Write
// per line from a pooled buffer, instead of slog's generic record path (a
// caller lookup and an attribute walk per line): the access line was the
// largest share of latch's own CPU per proxied request (bench/RESULTS.md).
// The bytes are those slog's JSONHandler writes for the same line
// (TestAccessLineEncoder, FuzzAccessLineEncoder).
type lineWriter struct {
	w    io.Writer
	pool sync.Pool // *lineBuf
}

type lineBuf struct {
	line accessLine
	enc  jsonLine
}

// maxPooledLine bounds the buffers kept for reuse, as slog does: a rare
// huge line (a long cause) is not held for ever.
const maxPooledLine = 16 << 10

func newLineWriter(w io.Writer) *lineWriter {
	lw := &lineWriter{w: w}
	lw.pool.New = func() any { return &lineBuf{enc: make(jsonLine, 0, 1024)} }
	return lw
}

// get returns a cleared line (write clears it) to fill and pass to write.
func (lw *lineWriter) get() *lineBuf { return lw.pool.Get().(*lineBuf) }

func (lw *lineWriter) write(b *lineBuf) {
	b.enc.begin(&b.line)
	b.line.walk(&b.enc)
	b.enc = append(b.enc, "}\n"...)
	_, _ = lw.w.Write(b.enc)
	b.line = accessLine{}
	if cap(b.enc) <= maxPooledLine {
		b.enc = b.enc[:0]
		lw.pool.Put(b)
	}
}

// jsonLine appends an access line's JSON as slog's JSONHandler writes it
// (log/slog/json_handler.go): time in RFC 3339 with nanoseconds and no
// trailing zeros, the level's name, durations as float milliseconds,
// strings escaped by slog's rules and string lists by encoding/json's
// (slog marshals them), neither escaping HTML.
type jsonLine []byte

// begin resets j to the line's opening: time (none when zero, as in
// slog), level and msg.
func (j *jsonLine) begin(l *accessLine) {
	b := append((*j)[:0], '{')
	if !l.Time.IsZero() {
		b = append(b, `"time":"`...)
		b = l.Time.Round(0).AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":"`...)
	b = append(b, l.Level.String()...)
	b = append(b, `","msg":"`+accessMsg+`"`...)
	*j = b
}

func (j *jsonLine) key(k string) {
	*j = appendJSONString(append(*j, ','), k, false)
	*j = append(*j, ':')
}

func (j *jsonLine) str(k, v string) { j.key(k); *j = appendJSONString(*j, v, false) }
func (j *jsonLine) num(k string, v int64) {
	j.key(k)
	*j = strconv.AppendInt(*j, v, 10)
}
func (j *jsonLine) ms(k string, nanos int64) {
	j.key(k)
	*j = appendJSONFloat(*j, millis(nanos))
}

// millis is a duration in nanoseconds as milliseconds: 1066000 is 1.066.
// It is exact to the nanosecond below 2^53 ns (about 104 days).
func millis(nanos int64) float64 { return float64(nanos) / 1e6 }

// appendJSONFloat appends f as encoding/json writes a float64 (slog's
// JSONHandler marshals floats with it): the shortest decimal that reads
// back as f. encoding/json switches to exponent form below 1e-6 and from
// 1e21; a whole number of nanoseconds in milliseconds is 0 or at least
// 1e-6 in size, and below 1e13, so it never does (FuzzAccessLineEncoder).
func appendJSONFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}
func (j *jsonLine) strs(k string, v []string) {
	j.key(k)
	*j = append(*j, '[')
	for i, s := range v {
		if i > 0 {
			*j = append(*j, ',')
		}
		*j = appendJSONString(*j, s, true)
	}
	*j = append(*j, ']')
}

// appendJSONString appends s quoted: '"' and '\\' escaped, control
// characters as \n, \r, \t or \u00XX (and as \b, \f with
// shortBF, as encoding/json writes them), each invalid UTF-8 byte as
// \ufffd, U+2028 and U+2029 as \u2028 and \u2029.
func appendJSONString(b []byte, s string, shortBF bool) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case shortBF && c == '\b':
				b = append(b, '\\', 'b')
			case shortBF && c == '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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
