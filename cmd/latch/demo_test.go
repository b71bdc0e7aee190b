package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDemoCurlLines runs `latch demo` and then the exact lines it prints,
// in a shell, checking each documented answer of the reset route.
func TestDemoCurlLines(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--dir", t.TempDir()},
			nil, strings.NewReader(""), pw, logs)
		pw.CloseWithError(fmt.Errorf("demo exited: %v", err))
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
		if t.Failed() {
			t.Logf("demo logs:\n%s", logs)
		}
	}()
	var script []string
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "export ") || strings.HasPrefix(line, "curl ") {
			script = append(script, line)
		}
		if strings.HasPrefix(line, "Press Ctrl-C") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if len(script) < 9 {
		t.Fatalf("demo printed %d export/curl lines, want at least 9: %v", len(script), sc.Err())
	}
	out, err := exec.Command("bash", "-c", "set -e\n"+strings.Join(script, "\n")).CombinedOutput()
	if err != nil {
		t.Fatalf("running the demo's lines: %v\n%s", err, out)
	}
	codes := regexp.MustCompile(` -> (\d{3})`).FindAllStringSubmatch(string(out), -1)
	var got []string
	for _, c := range codes {
		got = append(got, c[1])
	}
	if want := "200 400 401 403 404"; strings.Join(got, " ") != want {
		t.Errorf("reset route answers: got %v, want %s\n%s", got, want, out)
	}
	for _, want := range []string{`"resetPasswordUrl":"http://127.0.0.1:`, `"X-Latch-User":"viewer@example.com"`, `"token":"ey`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}
