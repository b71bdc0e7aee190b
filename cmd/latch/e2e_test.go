package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/latch-dev/latch/config"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// instance is a latch started through run, as main starts it.
type instance struct {
	proxy, admin string // base URLs
	dir          string // temp dir holding config and data
	cancel       context.CancelFunc
	done         chan error
	logs         *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// repoFile is the absolute path of a file in the repository.
func repoFile(tb testing.TB, rel string) string {
	tb.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", rel))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// baseConfig is a config for upstream on loopback port 0 with the shipped
// policies; extra is appended verbatim.
func baseConfig(t *testing.T, upstream, extra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream: %s
data_dir: data
shutdown_grace: 10s
policy:
  model: %s
  rules: %s
log:
  level: debug
login:
  max_per_second: 1000 # tests log in often; the budget has its own tests
%s`, upstream, repoFile(t, "policies/model.conf"), repoFile(t, "policies/policy.csv"), extra)
}

// startLatch writes cfg to a temp dir and runs `latch serve` on it until
// the test ends.
func startLatch(t *testing.T, cfg string, environ ...string) *instance {
	t.Helper()
	return startLatchIn(t, t.TempDir(), cfg, environ...)
}

// startLatchIn writes cfg to dir/latch.yaml and runs `latch serve` on it
// until the test ends: for a test that prepares dir (users, keys) first.
func startLatchIn(t *testing.T, dir, cfg string, environ ...string) *instance {
	t.Helper()
	path := writeFile(t, dir, "latch.yaml", cfg)
	return startLatchArgs(t, dir, []string{"serve", "--config", path}, environ)
}

func startLatchArgs(t *testing.T, dir string, args, environ []string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	in := &instance{dir: dir, cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{}}
	go func() {
		err := run(ctx, args, environ, strings.NewReader(""), pw, in.logs)
		pw.CloseWithError(fmt.Errorf("latch exited: %v", err))
		in.done <- err
	}()
	sc := bufio.NewScanner(pr)
	deadline := pollDeadline(t)
	watchdog := time.AfterFunc(time.Until(deadline), func() {
		pw.CloseWithError(fmt.Errorf("latch had not said where it listens by %v", deadline.Format(time.TimeOnly)))
	})
	for sc.Scan() {
		line := sc.Text()
		switch port, u, _ := listeningURL(line); port {
		case "proxy":
			in.proxy = u
		case "admin":
			in.admin = u
		}
		if in.proxy != "" && in.admin != "" {
			break
		}
	}
	watchdog.Stop()
	if in.proxy == "" || in.admin == "" {
		cancel()
		t.Fatalf("latch did not start: %v\nlogs:\n%s", sc.Err(), in.logs)
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		in.stop(t)
		if t.Failed() {
			t.Logf("latch logs:\n%s", in.logs)
		}
	})
	return in
}

// stop cancels the instance (as SIGTERM does) and returns run's error.
func (in *instance) stop(t *testing.T) error {
	in.cancel()
	select {
	case err, ok := <-in.done:
		if !ok {
			return nil
		}
		close(in.done)
		return err
	case <-time.After(time.Until(pollDeadline(t))):
		t.Errorf("gave up waiting for latch to stop")
		return nil
	}
}

// recvWithin receives from ch, failing the test at pollDeadline.
func recvWithin[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(time.Until(pollDeadline(t))):
		t.Fatalf("gave up waiting for %s", what)
		panic("unreachable")
	}
}

// getJSON GETs u and decodes the JSON answer.
func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	return getJSONCtx(t.Context(), t, u)
}

func echoUpstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.EscapedPath(),
			"user": r.Header.Get("X-Latch-User"), "roles": r.Header.Get("X-Latch-Roles")})
	}))
	t.Cleanup(up.Close)
	return up
}

func TestServeForwardsAndShutsDown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	defer up.Close()
	in := startLatch(t, baseConfig(t, up.URL, ""))

	if code, body := getJSON(t, in.admin+"/healthz"); code != 200 || body["status"] != "ok" {
		t.Errorf("/healthz: got %d %v", code, body)
	}
	if code, body := getJSON(t, in.admin+"/readyz"); code != 200 {
		t.Errorf("/readyz: got %d %v", code, body)
	}
	resp, err := http.Get(in.proxy + "/a//b/../c")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok /a/c" {
		t.Errorf("forwarded: got %q, want %q", b, "ok /a/c")
	}
	if resp, err := http.Get(in.proxy + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "latch_http_requests_total") {
			t.Error("the proxy port served metrics")
		}
	}

	// An in-flight request finishes across shutdown.
	result := make(chan string, 1)
	go func() {
		resp, err := http.Get(in.proxy + "/slow")
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	recvWithin(t, "the slow request to start", started)
	in.cancel() // what SIGTERM does
	// Shutdown must wait for the in-flight request: run has not returned.
	select {
	case err := <-in.done:
		t.Fatalf("run returned (%v) while a request was in flight", err)
	default:
	}
	close(release)
	if got := recvWithin(t, "the in-flight request", result); got != "200 ok /slow" {
		t.Errorf("in-flight request: got %q, want %q", got, "200 ok /slow")
	}
	if err := recvWithin(t, "run to return", in.done); err != nil {
		t.Errorf("run: got %v, want nil after graceful shutdown", err)
	}
	close(in.done)
}

func TestCommandsUsage(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr bool
		out     string
	}{
		{[]string{"help"}, false, "latch serve --config FILE"},
		{[]string{"version"}, false, "latch "},
		{[]string{"serve", "--help"}, false, "-config"},
		{[]string{"check", "--help"}, false, "-config"},
		{[]string{"demo", "--help"}, false, "Usage: latch demo"},
		{[]string{"serve"}, true, "--config is required"},
		{[]string{"frobnicate"}, true, `unknown command "frobnicate"`},
		{nil, true, "Usage:"},
	}
	for _, tt := range tests {
		var out syncBuffer
		err := run(context.Background(), tt.args, nil, strings.NewReader(""), &out, &out)
		if (err != nil) != tt.wantErr {
			t.Errorf("latch %v: got error %v, want error %v", tt.args, err, tt.wantErr)
		}
		if !strings.Contains(out.String(), tt.out) {
			t.Errorf("latch %v: output %q lacks %q", tt.args, out.String(), tt.out)
		}
	}
}

func TestCheckCatchesConfigMistakes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	good := write("good.yaml", baseConfig(t, "http://127.0.0.1:1", ""))
	var out syncBuffer
	if err := run(context.Background(), []string{"check", "--config", good}, nil, nil, &out, &out); err != nil {
		t.Fatalf("check good config: %v\n%s", err, out.String())
	}
	bad := write("bad.yaml", "upstream: ftp://x\nlisten: nope\n")
	err := run(context.Background(), []string{"check", "--config", bad}, nil, nil, &out, &out)
	if err == nil {
		t.Fatal("check bad config: got nil error")
	}
	for _, want := range []string{`upstream: "ftp://x" is not an http(s) URL`, `listen: "nope" is not a host:port address`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("check: %q lacks %q", err, want)
		}
	}
}

func TestDockerfilePathsExist(t *testing.T) {
	b, err := os.ReadFile(repoFile(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var copies int
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "COPY" || strings.HasPrefix(f[1], "--from") || strings.HasPrefix(f[1], "--chown") {
			continue
		}
		for _, src := range f[1 : len(f)-1] {
			if src == "." {
				continue
			}
			copies++
			if _, err := os.Stat(repoFile(t, src)); err != nil {
				t.Errorf("Dockerfile copies %s, which does not exist: %v", src, err)
			}
		}
	}
	if copies == 0 {
		t.Error("found no COPY sources to check")
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "/etc/latch/policies/", "VOLUME /var/lib/latch", `ENTRYPOINT ["/usr/local/bin/latch", "serve"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The image's config loads with only the upstream given.
	if _, err := config.Load(repoFile(t, "config/latch.example.yaml"), []string{"LATCH_UPSTREAM=http://backend:4242"}); err != nil {
		t.Errorf("the image's config does not load: %v", err)
	}
}

func TestAdminPprofOptIn(t *testing.T) {
	up := echoUpstream(t)
	for _, on := range []bool{false, true} {
		in := startLatch(t, baseConfig(t, up.URL, "")+fmt.Sprintf("admin_pprof: %v\n", on))
		resp, err := http.Get(in.admin + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{false: 404, true: 200}[on]; resp.StatusCode != want {
			t.Errorf("admin_pprof %v: /debug/pprof/ answered %d, want %d", on, resp.StatusCode, want)
		}
		resp, err = http.Get(in.proxy + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "goroutine") {
			t.Errorf("admin_pprof %v: the proxy port served the profiler", on)
		}
	}
}

// TestAccessLineFormats: the access line reaches the log in every format
// and level the config allows: JSON at info or debug (latch's own encoder),
// text (slog), and at warn only for answers at level ERROR.
func TestAccessLineFormats(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	for _, c := range []struct {
		format, level, upstream string
		want, notWant           []string
	}{
		{"json", "info", up.URL, []string{`"msg":"request"`, `"path":"/fmt/ok"`, `"status":200`, `"level":"INFO"`}, nil},
		{"json", "debug", up.URL, []string{`"msg":"request"`, `"path":"/fmt/ok"`}, nil},
		{"text", "info", up.URL, []string{"msg=request", "path=/fmt/ok", "status=200"}, []string{`"msg":"request"`}},
		{"json", "warn", up.URL, nil, []string{`"msg":"request"`}},
		{"json", "warn", down.URL, []string{`"msg":"request"`, `"status":502`, `"level":"ERROR"`}, nil},
	} {
		t.Run(c.format+"-"+c.level, func(t *testing.T) {
			in := startLatch(t, baseConfig(t, c.upstream, ""), "LATCH_LOG_FORMAT="+c.format, "LATCH_LOG_LEVEL="+c.level)
			resp, err := http.Get(in.proxy + "/fmt/ok")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			in.cancel()
			recvWithin(t, "run to return", in.done)
			close(in.done)
			logs := in.logs.String()
			for _, w := range c.want {
				if !strings.Contains(logs, w) {
					t.Errorf("logs lack %s:\n%s", w, logs)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(logs, w) {
					t.Errorf("logs hold %s:\n%s", w, logs)
				}
			}
		})
	}
}
