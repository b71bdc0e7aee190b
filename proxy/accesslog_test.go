package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestAccessLine: one line per request; on a protected path it carries the
// decision with subject, roles and rule; on an error, the error id the body
// shows; never the credential.
func TestAccessLine(t *testing.T) {
	for _, writer := range []string{"slog", "AccessLog"} {
		t.Run(writer, func(t *testing.T) { testAccessLine(t, writer) })
	}
}

// logTo sends the access lines to w through the named writer: the Logger
// (slog's JSONHandler) or latch's own encoder (Options.AccessLog).
func logTo(writer string, w io.Writer) func(*Options) {
	return func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(w, nil))
		if writer == "AccessLog" {
			o.AccessLog = w
		}
	}
}

func testAccessLine(t *testing.T, writer string) {
	var logs logBuffer
	up := newRecording(t)
	front := newFront(t, up.srv.URL, logTo(writer, &logs))
	token := "Bearer v@example.com:viewer"
	body := wantError(t, do(t, "POST", front.URL+"/api/admin/features", http.Header{"Authorization": {token}}), 403, NameNoAccess)
	resp := do(t, "GET", front.URL+"/api/admin/features", http.Header{"Authorization": {token}})
	resp.Body.Close()

	lines := logs.lines(t)
	if len(lines) != 2 {
		t.Fatalf("got %d log lines for 2 requests, want 2: %v", len(lines), lines)
	}
	denied, allowed := lines[0], lines[1]
	want := map[string]any{"msg": "request", "method": "POST", "path": "/api/admin/features", "class": "protected",
		"status": float64(403), "subject": "v@example.com", "decision": "deny", "error": NameNoAccess, "error_id": body["id"]}
	for k, v := range want {
		if denied[k] != v {
			t.Errorf("denied line %s: got %v, want %v", k, denied[k], v)
		}
	}
	if roles, _ := denied["roles"].([]any); len(roles) != 1 || roles[0] != "viewer" {
		t.Errorf("denied line roles: got %v", denied["roles"])
	}
	if allowed["decision"] != "allow" || !strings.Contains(allowed["rule"].(string), "role:viewer") {
		t.Errorf("allowed line: decision %v rule %v", allowed["decision"], allowed["rule"])
	}
	logs.mu.Lock()
	raw := logs.b.String()
	logs.mu.Unlock()
	if strings.Contains(raw, "Bearer") || strings.Contains(raw, "Authorization") {
		t.Error("the credential reached the log")
	}
}

