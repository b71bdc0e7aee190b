package proxy

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
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
	var logs logBuffer
	up := newRecording(t)
	front := newFront(t, up.srv.URL, func(o *Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
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
