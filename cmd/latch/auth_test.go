package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestIdentityHeadersEndToEnd: with the real authenticator and a token from
// `latch token`, the upstream sees only the identity latch established,
// however the client tries to spoof or strip it.
func TestIdentityHeadersEndToEnd(t *testing.T) {
	in := startLatch(t, baseConfig(t, echoUpstream(t).URL, ""))
	var out syncBuffer
	if err := run(context.Background(), []string{"token", "--config", filepath.Join(in.dir, "latch.yaml"),
		"--sub", "ops@example.com", "--role", "viewer"}, nil, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out.String())
	tests := []struct {
		name, path, auth  string
		wantUser, wantRol string
	}{
		{"protected", "/api/admin/features", "Bearer " + token, "ops@example.com", "viewer"},
		{"bare token form", "/api/admin/features", token, "ops@example.com", "viewer"},
		{"open with token", "/public", "Bearer " + token, "ops@example.com", "viewer"},
		{"open anonymous", "/public", "", "", ""},
		{"open invalid token", "/public", "Bearer " + token[:len(token)-4] + "AAAA", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", in.proxy+tt.path, nil)
			req.Header["X-Latch-User"] = []string{"root@example.com"}
			req.Header["x-latch-user"] = []string{"root@example.com"}
			req.Header["X_Latch_User"] = []string{"root@example.com"}
			req.Header["X-LATCH-ROLES"] = []string{"admin"}
			req.Header.Set("Connection", "X-Latch-User, X-Latch-Roles")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got map[string]string
			json.NewDecoder(resp.Body).Decode(&got)
			if resp.StatusCode != 200 || got["user"] != tt.wantUser || got["roles"] != tt.wantRol {
				t.Errorf("got %d user %q roles %q, want 200 %q %q", resp.StatusCode, got["user"], got["roles"], tt.wantUser, tt.wantRol)
			}
		})
	}
	// Two Authorization headers are refused, never guessed between.
	req, _ := http.NewRequest("GET", in.proxy+"/api/admin/features", nil)
	req.Header.Add("Authorization", "Bearer "+token)
	req.Header.Add("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("two Authorization headers: got %d, want 401", resp.StatusCode)
	}
}