// TestAccessLineWritersAgree: latch's own encoder writes the same object as
// slog's JSONHandler for every kind of line (allowed, denied, refused path,
// no credential, upstream down, awkward characters), apart from the values
// that differ per run.
func TestAccessLineWritersAgree(t *testing.T) {
	up := newRecording(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	requests := []struct {
		method, path, auth string
		upstream           string
	}{
		{"GET", "/api/admin/features", "Bearer v@example.com:viewer", up.srv.URL},
		{"POST", "/api/admin/features", "Bearer v@example.com:viewer", up.srv.URL},
		{"GET", "/api/admin/x", "Bearer q\"<&>\\é@example.com:admin,viewer", up.srv.URL},
		{"GET", "/api/admin/x", "", up.srv.URL},
		{"GET", "/a/%2e%2e/%2fb", "", up.srv.URL},
		{"GET", "/open/page?q=1", "", up.srv.URL},
		{"DELETE", "/open", "", down.URL},
	}
	got := map[string][]map[string]any{}
	for _, writer := range []string{"slog", "AccessLog"} {
		var logs logBuffer
		for i, rq := range requests {
			front := newFront(t, rq.upstream, logTo(writer, &logs))
			hdr := http.Header{"X-Request-Id": {fmt.Sprintf("req-%d", i)}}
			if rq.auth != "" {
				hdr.Set("Authorization", rq.auth)
			}
			resp := do(t, rq.method, front.URL+rq.path, hdr)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		got[writer] = logs.lines(t)
	}
	a, b := got["slog"], got["AccessLog"]
	if len(a) != len(requests) || len(b) != len(requests) {
		t.Fatalf("lines: slog %d, AccessLog %d, want %d each", len(a), len(b), len(requests))
	}
	for i := range a {
		for _, line := range []map[string]any{a[i], b[i]} {
			for _, k := range []string{"time", "duration_ms", "upstream_duration_ms", "error_id"} {
				if _, ok := line[k]; ok {
					line[k] = "(varies)"
				}
			}
			if c, ok := line["cause"].(string); ok { // names the closed port
				line["cause"] = strings.Split(c, "127.0.0.1")[0]
			}
		}
		if !reflect.DeepEqual(a[i], b[i]) {
			t.Errorf("request %d: the writers disagree\nslog:      %v\nAccessLog: %v", i, a[i], b[i])
		}
	}
	if b[2]["subject"] != "q\"<&>\\é@example.com" || b[6]["level"] != "ERROR" || b[6]["status"] != float64(502) {
		t.Errorf("unexpected lines: %v / %v", b[2], b[6])
	}
}

// TestAccessLineLoginSubject: a successful login's access line names the
// user who logged in; a failed one names nobody.
func TestAccessLineLoginSubject(t *testing.T) {
	t.Parallel()
	for _, writer := range []string{"slog", "AccessLog"} {
		t.Run(writer, func(t *testing.T) {
			t.Parallel()
			var logs logBuffer
			up := newRecording(t)
			front := newFront(t, up.srv.URL, func(o *Options) {
				logTo(writer, &logs)(o)
				o.Store, o.Tokens, o.ResetURL = &fakeStore{}, fakeMinter{}, "http://x/reset-password"
				o.Login = LoginLimits{PerSecond: 100}
			})
			for _, pw := range []string{"Right-Passw0rd!", "wrong"} {
				resp, err := testClient.Post(front.URL+"/.latch/login", "application/json",
					strings.NewReader(`{"email":"a@example.com","password":"`+pw+`"}`))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			var access []map[string]any
			for _, l := range logs.lines(t) {
				if l["msg"] == accessMsg {
					access = append(access, l)
				}
			}
			if len(access) != 2 {
				t.Fatalf("got %d access lines for 2 logins, want 2: %v", len(access), access)
			}
			if ok, failed := access[0], access[1]; ok["status"] != float64(200) || ok["subject"] != "a@example.com" ||
				failed["status"] != float64(401) || failed["subject"] != "" {
				t.Errorf("access lines: got status %v subject %q, then status %v subject %q; want 200 a@example.com, then 401 and no subject",
					ok["status"], ok["subject"], failed["status"], failed["subject"])
			}
		})
	}
}

// TestAccessLineDurations: both writers label durations, in milliseconds
// as JSON numbers with a fraction: duration_ms is the time between the
// clock's two readings around the request, and upstream_duration_ms is
// no more than it.
func TestAccessLineDurations(t *testing.T) {
	t.Parallel()
	for _, writer := range []string{"slog", "AccessLog"} {
		t.Run(writer, func(t *testing.T) {
			t.Parallel()
			var logs logBuffer
			up := newRecording(t)
			var mu sync.Mutex
			clock := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
			front := newFront(t, up.srv.URL, func(o *Options) {
				logTo(writer, &logs)(o)
				o.Now = func() time.Time { // each reading 1.066 ms after the last
					mu.Lock()
					defer mu.Unlock()
					clock = clock.Add(1_066_000)
					return clock
				}
			})
			resp := do(t, "GET", front.URL+"/open", nil)
			resp.Body.Close()
			lines := logs.lines(t)
			if len(lines) != 1 {
				t.Fatalf("got %d lines, want 1: %v", len(lines), lines)
			}
			l := lines[0]
			if got, ok := l["duration_ms"].(float64); !ok || got != 1.066 {
				t.Errorf("duration_ms: got %v (%T), want 1.066", l["duration_ms"], l["duration_ms"])
			}
			if got, ok := l["upstream_duration_ms"].(float64); !ok || got <= 0 {
				t.Errorf("upstream_duration_ms: got %v (%T), want a positive number of milliseconds", l["upstream_duration_ms"], l["upstream_duration_ms"])
			}
			for _, k := range []string{"duration", "upstream_duration"} {
				if v, ok := l[k]; ok {
					t.Errorf("the line carries the unlabelled %s: %v", k, v)
				}
			}
		})
	}
}

// TestAccessLineMillis: the encoder writes nanoseconds as milliseconds,
// the shortest decimal, never in exponent form.
func TestAccessLineMillis(t *testing.T) {
	t.Parallel()
	var out countingWriter
	lw := newLineWriter(&out)
	for _, c := range []struct {
		nanos int64
		want  string
	}{
		{0, "0"},
		{1, "0.000001"},
		{-1, "-0.000001"},
		{1_066_000, "1.066"},
		{812_345, "0.812345"},
		{2_000_000_000, "2000"},
		{int64(90 * 24 * time.Hour), "7776000000"},
		{1<<63 - 1, "9223372036854.775"},
	} {
		got := encodedLine(t, lw, &out, accessLine{Level: slog.LevelInfo, Duration: c.nanos})
		if want := `"duration_ms":` + c.want + `,`; !strings.Contains(got, want) {
			t.Errorf("%d ns: got %s, want it to hold %s", c.nanos, got, want)
		}
		if want := slogLine(t, accessLine{Level: slog.LevelInfo, Duration: c.nanos}); got != want {
			t.Errorf("%d ns:\ngot  %s\nwant %s", c.nanos, got, want)
		}
	}
}

// slogLine is what slog's JSONHandler writes for l: the reference the
// access-line encoder must equal byte for byte.
func slogLine(t testing.TB, l accessLine) string {
	t.Helper()
	var out bytes.Buffer
	attrs := slogAttrs{}
	l.walk(&attrs)
	rec := slog.NewRecord(l.Time, l.Level, accessMsg, 0)
	rec.AddAttrs(attrs...)
	if err := slog.NewJSONHandler(&out, nil).Handle(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// encodedLine is what lineWriter writes for l, checking it is one Write.
func encodedLine(t testing.TB, lw *lineWriter, w *countingWriter, l accessLine) string {
	t.Helper()
	w.b.Reset()
	before := w.writes
	b := lw.get()
	b.line = l
	lw.write(b)
	if n := w.writes - before; n != 1 {
		t.Errorf("the line took %d writes, want 1", n)
	}
	return w.b.String()
}

type countingWriter struct {
	b      bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) { c.writes++; return c.b.Write(p) }

// awkward holds every kind of character the two escapers treat apart:
// quotes, backslash, HTML, each control character (\b and \f are where
// slog's strings and encoding/json's lists differ), DEL, invalid UTF-8
// (a stray byte, a truncated sequence, a surrogate), U+2028, U+2029, and
// non-ASCII text.
const awkward = "q\"\\<&>'/ \x00\x01\b\t\n\f\r\x1b\x1f\x7f \xff\xe2\x82 \xed\xa0\x80 \u2028\u2029 é日本🔒\ufffd"

// TestAccessLineEncoder: latch's access-line encoder writes, in one Write,
// the bytes slog's JSONHandler writes for the same fields, for every kind
// of line.
func TestAccessLineEncoder(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 29, 10, 12, 3, 450_000_000, time.UTC)
	allowed := accessLine{Time: at, Level: slog.LevelInfo, RequestID: "req-1", Method: "GET", Path: "/api/admin/features",
		Class: "protected", Status: 200, Bytes: 1234, Duration: 812_345, UpstreamDuration: 500_000,
		Subject: "v@example.com", Roles: []string{"viewer", "editor"}, Decision: "allow", Rule: "role:viewer, /api/admin/*, GET"}
	denied := allowed
	denied.Method, denied.Status, denied.Bytes, denied.UpstreamDuration = "POST", 403, 97, 0
	denied.Decision, denied.Rule, denied.ErrorID, denied.Error = "deny", "", "e-0123456789abcdef", NameNoAccess
	withCause := denied
	withCause.Cause = "policy: reading rules: " + awkward
	cases := []struct {
		name string
		line accessLine
	}{
		{"allowed", allowed},
		{"denied", denied},
		{"denied with cause", withCause},
		{"refused", accessLine{Time: at, Level: slog.LevelInfo, RequestID: "req-2", Method: "GET", Path: "(refused)",
			Class: "refused", Status: 400, Bytes: 120, Duration: 9_000, ErrorID: "e-1", Error: "bad_path"}},
		{"no credential", accessLine{Time: at, Level: slog.LevelInfo, RequestID: "req-3", Method: "GET", Path: "/api/admin/x",
			Class: "protected", Status: 401, Bytes: 80, Duration: 7, ErrorID: "e-2", Error: "unauthenticated"}},
		{"upstream down", accessLine{Time: at, Level: slog.LevelError, RequestID: "req-4", Method: "DELETE", Path: "/open",
			Class: "forward", Status: 502, Bytes: 140, Duration: 3_000_000, UpstreamDuration: 2_999_000,
			UpstreamError: "connect", ErrorID: "e-3", Error: "upstream_unavailable",
			Cause: "dial tcp 127.0.0.1:1: connect: connection refused"}},
		{"awkward characters", accessLine{Time: at, Level: slog.LevelInfo, RequestID: awkward, Method: "GET", Path: "/" + awkward,
			Class: "protected", Status: 200, Subject: awkward, Roles: []string{awkward, "", "admin"}, Decision: "allow",
			Rule: awkward, Cause: awkward}},
		{"empty roles, zero numbers", accessLine{Time: at, Level: slog.LevelInfo, Roles: []string{}, Duration: -1}},
		{"time in a zone, whole second", accessLine{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -7*3600)),
			Level: slog.LevelInfo, Status: 204}},
		{"monotonic time", accessLine{Time: time.Now(), Level: slog.LevelError, Status: 500}},
		{"zero time", accessLine{Level: slog.LevelInfo, Status: 200}},
	}
	var out countingWriter
	lw := newLineWriter(&out)
	for _, c := range cases {
		want := slogLine(t, c.line)
		if got := encodedLine(t, lw, &out, c.line); got != want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.name, got, want)
		}
	}
}

