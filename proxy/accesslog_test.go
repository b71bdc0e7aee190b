package proxy

import (
	"bytes"
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
			for _, k := range []string{"time", "duration", "upstream_duration", "error_id"} {
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
