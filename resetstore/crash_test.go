package resetstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
)

// Environment of the helper process started by TestCrashDurability.
const (
	helperEnv     = "LATCH_RESETSTORE_HELPER"
	helperPathEnv = "LATCH_RESETSTORE_HELPER_PATH"
	crashIssuers  = 32 // concurrent goroutines in the child
	crashPerUser  = 8  // users each goroutine cycles through
	crashUsers    = crashIssuers * crashPerUser
)

func crashUser(i int) string { return fmt.Sprintf("crash%02d@example.com", i) }

// TestHelperProcess is not a test: TestCrashDurability runs the test binary
// with helperEnv set to make it the child that issues tokens under load.
// Each of its goroutines cycles through its own users, so at most one
// issuance per goroutine is in flight when it dies. It prints "begin USER" before each IssueResetToken and "tok USER TOKEN"
// after it returns, and never stops on its own before it is killed, except
// after a bounded number of rounds.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestCrashDurability")
	}
	err := runCrashHelper(os.Getenv(helperPathEnv), os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

func runCrashHelper(path string, out io.Writer) error {
	s, err := resetstore.Open(path, resetstore.Options{MinInterval: -1, Hash: cheapHash})
	if err != nil {
		return err
	}
	ctx := context.Background()
	for i := range crashUsers {
		if _, err := s.AddUser(ctx, crashUser(i), nil, ""); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		// One write per line, straight to the pipe: nothing is buffered in
		// this process when it is killed.
		if _, err := io.WriteString(out, fmt.Sprintf(format, args...)); err != nil {
			os.Exit(3) // parent gone
		}
	}
	say("ready\n")
	var wg sync.WaitGroup
	for g := range crashIssuers {
		wg.Go(func() {
			for n := range 20000 {
				email := crashUser(g*crashPerUser + n%crashPerUser)
				say("begin %s\n", email)
				tok, _, err := s.IssueResetToken(ctx, email)
				if err != nil {
					say("error %s %v\n", email, err)
					return
				}
				say("tok %s %s\n", email, tok)
			}
		})
	}
	wg.Wait()
	return s.Close()
}

// TestCrashDurability kills a process that is issuing tokens and checks
// that every token it reported as issued is in the file: a token is never
// acknowledged before its commit. For each user the last reported token must
// validate, unless another issuance for that user had begun and not been
// reported (it may have committed and superseded it); every earlier token
// must be invalid.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "latch.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperPathEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// A child that stops writing without exiting would block the reads
	// below for ever: after waitLimit it is killed, which ends them.
	var timedOut atomic.Bool
	watchdog := time.AfterFunc(waitLimit, func() {
		timedOut.Store(true)
		cmd.Process.Kill()
	})
	defer watchdog.Stop()

	type userLog struct {
		tokens  []string // reported, in order
		pending bool     // began an issuance not yet reported
	}
	logs := map[string]*userLog{}
	for i := range crashUsers {
		logs[crashUser(i)] = &userLog{}
	}
	const killAfter = 3000
	r := bufio.NewReader(stdout)
	issued, ready := 0, false
	for issued < killAfter {
		line, err := r.ReadString('\n')
		if err != nil {
			if timedOut.Load() {
				t.Fatalf("gave up after %v: the child reported %d of %d tokens; stderr: %s", waitLimit, issued, killAfter, stderr.String())
			}
			t.Fatalf("child stopped early after %d tokens: %v; stderr: %s", issued, err, stderr.String())
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && f[0] == "ready":
			ready = true
		case len(f) == 2 && f[0] == "begin":
			logs[f[1]].pending = true
		case len(f) == 3 && f[0] == "tok":
			l := logs[f[1]]
			l.tokens = append(l.tokens, f[2])
			l.pending = false
			issued++
		default:
			t.Fatalf("child said %q", line)
		}
	}
	if !ready {
		t.Fatal("child never said ready")
	}
	if !watchdog.Stop() {
		t.Fatalf("gave up after %v: the child was killed before it reported %d tokens", waitLimit, killAfter)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Read what the child wrote before it died: each complete line counts.
	// The reads end at EOF, once the killed child's end of the pipe closes.
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // a partial last line is ignored: its token was not reported
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "begin":
			logs[f[1]].pending = true
		case len(f) == 3 && f[0] == "tok":
			l := logs[f[1]]
			l.tokens = append(l.tokens, f[2])
			l.pending = false
			issued++
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL (it finished before the kill?)", err)
	}

	s, err := resetstore.Open(path, resetstore.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	checked, skipped := 0, 0
	for email, l := range logs {
		for i, tok := range l.tokens {
			got, _, err := s.ValidateResetToken(ctx, tok)
			last := i == len(l.tokens)-1
			switch {
			case last && l.pending:
				skipped++ // may have been superseded by the unreported issuance
			case last:
				checked++
				if err != nil || got != email {
					t.Errorf("%s: last reported token lost after crash: %q, %v", email, got, err)
				}
			case !errors.Is(err, latch.ErrInvalidToken):
				t.Errorf("%s: superseded token %d = %v, want ErrInvalidToken", email, i, err)
			}
		}
	}
	t.Logf("%d tokens reported before SIGKILL; %d users' last tokens checked, %d with an issuance in flight", issued, checked, skipped)
	if checked == 0 {
		t.Error("no token could be checked")
	}
}
