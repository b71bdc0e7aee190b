//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// outDir is the test's output folder, $LATCH_E2E_OUT/<test name>
// (default out/ beside these files, i.e. e2e/out/), emptied on first use.
func outDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("LATCH_E2E_OUT")
	if root == "" {
		root = "out"
	}
	dir, err := filepath.Abs(filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())))
	if err != nil {
		t.Fatal(err)
	}
	outDirsMu.Lock()
	defer outDirsMu.Unlock()
	if !outDirs[dir] {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		outDirs[dir] = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	outDirsMu sync.Mutex
	outDirs   = map[string]bool{}
)

// need returns the path of a program the test needs. Without it the test
// skips, except under CI, where it fails.
func need(t *testing.T, what string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing (%s) and CI must run this test: run `make deps`", what, strings.Join(candidates, ", "))
	}
	t.Skipf("%s is missing (%s); `make deps` installs it", what, strings.Join(candidates, ", "))
	return ""
}

// freePort is a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a process the test started, in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	sig  syscall.Signal // the signal that asks it to stop
	log  *lineLog
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// lineLog keeps a process's output and lets a test wait for a line.
type lineLog struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{}
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lineLog) snapshot() (string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String(), l.changed
}

// startProc starts cmd in its own process group, its output collected.
// When the test ends the whole group gets sig (SIGTERM when 0), then
// SIGKILL after grace, and, if the test failed, the output is saved as
// <name>.log in the test's output folder.
func startProc(t *testing.T, name string, sig syscall.Signal, grace time.Duration, cmd *exec.Cmd) *proc {
	t.Helper()
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	p := &proc{name: name, cmd: cmd, sig: sig, log: newLineLog(), done: make(chan struct{})}
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL // the test binary died: take the child along
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Logf("%s: pid %d: %s", name, cmd.Process.Pid, strings.Join(cmd.Args, " "))
	t.Cleanup(func() {
		p.stop(t, grace)
		if t.Failed() {
			path := filepath.Join(outDir(t), name+".log")
			if err := os.WriteFile(path, []byte(p.log.String()), 0o644); err != nil {
				t.Errorf("saving %s's log: %v", name, err)
			} else {
				t.Logf("%s's log: %s", name, path)
			}
		}
	})
	return p
}

// stop ends the process group: p.sig, then SIGKILL after grace.
func (p *proc) stop(t *testing.T, grace time.Duration) {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-pgid, p.sig)
		select {
		case <-p.done:
		case <-time.After(grace):
			t.Logf("%s: still running %s after %s; SIGKILL", p.name, grace, p.sig)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Children that outlived the leader.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// waitLine waits until the output matches re and returns the first match's
// submatches. It fails the test at the deadline or when the process exits.
func (p *proc) waitLine(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s, changed := p.log.snapshot()
		if m := re.FindStringSubmatch(s); m != nil {
			return m
		}
		select {
		case <-changed:
		case <-p.done:
			if s := p.log.String(); re.MatchString(s) {
				return re.FindStringSubmatch(s)
			}
			t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, re, tail(p.log.String(), 4000))
		case <-deadline.C:
			t.Fatalf("%s: no %q within %s:\n%s", p.name, re, timeout, tail(p.log.String(), 4000))
		}
	}
}

// httpClient is the tests' client: every request has a deadline of its
// own, so a hung server fails the test with the logs saved instead of
// running into go test's -timeout.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// waitHTTP polls url until it answers want, the process exits, or timeout.
func (p *proc) waitHTTP(t *testing.T, url string, want int, timeout time.Duration) {
	t.Helper()
	p.waitHTTPWith(t, httpClient, url, want, timeout)
}

// waitHTTPWith is waitHTTP through client (one trusting a test's TLS
// certificate, say).
func (p *proc) waitHTTPWith(t *testing.T, client *http.Client, url string, want int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before %s answered %d:\n%s", p.name, p.err, url, want, tail(p.log.String(), 4000))
		case <-ctx.Done():
			t.Fatalf("%s: %s did not answer %d within %s (last: %s):\n%s", p.name, url, want, timeout, last, tail(p.log.String(), 4000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// run runs a short command and returns its standard output, failing the
// test (with both outputs) on a non-zero exit or after timeout.
func run(t *testing.T, timeout time.Duration, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 2 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (after %s)", err, timeout)
		}
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// readLines returns the lines of a file, nil if it does not exist.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// repoRoot is the module root, the parent of this package's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