// FuzzAccessLineEncoder: for any strings and numbers, the encoder's line
// equals slog's.
func FuzzAccessLineEncoder(f *testing.F) {
	f.Add("v@example.com", "viewer", "/api/admin/features", "dial tcp: refused", 200, int64(812_345), int64(1_700_000_000_123_456_789))
	f.Add(awkward, awkward, "/"+awkward, awkward, 502, int64(-1), int64(0))
	f.Add("\u2028", "\b\f", "\xff", "\x00", 0, int64(1), int64(-62135596800))
	var out countingWriter
	lw := newLineWriter(&out)
	f.Fuzz(func(t *testing.T, subject, role, path, cause string, status int, nanos, unixNano int64) {
		at := time.Unix(0, unixNano).In(time.FixedZone("", int(nanos%(14*3600))))
		if y := at.Year(); y < 0 || y >= 10000 { // slog writes an error there
			at = time.Unix(0, 0)
		}
		l := accessLine{Time: at, Level: slog.Level(status % 9), RequestID: role + subject, Method: subject, Path: path,
			Class: role, Status: status, Bytes: nanos, Duration: -nanos, UpstreamDuration: nanos / 3,
			Subject: subject, Roles: []string{role, subject}, Decision: role, Rule: path, UpstreamError: cause,
			ErrorID: subject, Error: role, Cause: cause}
		if got, want := encodedLine(t, lw, &out, l), slogLine(t, l); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}

// BenchmarkAccessLine writes one protected request's access line through
// slog's JSONHandler (the Logger path) and through latch's encoder
// (Options.AccessLog), to io.Discard.
func BenchmarkAccessLine(b *testing.B) {
	l := accessLine{Level: slog.LevelInfo, RequestID: "0a1b2c3d4e5f6a7b", Method: "GET", Path: "/api/admin/features/x",
		Class: "protected", Status: 200, Bytes: 1234, Duration: 812_345, UpstreamDuration: 500_000,
		Subject: "v@example.com", Roles: []string{"viewer"}, Decision: "allow", Rule: "role:viewer, /api/admin/*, GET"}
	b.Run("writer=slog", func(b *testing.B) {
		log := slog.New(slog.NewJSONHandler(io.Discard, nil))
		b.ReportAllocs()
		for b.Loop() {
			attrs := make(slogAttrs, 0, 16)
			l.walk(&attrs)
			log.LogAttrs(context.Background(), l.Level, accessMsg, attrs...)
		}
	})
	b.Run("writer=AccessLog", func(b *testing.B) {
		lw := newLineWriter(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			buf := lw.get()
			buf.line = l
			buf.line.Time = time.Now()
			lw.write(buf)
		}
	})
}
