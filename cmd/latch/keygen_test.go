package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/proxy/authn"
)

// TestKeygen: each type writes a key with mode 0600 that latch serve starts
// with and that signs and verifies a token; an existing file is refused in
// one line naming it and left as it was.
func TestKeygen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ, alg string
		args     []string
	}{
		{"ed25519", "EdDSA", nil}, // the default type
		{"hs256", "HS256", []string{"--type", "hs256"}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			key := filepath.Join(dir, "signing.key")
			var out, errOut syncBuffer
			args := append([]string{"keygen", "--out", key}, tc.args...)
			if err := run(context.Background(), args, nil, strings.NewReader(""), &out, &errOut); err != nil {
				t.Fatalf("latch %v: %v\n%s", args, err, errOut.String())
			}
			if !strings.Contains(out.String(), key) {
				t.Errorf("output does not name the file: %q", out.String())
			}
			fi, err := os.Stat(key)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			data, err := os.ReadFile(key)
			if err != nil {
				t.Fatal(err)
			}
			switch tc.typ {
			case "ed25519":
				if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----\n") {
					t.Errorf("not a PKCS#8 PEM: %q", data)
				}
			case "hs256":
				if s := strings.TrimSpace(string(data)); len(s) < 32 || strings.Contains(s, "-----") {
					t.Errorf("not an HMAC secret of at least 32 bytes: %d bytes", len(s))
				}
			}

			// The loader serve uses signs and verifies with it.
			a, err := authn.New(authn.Options{SigningKeyFile: key})
			if err != nil {
				t.Fatalf("authn.New: %v", err)
			}
			tok, _, err := a.Mint("alice@example.com", []string{"admin"}, time.Minute)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			if hdr := headerAlg(t, tok); hdr != tc.alg {
				t.Errorf("token alg %q, want %q", hdr, tc.alg)
			}
			id, reason, err := a.Authenticate(context.Background(), http.Header{"Authorization": {"Bearer " + tok}})
			if err != nil || id.Subject != "alice@example.com" {
				t.Errorf("Authenticate: %+v %v %v", id, reason, err)
			}

			// latch serve starts with it as auth.signing_key_file and is ready.
			in := startLatch(t, startupConfig(t, "auth:\n  signing_key_file: "+key+"\n"))
			if code, body := getJSON(t, in.admin+"/readyz"); code != http.StatusOK {
				t.Errorf("/readyz %d %v", code, body)
			}
			if strings.Contains(in.logs.String(), "readable by group or others") {
				t.Errorf("latch warns about the key's mode:\n%s", in.logs)
			}

			// A second keygen to the same file is refused and changes nothing.
			code, stderr := runMain(t, []string{"keygen", "--out", key, "--type", tc.typ})
			wantOneLine(t, code, stderr, key, "already exists")
			if again, _ := os.ReadFile(key); string(again) != string(data) {
				t.Error("the existing key was changed")
			}
		})
	}
}

// headerAlg is the alg of a compact JWS's header.
func headerAlg(t *testing.T, tok string) string {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &hdr); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return hdr.Alg
}

// TestKeygenRefuses: a dangling symlink counts as an existing file, and
// the flags are checked.
func TestKeygenRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	code, stderr := runMain(t, []string{"keygen", "--out", link})
	wantOneLine(t, code, stderr, link, "already exists")
	if _, err := os.Stat(filepath.Join(dir, "nowhere")); err == nil {
		t.Error("keygen wrote through the symlink")
	}
	if code, _ := runMain(t, []string{"keygen", "--type", "rsa", "--out", filepath.Join(dir, "k")}); code != 2 {
		t.Errorf("--type rsa: exit %d, want 2", code)
	}
	if code, _ := runMain(t, []string{"keygen"}); code != 2 {
		t.Errorf("no --out: exit %d, want 2", code)
	}
}

// TestKeygenConfig: with --config and no --out the key goes where the
// config says: <data_dir>/signing.key when auth.signing_key_file is empty,
// which serve then uses as it is.
func TestKeygenConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "latch.yaml", startupConfig(t, ""))
	var out, errOut syncBuffer
	if err := run(context.Background(), []string{"keygen", "--config", cfg}, nil, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("keygen --config: %v\n%s", err, errOut.String())
	}
	key := filepath.Join(dir, "data", "signing.key")
	data, err := os.ReadFile(key)
	if err != nil {
		t.Fatalf("keygen --config did not write %s: %v", key, err)
	}
	in := startLatchArgs(t, dir, []string{"serve", "--config", cfg}, nil)
	if code, body := getJSON(t, in.admin+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d %v", code, body)
	}
	if now, _ := os.ReadFile(key); string(now) != string(data) {
		t.Error("serve replaced the key keygen wrote")
	}
}
