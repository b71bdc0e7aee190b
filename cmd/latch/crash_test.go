package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latch-dev/latch/resetstore"
)

// TestHelperServe is not a test: TestCrashDurability runs the test binary
// again with LATCH_HELPER_CONFIG set, so this process serves as latch does
// until it is killed.
func TestHelperServe(t *testing.T) {
	cfg := os.Getenv("LATCH_HELPER_CONFIG")
	if cfg == "" {
		t.Skip("only run as a child of TestCrashDurability")
	}
	err := run(context.Background(), []string{"serve", "--config", cfg}, nil, nil, os.Stdout, os.Stderr)
	fmt.Fprintln(os.Stderr, "serve returned:", err)
	os.Exit(3)
}

// startChild runs latch in a child process and returns its proxy URL.
func startChild(t *testing.T, cfg string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$")
	cmd.Env = append(os.Environ(), "LATCH_HELPER_CONFIG="+cfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// A child that neither says it listens nor exits would block the scan
	// for ever: at pollDeadline it is killed, which ends the scan.
	deadline := pollDeadline(t)
	watchdog := time.AfterFunc(time.Until(deadline), func() { cmd.Process.Kill() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if port, u, _ := listeningURL(sc.Text()); port == "proxy" {
			if !watchdog.Stop() {
				break // killed just now
			}
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, u
		}
	}
	if !watchdog.Stop() {
		t.Fatalf("child latch had not started by %v; killed it\n%s", deadline.Format(time.TimeOnly), logs.String())
	}
	t.Fatalf("child latch did not start: %v\n%s", sc.Err(), logs.String())
	return nil, ""
}

// TestCrashDurability: a child latch issues reset links under load and is
// killed with SIGKILL; every link a client got a 200 for is still valid
// after a restart on the same data dir.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	const users = 1500
	st, err := resetstore.Open(filepath.Join(dir, "data", "latch.db"), resetstore.Options{})
	if err != nil {
		os.MkdirAll(filepath.Join(dir, "data"), 0o700)
		st, err = resetstore.Open(filepath.Join(dir, "data", "latch.db"), resetstore.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.AddUser(ctx, adminEmail, []string{"admin"}, adminPass); err != nil {
		t.Fatal(err)
	}
	for i := range users {
		if _, err := st.AddUser(ctx, fmt.Sprintf("user%d@example.com", i), nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	cfgPath := filepath.Join(dir, "latch.yaml")
	cfg := strings.Replace(baseConfig(t, "http://127.0.0.1:9", ""), "listen: 127.0.0.1:0\n", "listen: 127.0.0.1:0\nreset:\n  min_interval: 0s\n", 1)
	os.WriteFile(cfgPath, []byte(cfg), 0o600)

	child, proxyURL := startChild(t, cfgPath)
	in := &instance{proxy: proxyURL}
	admin := loginToken(t, in, adminEmail, adminPass)

	var mu sync.Mutex
	var links []string
	next := make(chan int)
	var wg sync.WaitGroup
	// A request the child never answers fails after the timeout, and the
	// link does not count, so no worker (and no send to next) blocks for
	// ever.
	client := &http.Client{Timeout: time.Minute}
	for range 16 {
		wg.Go(func() {
			for i := range next {
				req, _ := http.NewRequest("POST", proxyURL+resetRoute, strings.NewReader(fmt.Sprintf(`{"id":"user%d@example.com"}`, i)))
				req.Header.Set("Authorization", "Bearer "+admin)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					continue // the child died mid-request
				}
				var a answer
				a.status = resp.StatusCode
				buf := make([]byte, 512)
				n, _ := resp.Body.Read(buf)
				resp.Body.Close()
				a.raw = string(buf[:n])
				if a.status == 200 {
					i := strings.Index(a.raw, "token=")
					mu.Lock()
					links = append(links, strings.TrimRight(a.raw[i+6:], "\"}\n"))
					mu.Unlock()
				}
			}
		})
	}
	sent := 0
	for i := range users {
		mu.Lock()
		n := len(links)
		mu.Unlock()
		if n >= 300 && sent > n { // under load, with requests in flight
			break
		}
		next <- i
		sent++
		if sent == 400 {
			child.Process.Signal(syscall.SIGKILL)
		}
	}
	child.Process.Signal(syscall.SIGKILL)
	close(next)
	wg.Wait()
	child.Wait()
	if len(links) < 100 {
		t.Fatalf("only %d links issued before the kill; the test needs load", len(links))
	}

	_, proxyURL = startChild(t, cfgPath)
	lost := 0
	for _, tok := range links {
		resp, err := client.Get(proxyURL + "/.latch/reset/validate?token=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d links answered 200 before the crash are not valid after it", lost, len(links))
	}
	t.Logf("%d links issued before SIGKILL (%d requests sent); all valid after restart", len(links), sent)
}
