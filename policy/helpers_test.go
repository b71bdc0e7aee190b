package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shippedDir is where the files ops start from live.
const shippedDir = "../policies"

// fixture is a copy of the shipped files in a temporary directory.
type fixture struct {
	dir, model, rules, tests string
}

func readShipped(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(shippedDir, name))
	if err != nil {
		t.Fatalf("reading shipped %s: %v", name, err)
	}
	return string(b)
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{
		dir:   dir,
		model: filepath.Join(dir, "model.conf"),
		rules: filepath.Join(dir, "policy.csv"),
		tests: filepath.Join(dir, "policy.tests"),
	}
	writeFile(t, f.model, readShipped(t, "model.conf"))
	writeFile(t, f.rules, readShipped(t, "policy.csv"))
	writeFile(t, f.tests, readShipped(t, "policy.tests"))
	return f
}

// testSettle is the fixture's Options.Settle: short, so tests that edit
// and reload stay quick, while the watcher and Reload still go through
// settling with real timers. settle_test.go controls the wait instead.
const testSettle = 10 * time.Millisecond

func (f fixture) options() Options {
	return Options{ModelPath: f.model, RulesPath: f.rules, TestsPath: f.tests, PollInterval: -1, Settle: testSettle}
}

func (f fixture) open(t *testing.T) *Engine {
	t.Helper()
	e, err := Open(f.options())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return e
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lineCount is the number of the next line appended to content.
func nextLine(content string) int {
	return strings.Count(content, "\n") + 1
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline. Nothing asserts how fast a change is seen.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// allows reports whether e allows the request, failing the test on error.
func allows(t *testing.T, e *Engine, user string, roles []string, method, path string) bool {
	t.Helper()
	d, err := e.Decide(user, roles, method, path)
	if err != nil {
		t.Errorf("Decide(%q, %q, %s %s): %v", user, roles, method, path, err)
	}
	return d.Allow
}

const (
	resetPath = "/api/admin/user-admin/reset-password"
	// auditorRule is an edit that changes what is allowed, so a test can
	// tell which policy is in force.
	auditorRule = "p, role:auditor, /api/admin/events, ^GET$, allow\n"
)

func auditorAllowed(t *testing.T, e *Engine) bool {
	return allows(t, e, "eve@example.com", []string{"auditor"}, "GET", "/api/admin/events")
}
