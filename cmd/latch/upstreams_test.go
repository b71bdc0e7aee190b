package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/latch-dev/latch/proxy/authn"
)

// Real lenient upstreams behind latch (issue 12): a Go mux that lower-cases
// paths with Unicode rules, Python's http.server (keep-alive, bodies left
// unread), and express 4 with method-override. Each test first shows the
// upstream's weakness without latch, so it can fail, then that latch closes it.

// apiTokens writes an API tokens file for the given token → "subject role"
// lines and returns its path.
func apiTokens(t *testing.T, tokens map[string]string) string {
	t.Helper()
	var b strings.Builder
	for tok, who := range tokens {
		fmt.Fprintf(&b, "%s %s\n", authn.HashAPIToken(tok), who)
	}
	p := filepath.Join(t.TempDir(), "tokens.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// upstreamConfig is a latch config in front of upstream with the shipped
// policy, the protected prefixes and API tokens for an admin, an editor and
// a viewer ("admin-token", "editor-token", "viewer-token").
func upstreamConfig(t *testing.T, upstream string, protect ...string) string {
	if len(protect) == 0 {
		protect = []string{"/api/admin/"}
	}
	tokens := apiTokens(t, map[string]string{
		"admin-token":  "admin@example.com admin",
		"editor-token": "editor@example.com editor",
		"viewer-token": "viewer@example.com viewer",
	})
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream: %s
data_dir: data
policy:
  model: %s
  rules: %s
  protect: [%s]
auth:
  api_tokens_file: %s
`, upstream, repoFile(t, "policies/model.conf"), repoFile(t, "policies/policy.csv"), strings.Join(protect, ", "), tokens)
}

// need returns the path of a program the test drives, or skips the test
// when it is missing (fails it under CI=1, where .ci/deps installed it).
func need(t *testing.T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required under CI (.ci/deps installs it): %v", prog, err)
		}
		t.Skipf("%s not installed (.ci/deps installs it)", prog)
	}
	return p
}

// startUpstreamProcess runs an upstream program that prints
// "listening <port>" and returns its base URL; it is killed when the test
// ends.
func startUpstreamProcess(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The scan ends when the process prints its line or exits (EOF).
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if port, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
			go io.Copy(io.Discard, out)
			return "http://127.0.0.1:" + strings.TrimSpace(port)
		}
	}
	t.Fatalf("%s did not start: %v\n%s", name, sc.Err(), stderr.String())
	return ""
}

type seenRequest struct{ Method, Path, User string }

// seen asks a recording upstream directly which requests it parsed.
func seen(t *testing.T, upstream string) []seenRequest {
	t.Helper()
	resp, err := http.Get(upstream + "/__seen")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []seenRequest
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("/__seen: %v", err)
	}
	return got
}

func saw(reqs []seenRequest, method, path string) bool {
	for _, r := range reqs {
		if r.Method == method && strings.HasPrefix(r.Path, path) {
			return true
		}
	}
	return false
}

// rawExchange sends raw on one connection and reads one response.
func rawExchange(t *testing.T, base, raw string) *http.Response {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func send(t *testing.T, method, u, token string, hdr http.Header, body string) int {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// A Go mux that lower-cases the decoded path with strings.ToLower, as some
// do to be case-insensitive: U+0130 'İ' becomes 'i' and U+212A KELVIN SIGN
// becomes 'k', so /ap%C4%B0/admin/secret runs its admin handler.
func TestLowerCasingUpstream(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	secrets := 0
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.ToLower(r.URL.Path) {
		case "/api/admin/secret", "/keys/master":
			mu.Lock()
			secrets++
			mu.Unlock()
			io.WriteString(w, "SECRET")
		default:
			io.WriteString(w, "open")
		}
	}))
	t.Cleanup(up.Close)
	paths := []string{"/ap%C4%B0/admin/secret", "/AP%C4%B0/ADMIN/SECRET", "/%E2%84%AAeys/master", "/api/admin/%C5%BFecret"}
	// Without latch, each spelling reaches the admin handler...
	for _, p := range paths {
		resp, err := http.Get(up.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if p != "/api/admin/%C5%BFecret" && string(b) != "SECRET" { // ToLower keeps ſ
			t.Fatalf("the upstream does not fold %s (answered %q); the test proves nothing", p, b)
		}
	}
	mu.Lock()
	secrets = 0
	mu.Unlock()
	// ...through latch, none does without a credential, and a viewer is
	// decided on the folded reading.
	in := startLatch(t, upstreamConfig(t, up.URL, "/api/admin/", "/keys/"))
	for _, p := range paths {
		if got := send(t, "GET", in.proxy+p, "", nil, ""); got != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s: %d, want 401", p, got)
		}
		if got := send(t, "GET", in.proxy+p, "viewer-token", nil, ""); got != http.StatusForbidden {
			t.Errorf("viewer GET %s: %d, want 403", p, got)
		}
	}
	if got := send(t, "GET", in.proxy+"/public", "", nil, ""); got != 200 {
		t.Errorf("GET /public: %d, want 200", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if secrets != 0 {
		t.Errorf("the admin handler ran %d times through latch", secrets)
	}
}

// Python's http.server with keep-alive reads a body it left unread as the
// next request: a GET /public carrying "GET /api/admin/secret" runs that
// request, with any header the attacker wrote.
func TestPythonHTTPServerBodySmuggling(t *testing.T) {
	t.Parallel()
	py := need(t, "python3")
	up := startUpstreamProcess(t, py, repoFile(t, "cmd/latch/testdata/upstreams/pyserver.py"))
	smuggled := "GET /api/admin/secret HTTP/1.1\r\nHost: x\r\nX-Latch-User: admin@example.com\r\nContent-Length: 0\r\n\r\n"
	// Without latch, the smuggled request runs.
	resp := rawExchange(t, up, fmt.Sprintf("GET /direct HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled))
	if resp.StatusCode != 200 {
		t.Fatalf("direct: %d", resp.StatusCode)
	}
	pollUntil(t, "the upstream parses the smuggled request when asked directly", func() bool {
		return saw(seen(t, up), "GET", "/api/admin/secret")
	})
	in := startLatch(t, upstreamConfig(t, up))
	before := len(seen(t, up))
	for _, m := range []string{"GET", "DELETE", "OPTIONS"} {
		if got := send(t, m, in.proxy+"/public", "", nil, smuggled); got != 200 {
			t.Errorf("%s /public with a body: %d, want 200", m, got)
		}
	}
	// CONNECT with a body is refused; so is a lower-case method.
	if r := rawExchange(t, in.proxy, fmt.Sprintf("CONNECT /public HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled)); r.StatusCode != 405 {
		t.Errorf("CONNECT: %d, want 405", r.StatusCode)
	}
	if r := rawExchange(t, in.proxy, "delete /api/admin/features HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer editor-token\r\n\r\n"); r.StatusCode != 400 {
		t.Errorf("lower-case delete: %d, want 400", r.StatusCode)
	}
	// Each forwarded request was parsed once, and nothing else.
	got := seen(t, up)[before:]
	if len(got) != 3 {
		t.Errorf("the upstream parsed %d requests through latch, want 3: %+v", len(got), got)
	}
	for _, r := range got {
		if r.Path != "/public" {
			t.Errorf("the upstream ran %s %s (user %q) through latch", r.Method, r.Path, r.User)
		}
	}
}

// express 4 with method-override runs a POST carrying
// X-HTTP-Method-Override: DELETE (or ?_method=DELETE) as a DELETE.
func TestExpressMethodOverride(t *testing.T) {
	t.Parallel()
	node := need(t, "node")
	dir := repoFile(t, "cmd/latch/testdata/upstreams/express")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "method-override")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("express's packages are missing under CI (.ci/deps runs npm ci): %v", err)
		}
		t.Skipf("express's packages are missing; run .ci/deps: %v", err)
	}
	up := startUpstreamProcess(t, node, filepath.Join(dir, "server.js"))
	in := startLatch(t, upstreamConfig(t, up))
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	overrides := []struct {
		name, query, body string
		hdr               http.Header
	}{
		{"X-HTTP-Method-Override", "", "{}", http.Header{"X-Http-Method-Override": {"DELETE"}}},
		{"X-HTTP-Method", "", "{}", http.Header{"X-Http-Method": {"DELETE"}}},
		{"X-Method-Override lower-case", "", "{}", http.Header{"X-Method-Override": {"delete"}}},
		{"_method", "?_method=DELETE", "{}", nil},
		{"_method lower-case", "?_method=delete", "{}", nil},
		{"_method in a form body", "", "name=x&_method=DELETE", form},
	}
	for _, o := range overrides {
		// The admin may delete: express runs the DELETE the override names,
		// which shows the override is live in this upstream.
		before := len(seen(t, up))
		if got := send(t, "POST", in.proxy+"/api/admin/features"+o.query, "admin-token", o.hdr, o.body); got != 200 {
			t.Errorf("%s, admin: %d, want 200", o.name, got)
		}
		if s := seen(t, up)[before:]; !saw(s, "DELETE", "/api/admin/features") {
			t.Fatalf("%s: express did not run a DELETE for the admin (%+v); the test proves nothing", o.name, s)
		}
		// The editor may POST but not DELETE.
		before = len(seen(t, up))
		if got := send(t, "POST", in.proxy+"/api/admin/features"+o.query, "editor-token", o.hdr, o.body); got != http.StatusForbidden {
			t.Errorf("%s, editor: %d, want 403", o.name, got)
		}
		if s := seen(t, up)[before:]; len(s) != 0 {
			t.Errorf("%s, editor: express ran %+v", o.name, s)
		}
	}
	before := len(seen(t, up))
	if got := send(t, "POST", in.proxy+"/api/admin/features", "editor-token", nil, "{}"); got != 200 {
		t.Errorf("editor POST: %d, want 200", got)
	}
	if s := seen(t, up)[before:]; !saw(s, "POST", "/api/admin/features") {
		t.Errorf("editor POST did not reach express: %+v", s)
	}
}
