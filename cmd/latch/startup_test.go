package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch/config"
)

// startupConfig is a config that starts as it is: loopback port 0, the
// shipped policies, data_dir "data" beside the file, log level info (the
// start-up tests want what a user sees by default). extra is appended.
func startupConfig(t *testing.T, extra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream: http://127.0.0.1:1
data_dir: data
policy:
  model: %s
  rules: %s
  tests: %s
log:
  level: info
%s`, repoFile(t, "policies/model.conf"), repoFile(t, "policies/policy.csv"), repoFile(t, "policies/policy.tests"), extra)
}

// writeFile writes body to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// listeningURL reads a line latch serve prints on stdout once it listens,
// in either log format: "proxy listening on URL" (text) or
// {"msg":"proxy listening","url":URL,…} (JSON); likewise for admin. port
// is "proxy" or "admin".
func listeningURL(line string) (port, url string, ok bool) {
	for _, p := range []string{"proxy", "admin"} {
		if u, ok := strings.CutPrefix(line, p+" listening on "); ok {
			return p, u, true
		}
	}
	var l struct {
		Msg string `json:"msg"`
		URL string `json:"url"`
	}
	if json.Unmarshal([]byte(line), &l) != nil || l.URL == "" {
		return "", "", false
	}
	switch l.Msg {
	case "proxy listening":
		return "proxy", l.URL, true
	case "admin listening":
		return "admin", l.URL, true
	}
	return "", "", false
}

// cancelOnWrite cancels once latch says it listens (listeningURL): latch
// started although the test expected it to fail.
type cancelOnWrite struct {
	mu      sync.Mutex
	b       strings.Builder
	cancel  context.CancelFunc
	started bool
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	for _, line := range strings.Split(w.b.String(), "\n") {
		if _, _, ok := listeningURL(line); ok && !w.started {
			w.started = true
			w.cancel()
		}
	}
	return len(p), nil
}

// runMain runs latch with args and environ as main does: run, then
// exitCode on run's error. It returns the exit status and what went to
// stderr. If latch starts serving, it is stopped and the test fails.
func runMain(t *testing.T, args []string, environ ...string) (code int, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	var errOut syncBuffer
	code = exitCode(run(ctx, args, environ, strings.NewReader(""), out, &errOut), &errOut)
	out.mu.Lock()
	started := out.started
	out.mu.Unlock()
	if started {
		t.Errorf("latch %v started serving; want it to refuse to start\nstderr:\n%s", args, errOut.String())
	}
	return code, errOut.String()
}

// serveOnce writes cfg to dir/latch.yaml and runs `latch serve` on it.
func serveOnce(t *testing.T, dir, cfg string, environ ...string) (code int, stderr string) {
	t.Helper()
	path := writeFile(t, dir, "latch.yaml", cfg)
	return runMain(t, []string{"serve", "--config", path}, environ...)
}

// wantOneLine checks a failed start: exit status 1, one line on stderr,
// no Go or YAML internals, and every one of words in it.
func wantOneLine(t *testing.T, code int, stderr string, words ...string) {
	t.Helper()
	if code != 1 {
		t.Errorf("exit status %d, want 1; stderr:\n%s", code, stderr)
	}
	if n := strings.Count(stderr, "\n"); n != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr has %d lines, want exactly one:\n%s", n, stderr)
	}
	if !strings.HasPrefix(stderr, "latch: ") {
		t.Errorf("stderr does not start with \"latch: \": %q", stderr)
	}
	for _, internal := range []string{"panic", "goroutine", ".go:", "nil pointer", "!!", "unmarshal",
		"config.Config", "*rsa.", "*ecdsa.", "x509:", " yaml:", "\"level\"", "\"msg\"", "%!"} {
		if strings.Contains(stderr, internal) {
			t.Errorf("stderr holds the internal %q: %q", internal, stderr)
		}
	}
	for _, w := range words {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q: %q", w, stderr)
		}
	}
}

// TestStartupSigningKey: every way latch's own key can be unusable stops
// the start with one line naming the file and what to do.
func TestStartupSigningKey(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the extra config
		words []string
	}{
		{"missing", func(t *testing.T, dir string) string {
			return "auth:\n  signing_key_file: keys/latch.pem\n"
		}, []string{"auth.signing_key_file", "keys/latch.pem", "does not exist", "openssl genpkey -algorithm ed25519"}},
		{"unreadable", func(t *testing.T, dir string) string {
			if err := os.MkdirAll(filepath.Join(dir, "keys", "latch.pem"), 0o700); err != nil {
				t.Fatal(err)
			}
			return "auth:\n  signing_key_file: keys/latch.pem\n"
		}, []string{"auth.signing_key_file", "keys/latch.pem", "cannot read", "is a directory"}},
		{"garbage PEM", func(t *testing.T, dir string) string {
			writeFile(t, dir, "keys/latch.pem", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
			return "auth:\n  signing_key_file: keys/latch.pem\n"
		}, []string{"auth.signing_key_file", "keys/latch.pem", "Ed25519", "openssl genpkey -algorithm ed25519"}},
		{"broken PEM", func(t *testing.T, dir string) string {
			writeFile(t, dir, "keys/latch.pem", "-----BEGIN PRIVATE KEY-----\n%%%\n")
			return "auth:\n  signing_key_file: keys/latch.pem\n"
		}, []string{"auth.signing_key_file", "keys/latch.pem", "Ed25519", "openssl genpkey -algorithm ed25519"}},
		{"not Ed25519", func(t *testing.T, dir string) string {
			writeFile(t, dir, "keys/latch.pem", ecPEM)
			return "auth:\n  signing_key_file: keys/latch.pem\n"
		}, []string{"auth.signing_key_file", "keys/latch.pem", "ECDSA", "Ed25519", "openssl genpkey -algorithm ed25519"}},
		{"short secret", func(t *testing.T, dir string) string {
			writeFile(t, dir, "keys/secret", "hunter2\n")
			return "auth:\n  signing_key_file: keys/secret\n"
		}, []string{"auth.signing_key_file", "keys/secret", "7 bytes", "at least 32", "openssl rand"}},
		{"garbage default key", func(t *testing.T, dir string) string {
			writeFile(t, dir, "data/signing.key", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
			return ""
		}, []string{"signing key", "data/signing.key", "Ed25519", "remove it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			code, stderr := serveOnce(t, dir, startupConfig(t, tt.setup(t, dir)))
			wantOneLine(t, code, stderr, tt.words...)
		})
	}
}

// TestStartupPolicy: a missing or broken policy file stops the start with
// one line naming the key, the file and, for content, the line.
func TestStartupPolicy(t *testing.T) {
	t.Parallel()
	model, rules := repoFile(t, "policies/model.conf"), repoFile(t, "policies/policy.csv")
	tests := []struct {
		name  string
		files map[string]string
		cfg   string
		words []string
	}{
		{"rules missing", nil, "policy:\n  model: " + model + "\n  rules: nope.csv\n",
			[]string{"policy.rules", "nope.csv", "does not exist", "create it, or"}},
		{"model missing", nil, "policy:\n  model: nope.conf\n  rules: " + rules + "\n",
			[]string{"policy.model", "nope.conf", "does not exist"}},
		{"rules broken", map[string]string{"bad.csv": "p, role:admin, /api/admin/*, GET, allow\nfrobnicate x\n"},
			"policy:\n  model: " + model + "\n  rules: bad.csv\n",
			[]string{"policy.rules", "bad.csv:2", "frobnicate", "latch check"}},
		{"model broken", map[string]string{"bad.conf": "[request_definition\n"},
			"policy:\n  model: bad.conf\n  rules: " + rules + "\n",
			[]string{"policy.model", "bad.conf:1", "latch check"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, body := range tt.files {
				writeFile(t, dir, name, body)
			}
			cfg := "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nupstream: http://127.0.0.1:1\ndata_dir: data\n" + tt.cfg
			code, stderr := serveOnce(t, dir, cfg)
			wantOneLine(t, code, stderr, tt.words...)
		})
	}
}

// TestStartupDataDir: a data dir that cannot be created or written stops
// the start with one line naming it and the cause.
func TestStartupDataDir(t *testing.T) {
	t.Parallel()
	t.Run("under a file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, dir, "plain", "a file, not a directory\n")
		code, stderr := serveOnce(t, dir, strings.Replace(startupConfig(t, ""), "data_dir: data", "data_dir: plain/data", 1))
		wantOneLine(t, code, stderr, "data_dir", "plain/data", "cannot be created", "not a directory", "LATCH_DATA_DIR")
	})
	t.Run("is a file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, dir, "data", "a file, not a directory\n")
		code, stderr := serveOnce(t, dir, startupConfig(t, ""))
		wantOneLine(t, code, stderr, "data_dir", "/data", "not a directory")
	})
	t.Run("not writable", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() == 0 {
			t.Skip("root writes to any directory; the cases above run as root too")
		}
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "data"), 0o500); err != nil {
			t.Fatal(err)
		}
		code, stderr := serveOnce(t, dir, startupConfig(t, ""))
		wantOneLine(t, code, stderr, "data_dir", "/data", "not writable", "permission denied")
	})
}

// TestStartupSecondProcess: a second latch on a data dir another one
// serves from stops with one line naming the holder's pid.
func TestStartupSecondProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "latch.yaml", startupConfig(t, "store:\n  lock_timeout: 100ms\n"))
	holder, _ := startChild(t, path)
	code, stderr := runMain(t, []string{"serve", "--config", path})
	wantOneLine(t, code, stderr, "data_dir", filepath.Join(dir, "data"), "in use",
		"pid "+strconv.Itoa(holder.Process.Pid), "stop it")
}

// TestStartupPortInUse: a taken proxy or admin port stops the start with
// one line naming the key and the address.
func TestStartupPortInUse(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"listen", "admin_listen"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			addr := ln.Addr().String()
			cfg := strings.Replace(startupConfig(t, ""), key+": 127.0.0.1:0", key+": "+addr, 1)
			code, stderr := serveOnce(t, t.TempDir(), cfg)
			wantOneLine(t, code, stderr, key+": "+addr, "already in use", "LATCH_"+strings.ToUpper(key))
		})
	}
}

// TestStartupEtcdUnreachable: store.backend etcd with nobody listening on
// the endpoint stops the start after the dial timeout, with one line.
func TestStartupEtcdUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	ln.Close() // nobody listens there now
	cfg := startupConfig(t, fmt.Sprintf("store:\n  backend: etcd\n  etcd:\n    endpoints: [%s]\n    dial_timeout: 300ms\n    request_timeout: 300ms\n", endpoint))
	code, stderr := serveOnce(t, t.TempDir(), cfg)
	wantOneLine(t, code, stderr, "store.etcd.endpoints", endpoint, "no etcd member answered", "300ms")
}

// TestStartupConfigErrorsOneLine: a config with several mistakes still
// prints one line.
func TestStartupConfigErrorsOneLine(t *testing.T) {
	t.Parallel()
	code, stderr := serveOnce(t, t.TempDir(), "upstream: ftp://x\nlisten: nope\nupstrem: x\n")
	wantOneLine(t, code, stderr, `unknown key "upstrem" (did you mean "upstream"?)`)
	code, stderr = serveOnce(t, t.TempDir(), "upstream: ftp://x\nlisten: nope\n")
	wantOneLine(t, code, stderr, `upstream: "ftp://x" is not an http(s) URL`, `listen: "nope" is not a host:port address`)
}

// TestStartupKubernetesServiceLinks: the variables a Kubernetes Service
// named latch injects do not stop latch; a typo of a real key still does.
func TestStartupKubernetesServiceLinks(t *testing.T) {
	t.Parallel()
	links := []string{
		"LATCH_SERVICE_HOST=10.96.0.12", "LATCH_SERVICE_PORT=8080", "LATCH_SERVICE_PORT_HTTP=8080",
		"LATCH_PORT=tcp://10.96.0.12:8080", "LATCH_PORT_8080_TCP=tcp://10.96.0.12:8080",
		"LATCH_PORT_8080_TCP_PROTO=tcp", "LATCH_PORT_8080_TCP_PORT=8080", "LATCH_PORT_8080_TCP_ADDR=10.96.0.12",
	}
	dir := t.TempDir()
	path := writeFile(t, dir, "latch.yaml", startupConfig(t, ""))
	in := startLatchArgs(t, dir, []string{"serve", "--config", path}, links)
	if code, _ := getJSON(t, in.admin+"/healthz"); code != 200 {
		t.Errorf("/healthz with service links set: %d", code)
	}
	code, stderr := runMain(t, []string{"serve", "--config", path}, append(links, "LATCH_UPSTREM=http://x")...)
	wantOneLine(t, code, stderr, "LATCH_UPSTREM", "no such configuration key", "LATCH_UPSTREAM")
}

// TestStartupOutputFormat: in JSON format (the default) every line latch
// prints, on stdout and stderr, is a JSON object, the listening lines
// included, and durations carry their unit; in text format stdout keeps
// its "listening on" lines and the logs are not JSON.
func TestStartupOutputFormat(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := writeFile(t, dir, "latch.yaml", startupConfig(t, "")+"  format: "+format+"\n")
			// The guard ends run, and with it the scan below, should latch
			// neither start nor fail.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			pr, pw := io.Pipe()
			var stdout, stderr syncBuffer
			done := make(chan error, 1)
			go func() {
				err := run(ctx, []string{"serve", "--config", path}, nil, strings.NewReader(""), io.MultiWriter(pw, &stdout), &stderr)
				pw.CloseWithError(fmt.Errorf("latch exited: %v", err))
				done <- err
			}()
			urls := map[string]string{}
			sc := bufio.NewScanner(pr)
			for len(urls) < 2 && sc.Scan() {
				if port, u, ok := listeningURL(sc.Text()); ok {
					urls[port] = u
				}
			}
			if len(urls) < 2 {
				t.Fatalf("latch did not say where it listens: %v\nstdout:\n%s\nstderr:\n%s", sc.Err(), stdout.String(), stderr.String())
			}
			go io.Copy(io.Discard, pr)
			if code, _ := getJSON(t, urls["admin"]+"/healthz"); code != 200 {
				t.Errorf("%s/healthz: got %d, want 200", urls["admin"], code)
			}
			if resp, err := http.Get(urls["proxy"] + "/x"); err != nil { // upstream down: 502, an ERROR line
				t.Errorf("GET %s/x: %v", urls["proxy"], err)
			} else {
				resp.Body.Close()
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("serve: %v", err)
			}

			out, logs := stdout.String(), stderr.String()
			if format == "text" {
				for _, port := range []string{"proxy", "admin"} {
					if want := port + " listening on " + urls[port] + "\n"; !strings.Contains(out, want) {
						t.Errorf("stdout lacks %q:\n%s", want, out)
					}
				}
				if strings.Contains(logs, `{"`) || !strings.Contains(logs, "grace_ms=") {
					t.Errorf("text logs hold JSON, or no grace_ms:\n%s", logs)
				}
				return
			}
			var msgs []string
			for name, text := range map[string]string{"stdout": out, "stderr": logs} {
				for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
					var obj map[string]any
					if err := json.Unmarshal([]byte(line), &obj); err != nil {
						t.Errorf("%s line is not a JSON object: %q", name, line)
						continue
					}
					msgs = append(msgs, fmt.Sprint(obj["msg"]))
					for k, v := range obj {
						if _, isNum := v.(float64); isNum && (k == "grace" || k == "duration" || k == "upstream_duration") {
							t.Errorf("%s line has the unlabelled duration %s: %q", name, k, line)
						}
					}
				}
			}
			for _, want := range []string{"proxy listening", "admin listening", "latch serving", "request", "shutting down", "stopped"} {
				if !slices.Contains(msgs, want) {
					t.Errorf("no line with msg %q among %q", want, msgs)
				}
			}
			if !strings.Contains(logs, `"grace_ms":`) || !strings.Contains(logs, `"duration_ms":`) {
				t.Errorf("stderr lacks grace_ms or duration_ms:\n%s", logs)
			}
		})
	}
}

