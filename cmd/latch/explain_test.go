package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExplainAgreesOnReadings: `latch policy explain` takes the same steps
// as the proxy (method check, canonical path, readings, latch's privileged
// routes), so both agree on spellings with Unicode letters, case, and
// protect lists that leave latch's own routes out.
func TestExplainAgreesOnReadings(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream") }))
	t.Cleanup(up.Close)
	cfgText := upstreamConfig(t, up.URL, "/api/admin/features", "/keys/")
	in := startLatch(t, cfgText)
	cfg := filepath.Join(t.TempDir(), "latch.yaml")
	// explain reads the same file, with its own data dir.
	if err := os.WriteFile(cfg, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	who := map[string][2]string{
		"viewer-token": {"viewer@example.com", "viewer"},
		"editor-token": {"editor@example.com", "editor"},
		"admin-token":  {"admin@example.com", "admin"},
	}
	for _, tt := range []struct {
		token, method, path string
		allow               bool
	}{
		{"viewer-token", "GET", "/api/admin/features", true},
		{"viewer-token", "GET", "/API/ADMIN/FEATURES", false},      // every reading must be allowed; rules name lower case
		{"viewer-token", "GET", "/ap%C4%B0/admin/features", false}, // the policy names no such path
		{"editor-token", "DELETE", "/api/admin/features", false},
		{"editor-token", "POST", "/api/admin/features", true},
		{"editor-token", "GET", "/.latch/users", false},             // privileged, though not in protect
		{"editor-token", "GET", "/api/admin/user-%C4%B0dmin", true}, // reads as user-idmin: open
		{"admin-token", "GET", "/.latch/users", true},
		{"viewer-token", "GET", "/%E2%84%AAeys/x", false},
		{"viewer-token", "delete", "/api/admin/features", false},
	} {
		w := who[tt.token]
		var out syncBuffer
		if err := run(context.Background(), []string{"policy", "explain", "--config", cfg, "--sub", w[0], "--role", w[1], tt.method, tt.path},
			nil, nil, &out, &out); err != nil {
			t.Fatalf("explain: %v\n%s", err, out.String())
		}
		explained := strings.Contains(out.String(), "decision: allow")
		got := send(t, tt.method, in.proxy+tt.path, tt.token, nil, "")
		proxied := got < 400
		if explained != tt.allow || proxied != tt.allow {
			t.Errorf("%s %s as %s: want allow=%v; proxy %d, explain:\n%s", tt.method, tt.path, w[1], tt.allow, got, out.String())
		}
	}
}
