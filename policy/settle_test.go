package policy

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// settleClock stands in for Engine.after: a settle wait ends only when the
// test calls end, so these tests never depend on how long anything takes.
type settleClock struct {
	mu      sync.Mutex
	waiting []chan time.Time // started and not ended
	n       int              // waits started
}

func (c *settleClock) after(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting = append(c.waiting, ch)
	c.n++
	return ch
}

// end ends every wait started so far: the settle time has passed.
func (c *settleClock) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.waiting {
		ch <- time.Time{}
	}
	c.waiting = nil
}

func (c *settleClock) started() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// openSettling opens the fixture with settle waits the test ends.
func openSettling(t *testing.T, f fixture) (*Engine, *settleClock) {
	t.Helper()
	o := f.options()
	o.Settle = time.Hour // never reached: clk decides
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	clk := &settleClock{}
	e.after = clk.after
	return e, clk
}

// filesDigest is the digest of what the files hold now, as a load reads it.
func filesDigest(t *testing.T, e *Engine) [32]byte {
	t.Helper()
	_, d, err := readSources(&e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pendingIs reports whether Watch holds d as the content letting settle.
func pendingIs(e *Engine, d [32]byte) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hasPending && e.pending == d
}

func write(t *testing.T, fh *os.File, s string) {
	t.Helper()
	if _, err := fh.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// denyEve is the last line of the file written in pieces: without it the
// half-written file lets eve, an auditor, in.
const denyEve = "p, eve@example.com, /api/admin/events, ^GET$, deny\n"

// checkFinished checks the finished file (shipped + auditorRule + denyEve)
// is in force, loaded by exactly one successful reload.
func checkFinished(t *testing.T, e *Engine) {
	t.Helper()
	if got := e.Generation(); got != 2 {
		t.Errorf("Generation: got %d, want 2 (one load, of the finished file)", got)
	}
	if auditorAllowed(t, e) {
		t.Errorf("eve: got allow, want deny from the finished file's last line")
	}
	if !allows(t, e, "ann@example.com", []string{"auditor"}, "GET", "/api/admin/events") {
		t.Errorf("ann (auditor): got deny, want allow from the finished file")
	}
	if ok, failed := counterValue(t, e.m.reloadOK), counterValue(t, e.m.reloadFailed); ok != 1 || failed != 0 {
		t.Errorf("reloads: got %v successful and %v failed, want 1 and 0", ok, failed)
	}
}

// TestWatchLoadsOnlySettledFile is issue 12's finding 9: a tool writes the
// policy file in place, in pieces, and pauses before its last line (a deny
// rule). The watcher must keep the old policy while the writer pauses
// (here: for as long as the settle wait does not end), and load the file
// once it has settled.
func TestWatchLoadsOnlySettledFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e, clk := openSettling(t, f)
	watching(t, e)

	fh, err := os.OpenFile(f.rules, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	write(t, fh, readShipped(t, "policy.csv"))
	write(t, fh, auditorRule)
	// The writer pauses here.
	partial := filesDigest(t, e)
	waitFor(t, "the watcher to read the half-written file", func() bool {
		return pendingIs(e, partial) || e.Generation() > 1
	})
	if got := e.Generation(); got != 1 {
		t.Fatalf("Generation: got %d while the writer paused, want 1: the half-written file was loaded", got)
	}
	if auditorAllowed(t, e) {
		t.Fatalf("eve: got allow while the writer paused, want deny from the policy in force")
	}

	write(t, fh, denyEve)
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	finished := filesDigest(t, e)
	waitFor(t, "the watcher to read the finished file", func() bool {
		return pendingIs(e, finished) || e.Generation() > 1
	})
	if got := e.Generation(); got != 1 {
		t.Fatalf("Generation: got %d, want 1: the finished file was loaded before it settled", got)
	}

	clk.end()
	waitFor(t, "the settled file to load", func() bool { return e.Generation() > 1 })
	checkFinished(t, e)
}

// TestWatchWaitsWhileFileKeepsChanging drives the watcher's check directly:
// content that changed again when its settle wait ends is not loaded, and
// waits again; content read the same at the end of its wait is; content
// that changes back to the policy in force is dropped.
func TestWatchWaitsWhileFileKeepsChanging(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e, clk := openSettling(t, f)
	content := readShipped(t, "policy.csv")
	for i := range 5 {
		content += fmt.Sprintf("p, role:auditor, /api/admin/events/%d, ^GET$, allow\n", i)
		writeFile(t, f.rules, content)
		// i > 0: the settle wait ended, but the file changed during it.
		if c := e.watchCheck(i > 0); c == nil {
			t.Fatalf("change %d: no settle wait started", i)
		}
		if got := e.Generation(); got != 1 {
			t.Fatalf("change %d: Generation %d, want 1: unsettled content was loaded", i, got)
		}
	}
	// A notification or poll finding the pending content starts no new wait.
	if c := e.watchCheck(false); c != nil {
		t.Errorf("a second read of the pending content started another wait")
	}
	if got := clk.started(); got != 5 {
		t.Errorf("settle waits started: got %d, want 5 (one per content)", got)
	}
	if c := e.watchCheck(true); c != nil {
		t.Errorf("settled content started another wait")
	}
	if got := e.Generation(); got != 2 {
		t.Fatalf("Generation: got %d, want 2: the settled content was not loaded", got)
	}
	if !allows(t, e, "eve@example.com", []string{"auditor"}, "GET", "/api/admin/events/4") {
		t.Errorf("the last content is not in force")
	}

	// Changed, then back to the policy in force before the wait ends.
	writeFile(t, f.rules, content+auditorRule)
	if c := e.watchCheck(false); c == nil {
		t.Fatal("no settle wait started")
	}
	writeFile(t, f.rules, content)
	if c := e.watchCheck(true); c != nil {
		t.Errorf("content back to the policy in force started a wait")
	}
	e.mu.Lock()
	stillPending := e.hasPending
	e.mu.Unlock()
	if stillPending {
		t.Errorf("content back to the policy in force is still pending")
	}
	if got := e.Generation(); got != 2 {
		t.Errorf("Generation: got %d, want 2: nothing new to load", got)
	}
	if failed := counterValue(t, e.m.reloadFailed); failed != 0 {
		t.Errorf("failed reloads: got %v, want 0", failed)
	}
}

// TestReloadWaitsForSettledFiles: Reload (SIGHUP) sent by a tool in the
// middle of its write does not load the half-written file; it loads the
// finished one once it has read the same twice, a settle time apart.
func TestReloadWaitsForSettledFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e, clk := openSettling(t, f)

	fh, err := os.OpenFile(f.rules, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	write(t, fh, readShipped(t, "policy.csv"))
	write(t, fh, auditorRule)
	done := make(chan error, 1)
	go func() { done <- e.Reload() }()
	waitFor(t, "Reload to wait for the files to settle", func() bool { return clk.started() == 1 || len(done) > 0 })
	if len(done) > 0 || e.Generation() != 1 || auditorAllowed(t, e) {
		t.Fatalf("Reload during the writer's pause returned or loaded (Generation %d): it must wait", e.Generation())
	}

	write(t, fh, denyEve)
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	clk.end() // the settle time passed, and the file changed meanwhile
	waitFor(t, "Reload to wait again", func() bool { return clk.started() == 2 || len(done) > 0 })
	if len(done) > 0 || e.Generation() != 1 {
		t.Fatalf("Reload loaded content it had read once (Generation %d): it must wait again", e.Generation())
	}
	clk.end()
	waitFor(t, "Reload to return", func() bool { return len(done) > 0 })
	if err := <-done; err != nil {
		t.Fatalf("Reload: %v", err)
	}
	checkFinished(t, e)

	// Files holding the policy in force: nothing to wait for.
	if err := e.Reload(); err != nil {
		t.Fatalf("Reload of unchanged files: %v", err)
	}
	if got := clk.started(); got != 2 {
		t.Errorf("settle waits: got %d, want 2: Reload of unchanged files waited", got)
	}
}

// TestReloadGivesUpWhileFilesKeepChanging: Reload waits a bounded number of
// settle times, then returns ErrUnsettled and loads nothing.
func TestReloadGivesUpWhileFilesKeepChanging(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	e, clk := openSettling(t, f)
	content := readShipped(t, "policy.csv")
	writeFile(t, f.rules, content+auditorRule)
	done := make(chan error, 1)
	go func() { done <- e.Reload() }()
	for i := range maxReloadWaits {
		waitFor(t, "Reload to wait", func() bool { return clk.started() == i+1 || len(done) > 0 })
		if len(done) > 0 {
			t.Fatalf("Reload returned after %d waits, want %d", i, maxReloadWaits)
		}
		content += fmt.Sprintf("p, role:auditor, /api/admin/events/%d, ^GET$, allow\n", i)
		writeFile(t, f.rules, content)
		clk.end()
	}
	waitFor(t, "Reload to give up", func() bool { return len(done) > 0 })
	if err := <-done; !errors.Is(err, ErrUnsettled) {
		t.Errorf("Reload: got %v, want ErrUnsettled", err)
	}
	if got := e.Generation(); got != 1 {
		t.Errorf("Generation: got %d, want 1: files still changing were loaded", got)
	}
	if ok, failed := counterValue(t, e.m.reloadOK), counterValue(t, e.m.reloadFailed); ok != 0 || failed != 0 {
		t.Errorf("reloads: got %v successful and %v failed, want none", ok, failed)
	}
}

// TestSettleOption: zero means 1s; negative loads a change when first read.
func TestSettleOption(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := f.options()
	o.Settle = 0
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if e.opts.Settle != time.Second {
		t.Errorf("Settle 0: got %v, want the 1s default", e.opts.Settle)
	}

	o.Settle = -1
	if e, err = Open(o); err != nil {
		t.Fatal(err)
	}
	clk := &settleClock{}
	e.after = clk.after
	writeFile(t, f.rules, readShipped(t, "policy.csv")+auditorRule)
	if c := e.watchCheck(false); c != nil || e.Generation() != 2 || !auditorAllowed(t, e) {
		t.Errorf("Settle -1: the watcher did not load the change when first read (Generation %d)", e.Generation())
	}
	writeFile(t, f.rules, readShipped(t, "policy.csv"))
	if err := e.Reload(); err != nil || e.Generation() != 3 || clk.started() != 0 {
		t.Errorf("Settle -1: Reload waited or did not load (err %v, Generation %d, waits %d)", err, e.Generation(), clk.started())
	}
}