// TestStartupStoreNilOnError: openEtcd's error comes with a nil backend
// (not a typed nil a caller's != nil check would miss), and openMigrator
// refuses an unknown backend instead of calling Close on nothing.
func TestStartupStoreNilOnError(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Store.Backend = "etcd" // no endpoints: etcdstore.Open fails
	b, err := openEtcd(cfg, nil, nil)
	if err == nil {
		b.Close()
		t.Fatal("openEtcd without endpoints: got nil error")
	}
	if b != nil {
		t.Errorf("openEtcd's error %q came with a non-nil backend %#v", err, b)
	}
	m, err := openMigrator(cfg, "sqlite", false)
	if err == nil || m != nil {
		t.Errorf("openMigrator(sqlite): got %v, %v; want nil and an error", m, err)
	}
}

// dirTree lists every path under dir.
func dirTree(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// checkOnce runs `latch check` on cfg written to dir, returning the exit
// status and stdout plus stderr, and fails if check created or removed
// anything in dir.
func checkOnce(t *testing.T, dir, cfg string) (int, string) {
	t.Helper()
	path := writeFile(t, dir, "latch.yaml", cfg)
	before := dirTree(t, dir)
	var out syncBuffer
	code := exitCode(run(context.Background(), []string{"check", "--config", path}, nil, strings.NewReader(""), &out, &out), &out)
	if after := dirTree(t, dir); !slices.Equal(before, after) {
		t.Errorf("check changed the files:\nbefore %v\nafter  %v", before, after)
	}
	return code, out.String()
}

// TestCheckFailsWhereServeWould: an unusable data dir or a signing key that
// would not load fails check too, and check creates nothing.
func TestCheckFailsWhereServeWould(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the config
		words []string
	}{
		{"data dir under a file", func(t *testing.T, dir string) string {
			writeFile(t, dir, "plain", "x\n")
			return strings.Replace(startupConfig(t, ""), "data_dir: data", "data_dir: plain/data", 1)
		}, []string{"data_dir", "plain/data", "not a directory"}},
		{"data dir is a file", func(t *testing.T, dir string) string {
			writeFile(t, dir, "data", "x\n")
			return startupConfig(t, "")
		}, []string{"data_dir", "not a directory"}},
		{"signing key missing", func(t *testing.T, dir string) string {
			return startupConfig(t, "auth:\n  signing_key_file: keys/latch.pem\n")
		}, []string{"auth.signing_key_file", "does not exist"}},
		{"signing key short", func(t *testing.T, dir string) string {
			writeFile(t, dir, "keys/secret", "hunter2\n")
			return startupConfig(t, "auth:\n  signing_key_file: keys/secret\n")
		}, []string{"auth.signing_key_file", "7 bytes", "at least 32"}},
		{"default key garbage", func(t *testing.T, dir string) string {
			writeFile(t, dir, "data/signing.key", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
			return startupConfig(t, "")
		}, []string{"signing key", "data/signing.key", "Ed25519"}},
		{"store file is a directory", func(t *testing.T, dir string) string {
			if err := os.MkdirAll(filepath.Join(dir, "data", "latch.db"), 0o700); err != nil {
				t.Fatal(err)
			}
			return startupConfig(t, "")
		}, []string{"data_dir", "latch.db", "not a regular file"}},
		{"handoff jwt with an HMAC key", func(t *testing.T, dir string) string {
			writeFile(t, dir, "keys/secret", strings.Repeat("s", 40)+"\n")
			return startupConfig(t, "auth:\n  signing_key_file: keys/secret\n  handoff: [\"/api/ jwt\"]\n")
		}, []string{"auth.handoff", "mode jwt needs an Ed25519 signing key"}},
		{"API tokens file missing", func(t *testing.T, dir string) string {
			return startupConfig(t, "auth:\n  api_tokens_file: nowhere/tokens\n")
		}, []string{"nowhere/tokens"}},
		{"public key file not a key", func(t *testing.T, dir string) string {
			writeFile(t, dir, "keys/idp.pem", "not a key\n")
			return startupConfig(t, "auth:\n  jwt:\n    public_key_files: [keys/idp.pem]\n")
		}, []string{"keys/idp.pem"}},
		{"etcd password file missing", func(t *testing.T, dir string) string {
			return startupConfig(t, "store:\n  backend: etcd\n  etcd:\n    endpoints: [http://127.0.0.1:1]\n    username: u\n    password_file: nowhere/pw\n")
		}, []string{"store.etcd.password_file", "nowhere/pw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := tt.setup(t, dir)
			code, out := checkOnce(t, dir, cfg)
			if code != 1 {
				t.Errorf("check: exit status %d, want 1\n%s", code, out)
			}
			for _, w := range tt.words {
				if !strings.Contains(out, w) {
					t.Errorf("check output lacks %q:\n%s", w, out)
				}
			}
			// serve refuses the same config.
			code, stderr := serveOnce(t, dir, cfg)
			wantOneLine(t, code, stderr, tt.words...)
		})
	}
	t.Run("good config creates nothing", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		code, out := checkOnce(t, dir, startupConfig(t, ""))
		if code != 0 || !strings.Contains(out, "auth: ok") {
			t.Errorf("check on a good config with no data dir yet: exit status %d, want 0 and \"auth: ok\"\n%s", code, out)
		}
	})
}

