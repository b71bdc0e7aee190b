package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latch-dev/latch/config"
)

// TestIdentityHeadersEndToEnd: with the real authenticator and a token from
// `latch token`, the upstream sees only the identity latch established,
// however the client tries to spoof or strip it.
func TestIdentityHeadersEndToEnd(t *testing.T) {
	in := startLatch(t, baseConfig(t, echoUpstream(t).URL, ""))
	var out, stderr syncBuffer
	if err := run(context.Background(), []string{"token", "--config", filepath.Join(in.dir, "latch.yaml"),
		"--sub", "ops@example.com", "--role", "viewer", "--allow-unknown"}, nil, nil, &out, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
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

// TestAuthOptionsCreatesNothing: authOptions only maps the config (latch
// check may use it); ensureSigningKey is the step that writes the default
// key, once, mode 0600.
func TestAuthOptionsCreatesNothing(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{DataDir: t.TempDir()}
	key := filepath.Join(cfg.DataDir, "signing.key")
	o, err := authOptions(cfg)
	if err != nil || o.SigningKeyFile != key {
		t.Fatalf("authOptions: SigningKeyFile %q, %v; want %q", o.SigningKeyFile, err, key)
	}
	if _, err := os.Stat(key); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after authOptions: stat %s: %v, want no file", key, err)
	}
	if err := ensureSigningKey(cfg); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after ensureSigningKey: %v, %v; want a 0600 file", fi, err)
	}
	first, _ := os.ReadFile(key)
	if err := ensureSigningKey(cfg); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(key); !bytes.Equal(first, again) {
		t.Error("a second ensureSigningKey replaced the key")
	}
	cfg.Auth.SigningKeyFile = filepath.Join(cfg.DataDir, "missing.pem")
	if _, err := authOptions(cfg); err == nil || !strings.Contains(err.Error(), "auth.signing_key_file") {
		t.Errorf("authOptions with a missing configured key: %v, want an auth.signing_key_file error", err)
	}
	if err := ensureSigningKey(cfg); err != nil {
		t.Errorf("ensureSigningKey with a configured key: %v, want nothing done", err)
	}
	if _, err := os.Stat(cfg.Auth.SigningKeyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ensureSigningKey created the configured key: %v", err)
	}
}
