package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/latch-dev/latch/resetstore"
)

// chromiumPath is where Debian's chromium package, which `make deps`
// installs, puts the browser.
const chromiumPath = "/usr/bin/chromium"

// findChromium returns the browser binary. Without one the test skips,
// except under CI, where it must run.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{chromiumPath, "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("no chromium at %s or on PATH, and CI must run the browser test: run `make deps`", chromiumPath)
	}
	t.Skipf("no chromium at %s or on PATH; `make deps` installs it", chromiumPath)
	return ""
}

// testContext is t.Context ending a little before the test's deadline, so
// that a hang fails with the browser's and latch's state in the log rather
// than as a panic of the test binary.
func testContext(t *testing.T) context.Context {
	t.Helper()
	dl, ok := t.Deadline()
	if !ok {
		dl = time.Now().Add(5 * time.Minute)
	}
	grace := min(15*time.Second, time.Until(dl)/4)
	ctx, cancel := context.WithDeadline(t.Context(), dl.Add(-grace))
	t.Cleanup(cancel)
	return ctx
}

// freeLoopbackAddr is a loopback address whose port was free a moment ago.
// latch must listen on a known port because the reset link it hands out is
// built from its listen address.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// seedUsers writes users into the store latch will open from dataDir.
func seedUsers(ctx context.Context, t *testing.T, dataDir string, add func(ctx context.Context, s *resetstore.Store) error) {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := resetstore.Open(filepath.Join(dataDir, "latch.db"), resetstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := add(ctx, st); err != nil {
		st.Close()
		t.Fatalf("seeding users: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// postJSON POSTs body as JSON and decodes the JSON answer.
func postJSON(ctx context.Context, t *testing.T, u, bearer string, body any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return doJSON(t, req)
}

func getJSONCtx(ctx context.Context, t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return doJSON(t, req)
}

func doJSON(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d with a body that is not JSON: %v", req.Method, req.URL.Path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// externalRef finds an attribute or CSS url() that points off the page's origin.
var externalRef = regexp.MustCompile(`(?i)(?:\b(?:src|href|action|formaction|srcset|poster|data)\s*=\s*["']?\s*//|url\(\s*["']?\s*//|@import)`)

// TestBrowserResetPassword drives the reset page in headless Chromium
// against a real latch: an admin asks for a link, the user opens it, fails
// the password rules, mistypes the confirmation, then sets a password that
// works for login, and the link is then spent.
func TestBrowserResetPassword(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	const (
		adminEmail    = "admin@example.com"
		adminPassword = "Admin-Passw0rd!"
		userEmail     = "user@example.com"
		newPassword   = "Tr0ub4dor&3-latch"
	)
	dir := t.TempDir()
	seedUsers(ctx, t, filepath.Join(dir, "data"), func(ctx context.Context, s *resetstore.Store) error {
		if _, err := s.AddUser(ctx, adminEmail, []string{"admin"}, adminPassword); err != nil {
			return err
		}
		_, err := s.AddUser(ctx, userEmail, nil, "")
		return err
	})
	up := echoUpstream(t)
	cfg := fmt.Sprintf(`listen: %s
admin_listen: 127.0.0.1:0
upstream: %s
data_dir: data
shutdown_grace: 10s
policy:
  model: %s
  rules: %s
log:
  level: debug
`, freeLoopbackAddr(t), up.URL, repoFile(t, "policies/model.conf"), repoFile(t, "policies/policy.csv"))
	in := startLatchIn(t, dir, cfg)

	// The admin logs in and asks for a link for the user.
	code, body := postJSON(ctx, t, in.proxy+"/.latch/login", "", map[string]string{"email": adminEmail, "password": adminPassword})
	jwt, _ := body["token"].(string)
	if code != http.StatusOK || jwt == "" {
		t.Fatalf("admin login: got %d %v, want 200 with a token", code, body)
	}
	code, body = postJSON(ctx, t, in.proxy+"/api/admin/user-admin/reset-password", jwt, map[string]string{"id": userEmail})
	link, _ := body["resetPasswordUrl"].(string)
	if code != http.StatusOK || link == "" {
		t.Fatalf("reset-password: got %d %v, want 200 with resetPasswordUrl", code, body)
	}
	pageURL := in.proxy + "/.latch/reset-password"
	if !strings.HasPrefix(link, pageURL+"?token=") {
		t.Fatalf("resetPasswordUrl: got %q, want it to start with %q", link, pageURL+"?token=")
	}
	lu, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	token := lu.Query().Get("token")

	checkPageResponse(ctx, t, link)

	// The browser.
	b := newBrowser(ctx, t)
	bctx, actx, console, do := b.bctx, b.actx, b.console, b.do
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("text of #%s: %v", id, err)
		}
		return s
	}
	// waitText waits for the text of #id to contain want.
	waitText := func(id, want string) {
		t.Helper()
		expr := fmt.Sprintf(`((document.getElementById(%s) || {}).textContent || "").includes(%s)`, jsString(id), jsString(want))
		if _, err := chromedp.Run(actx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(0))); err != nil {
			t.Fatalf("waiting for #%s to say %q: %v; it says %q", id, want, err, text(id))
		}
	}
	errorItems := func() []string {
		t.Helper()
		items, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#errors li"), li => li.textContent)`))
		if err != nil {
			t.Fatalf("reading #errors: %v", err)
		}
		return items
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(bctx, chromedp.Location())
		if err != nil {
			t.Fatalf("location: %v", err)
		}
		return loc
	}
	fill := func(pw, confirm string) {
		t.Helper()
		// Empty the fields first. chromedp's Clear sets the value attribute,
		// which no longer shows once something was typed, and SetValue
		// with "" sends no argument, so the field reads "undefined".
		do("filling the form",
			chromedp.Evaluate[chromedp.Void](`for (const id of ["password", "confirm"]) document.getElementById(id).value = ""`),
			chromedp.SendKeys(chromedp.ID("password"), pw),
			chromedp.SendKeys(chromedp.ID("confirm"), confirm),
			chromedp.Click(chromedp.ID("submit")),
		)
	}

	// Opening the link shows the form for the user, and the token leaves
	// the address bar.
	do("opening the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("reset-form")))
	if got := text("email"); got != userEmail {
		t.Errorf("#email: got %q, want %q", got, userEmail)
	}
	if got := location(); got != pageURL || strings.Contains(got, token) {
		t.Errorf("address after load: got %q, want %q without the token", got, pageURL)
	}

	// A weak password: the server's rule failures, every one of them.
	fill("short", "short")
	waitText("errors", "at least 10 characters")
	items := errorItems()
	for _, want := range []string{
		"The password must be at least 10 characters long.",
		"The password must contain at least one uppercase letter.",
		"The password must contain at least one number.",
		"The password must contain at least one special character.",
	} {
		if !slices.Contains(items, want) {
			t.Errorf("weak password: errors %q lack %q", items, want)
		}
	}
	if len(items) != 4 {
		t.Errorf("weak password: got %d errors %q, want 4", len(items), items)
	}

	// Two different passwords: the page says so and sends nothing, so the
	// token is still unused.
	fill(newPassword, newPassword+"x")
	waitText("errors", "do not match")
	if items := errorItems(); len(items) != 1 {
		t.Errorf("mismatch: got errors %q, want just the mismatch", items)
	}
	if code, body := getJSONCtx(ctx, t, in.proxy+"/.latch/reset/validate?token="+url.QueryEscape(token)); code != http.StatusOK {
		t.Fatalf("validate after the mismatch: got %d %v, want 200", code, body)
	}

	// A strong password: success, and the form is gone.
	fill(newPassword, newPassword)
	do("waiting for success", chromedp.WaitVisible(chromedp.ID("success")), chromedp.WaitNotVisible(chromedp.ID("reset-form")))
	if got, want := strings.TrimSpace(text("success")), "Your password has been changed. You can now log in."; got != want {
		t.Errorf("#success: got %q, want %q", got, want)
	}

	// The page's link leads to the login page, where the new password
	// signs the user in, back at "/" on the upstream.
	do("following the link to sign in", chromedp.Click(chromedp.ID("login-link")), chromedp.WaitVisible(chromedp.ID("login-form")))
	do("signing in with the new password",
		chromedp.SendKeys(chromedp.ID("email"), userEmail),
		chromedp.SendKeys(chromedp.ID("password"), newPassword),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.CSS("pre")))
	if got := b.bodyJSON(); got["user"] != userEmail || got["path"] != "/" {
		t.Errorf("after signing in, the upstream saw %v, want %s at /", got, userEmail)
	}

	// Outside the browser: the password works and the link is spent.
	if code, body := postJSON(ctx, t, in.proxy+"/.latch/login", "", map[string]string{"email": userEmail, "password": newPassword}); code != http.StatusOK || body["token"] == nil {
		t.Errorf("login with the new password: got %d %v, want 200 with a token", code, body)
	}
	if code, body := getJSONCtx(ctx, t, in.proxy+"/.latch/reset/validate?token="+url.QueryEscape(token)); code != http.StatusForbidden || body["name"] != "UsedTokenError" {
		t.Errorf("validate after use: got %d %v, want 403 UsedTokenError", code, body)
	}

	// Opening the link again says it was used.
	do("reopening the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("used")))
	if got := text("used"); !strings.Contains(got, "This link was already used") {
		t.Errorf("#used: got %q, want it to say the link was already used", got)
	}
	if got := location(); strings.Contains(got, token) {
		t.Errorf("address after reopening: got %q, want no token", got)
	}

	// A made-up token and a missing one are not valid.
	for _, u := range []string{pageURL + "?token=not-a-real-token", pageURL} {
		do("opening "+u, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.ID("invalid")))
		if got := text("invalid"); !strings.Contains(got, "This link is not valid or has expired") {
			t.Errorf("%s: #invalid says %q", u, got)
		}
	}

	// The page ran under its CSP without errors.
	for _, line := range console.lines() {
		if strings.HasPrefix(line, string(chromedp.ConsoleException)) || strings.Contains(line, "Content Security Policy") {
			t.Errorf("browser console: %s", line)
		}
	}
	// Neither the token nor the password reached latch's log.
	logs := in.logs.String()
	if strings.Contains(logs, token) {
		t.Error("latch's log holds the reset token")
	}
	if strings.Contains(logs, newPassword) {
		t.Error("latch's log holds the new password")
	}
}

// checkPageResponse fetches the page without a browser: its headers, and
// that it references nothing outside its origin.
func checkPageResponse(ctx context.Context, t *testing.T, link string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the page: got %d, want 200", resp.StatusCode)
	}
	for _, h := range []struct{ name, want string }{
		{"Cache-Control", "no-store"},
		{"Referrer-Policy", "no-referrer"},
		{"Content-Type", "text/html; charset=utf-8"},
	} {
		if got := resp.Header.Get(h.name); got != h.want {
			t.Errorf("page %s: got %q, want %q", h.name, got, h.want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("page Content-Security-Policy: got %q, want default-src 'none'", csp)
	}
	html := string(b)
	for _, s := range []string{"http://", "https://"} {
		if strings.Contains(html, s) {
			t.Errorf("the page contains %q; it must load nothing from elsewhere", s)
		}
	}
	if m := externalRef.FindString(html); m != "" {
		t.Errorf("the page references another origin: %q", m)
	}
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// consoleLog gathers the browser console until its context ends.
type consoleLog struct {
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

func collectConsole(ctx context.Context) *consoleLog {
	c := &consoleLog{done: make(chan struct{})}
	msgs := chromedp.Console(ctx)
	go func() {
		defer close(c.done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m.String())
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *consoleLog) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// wait returns when the collection ended, after its context was cancelled.
func (c *consoleLog) wait() { <-c.done }