// TestDockerfileImageConfigStarts lays out the files the Dockerfile copies
// from the repository as the image has them, under a temp root, and runs
// `latch serve` on the image's config with only what the README's docker
// run gives (the upstream), the data dir moved under the root and the
// ports moved to loopback port 0.
func TestDockerfileImageConfigStarts(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(repoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	var cfgPath string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "COPY" || strings.HasPrefix(f[1], "--") {
			continue
		}
		srcs, dst := f[1:len(f)-1], f[len(f)-1]
		if slices.Contains(srcs, ".") {
			continue
		}
		for _, src := range srcs {
			to := filepath.Join(root, dst)
			if strings.HasSuffix(dst, "/") {
				to = filepath.Join(root, dst, filepath.Base(src))
			}
			body, err := os.ReadFile(repoFile(t, src))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, body, 0o644); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(to, ".yaml") {
				cfgPath = to
			}
		}
	}
	if cfgPath == "" {
		t.Fatal("the Dockerfile copies no config file")
	}
	if want := filepath.Join(root, "etc/latch/latch.yaml"); cfgPath != want {
		t.Errorf("the image's config is at %s, want /etc/latch/latch.yaml (the CMD names it)", strings.TrimPrefix(cfgPath, root))
	}
	data := filepath.Join(root, "var/lib/latch")
	if err := os.MkdirAll(data, 0o700); err != nil { // the image's volume, empty
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, []string{"LATCH_UPSTREAM=http://backend:4242"})
	if err != nil {
		t.Fatalf("the image's config does not load: %v", err)
	}
	for name, p := range map[string]string{"auth.signing_key_file": cfg.Auth.SigningKeyFile, "auth.api_tokens_file": cfg.Auth.APITokensFile} {
		if p != "" && !strings.HasPrefix(p, root) && !strings.HasPrefix(p, cfg.DataDir) {
			t.Errorf("the image's config names %s %s, a file the image does not hold", name, p)
		}
	}
	env := []string{"LATCH_UPSTREAM=http://backend:4242", "LATCH_DATA_DIR=" + data,
		"LATCH_LISTEN=127.0.0.1:0", "LATCH_ADMIN_LISTEN=127.0.0.1:0"}
	// The absolute paths outside the data dir must be under the layout.
	in := startLatchArgs(t, root, []string{"serve", "--config", cfgPath}, env)
	if code, _ := getJSON(t, in.admin+"/healthz"); code != 200 {
		t.Errorf("/healthz of the image's config: %d", code)
	}
	if err := in.stop(t); err != nil {
		t.Errorf("serve: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "signing.key")); err != nil {
		t.Errorf("the image's latch made no signing key in its data dir: %v", err)
	}
}

// TestDockerfileBaseImagesFullyQualified: podman refuses short names like
// golang:1.26 without a registries.conf alias; every FROM names its
// registry.
func TestDockerfileBaseImagesFullyQualified(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(repoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	froms := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.EqualFold(f[0], "FROM") {
			continue
		}
		froms++
		image := f[1]
		if strings.HasPrefix(image, "--") && len(f) > 2 {
			image = f[2]
		}
		host, _, ok := strings.Cut(image, "/")
		if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") {
			t.Errorf("FROM %s: not a fully qualified image name (registry/repository:tag)", image)
		}
		if !strings.Contains(image, ":") && !strings.Contains(image, "@") {
			t.Errorf("FROM %s: no tag or digest", image)
		}
	}
	if froms == 0 {
		t.Fatal("no FROM lines in the Dockerfile")
	}
}
