//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// latchBin is the latch binary TestMain built from this module.
var latchBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds latch once, from the module root, into a temp dir,
// for every test of the package.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "latch-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	latchBin = filepath.Join(dir, "latch")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", latchBin, "./cmd/latch")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/latch: %v\n%s", err, out)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: built latch in %s\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// person is a user latch knows: added with `latch users add` before latch
// serves. An empty password adds the user without one (a reset link sets it).
type person struct {
	email, password string
	roles           []string
}

// latchOpts is what a test's latch differs in.
type latchOpts struct {
	port     int      // the proxy port; 0 picks a free one
	upstream string   // the backend's base URL
	public   string   // public_url; empty: latch's own URL
	rules    string   // policy.csv, relative to the module root
	tests    string   // policy.tests, relative to the module root; may be empty
	protect  []string // policy.protect
	users    []person
	extra    string // appended to the config as written (top-level keys not set above, e.g. auth:)
}

// latch is `latch serve`, running.
type latch struct {
	url, admin string // base URLs of the proxy and admin ports
	config     string // the config file's path
	proc       *proc
}

// startLatch writes a config for opts (the shipped model, opts' rules,
// a fresh data dir, free loopback ports, public_url opts.public or its own URL), adds the
// users with the CLI, and runs `latch serve` until the test ends.
func startLatch(t *testing.T, opts latchOpts) *latch {
	t.Helper()
	root := repoRoot(t)
	dir := t.TempDir()
	port, adminPort := opts.port, freePort(t)
	if port == 0 {
		port = freePort(t)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:%d\n", port)
	fmt.Fprintf(&b, "admin_listen: 127.0.0.1:%d\n", adminPort)
	fmt.Fprintf(&b, "upstream: %s\n", opts.upstream)
	public := opts.public
	if public == "" {
		public = url
	}
	fmt.Fprintf(&b, "public_url: %s\n", public)
	fmt.Fprintf(&b, "data_dir: data\nshutdown_grace: 5s\n")
	fmt.Fprintf(&b, "policy:\n  model: %s\n  rules: %s\n", filepath.Join(root, "policies", "model.conf"), filepath.Join(root, opts.rules))
	if opts.tests != "" {
		fmt.Fprintf(&b, "  tests: %s\n", filepath.Join(root, opts.tests))
	}
	fmt.Fprintf(&b, "  protect: [%s]\n", strings.Join(opts.protect, ", "))
	// Tests sign in often and from one address; the limits have their own tests.
	b.WriteString("login:\n  max_per_second: 100\n  per_address_per_minute: 1000\n")
	b.WriteString("log:\n  level: debug\n")
	b.WriteString(opts.extra)
	config := filepath.Join(dir, "latch.yaml")
	if err := os.WriteFile(config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outDir(t), "latch.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, u := range opts.users {
		args := []string{"users", "add", "--config", config, "--email", u.email}
		for _, r := range u.roles {
			args = append(args, "--role", r)
		}
		if u.password != "" {
			args = append(args, "--password-stdin")
		}
		run(t, time.Minute, u.password+"\n", latchBin, args...)
	}

	cmd := exec.Command(latchBin, "serve", "--config", config)
	cmd.Dir = dir
	l := &latch{url: url, admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort), config: config}
	l.proc = startProc(t, "latch", 0, 15*time.Second, cmd)
	l.proc.waitLine(t, regexp.MustCompile(`proxy listening`), 30*time.Second)
	l.proc.waitHTTP(t, l.admin+"/readyz", 200, 30*time.Second)
	return l
}
