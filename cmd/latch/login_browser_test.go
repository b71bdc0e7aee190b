package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/latch-dev/latch/resetstore"
)

// browser is a headless Chromium for one test: bctx drives it, and steps
// run under actx, which ends a little before the test's deadline so a hung
// step fails with the page's state in the log.
type browser struct {
	t          *testing.T
	bctx, actx context.Context
	console    *consoleLog
	out        *syncBuffer
}

// newBrowser starts Debian's chromium with the flags this machine needs
// (no background networking: its connections are refused here).
func newBrowser(ctx context.Context, t *testing.T) *browser {
	t.Helper()
	bin := findChromium(t)
	out := &syncBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("starting %s: %v\n%s", bin, err, out.String())
	}
	b := &browser{t: t, bctx: bctx, out: out, console: collectConsole(bctx)}
	dl, _ := ctx.Deadline()
	actx, cancelSteps := context.WithDeadline(bctx, dl.Add(-min(5*time.Second, time.Until(dl)/4)))
	b.actx = actx
	// Cleanups run last first: the browser stops before t.TempDir's
	// cleanup removes its profile.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser console:\n%s\nbrowser output:\n%s", strings.Join(b.console.lines(), "\n"), out.String())
		}
		cancelSteps()
		cancelBrowser()
		b.console.wait()
		cancelAlloc()
	})
	return b
}

// do runs steps, failing the test with what on error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.actx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.bctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("location: %v", err)
	}
	return loc
}

// bodyJSON decodes the page's text as JSON (the echo upstream's answer,
// or latch's /.latch/me).
func (b *browser) bodyJSON() map[string]any {
	b.t.Helper()
	s, err := chromedp.Run(b.bctx, chromedp.Evaluate[string](`document.querySelector("pre").textContent`))
	if err != nil {
		b.t.Fatalf("page text: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		b.t.Fatalf("page text %q is not JSON: %v", s, err)
	}
	return m
}

// cookies are the browser's cookies for u.
func (b *browser) cookies(u string) []*network.Cookie {
	b.t.Helper()
	res, err := chromedp.Call(b.bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
	if err != nil {
		b.t.Fatalf("cookies: %v", err)
	}
	return res.Cookies
}

// screenshot saves the page under the test's artifact directory when the
// run asks for artifacts (go test -artifacts), else in a temp dir that
// goes away.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.bctx, chromedp.FullScreenshot(90))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.t.ArtifactDir(), name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// TestBrowserLogin signs in on latch's login page in headless Chromium,
// with the session cookie and without JavaScript on latch's side: a
// protected page sends the browser to the login page, a wrong password
// keeps it there, the right one brings it back to the page it asked for,
// the upstream sees the user and never the cookie, and logout ends it.
func TestBrowserLogin(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	const (
		email    = "ed@example.com"
		password = "Editor-Passw0rd!"
	)
	dir := t.TempDir()
	seedUsers(ctx, t, filepath.Join(dir, "data"), func(ctx context.Context, s *resetstore.Store) error {
		_, err := s.AddUser(ctx, email, []string{"editor"}, password)
		return err
	})
	var mu sync.Mutex
	var cookiesSeen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cookiesSeen = append(cookiesSeen, strings.Join(r.Header.Values("Cookie"), " | "))
		mu.Unlock()
		// The upstream's own cookie, which latch must pass both ways.
		http.SetCookie(w, &http.Cookie{Name: "app", Value: "kept", Path: "/"})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "user": r.Header.Get("X-Latch-User"),
			"roles": r.Header.Get("X-Latch-Roles"), "authorization": r.Header.Get("Authorization")})
	}))
	t.Cleanup(up.Close)
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream: %s
data_dir: data
shutdown_grace: 10s
policy:
  model: %s
  rules: %s
`, up.URL, repoFile(t, "policies/model.conf"), repoFile(t, "policies/policy.csv"))
	in := startLatchIn(t, dir, cfg)
	b := newBrowser(ctx, t)

	// A protected page, anonymous: the login page, which will come back.
	page := in.proxy + "/api/admin/features/my-flag?tab=2"
	b.do("opening a protected page", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("login-form")))
	b.screenshot("1-login-page")
	if got, want := b.location(), in.proxy+"/.latch/login?rd="+"%2Fapi%2Fadmin%2Ffeatures%2Fmy-flag%3Ftab%3D2"; got != want {
		t.Errorf("redirected to %q, want %q", got, want)
	}

	// A wrong password: the page again, saying so, with no session.
	b.do("signing in with a wrong password",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), "wrong-Passw0rd!"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("error")))
	b.screenshot("2-wrong-password")
	msg, err := chromedp.Run(b.bctx, chromedp.TextContent(chromedp.ID("error")))
	if err != nil || msg != "Wrong password, try again." {
		t.Errorf("#error: got %q (%v)", msg, err)
	}
	for _, c := range b.cookies(in.proxy) {
		if strings.Contains(c.Name, "latch_session") {
			t.Errorf("a session cookie after a wrong password: %+v", c)
		}
	}

	// The right password: back on the page asked for, as the user.
	b.do("signing in",
		chromedp.SetValue(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.CSS("pre")))
	b.screenshot("3-signed-in")
	if got := b.location(); got != page {
		t.Errorf("after sign-in at %q, want %q", got, page)
	}
	got := b.bodyJSON()
	if got["user"] != email || got["roles"] != "editor" || got["path"] != "/api/admin/features/my-flag" || got["authorization"] != "" {
		t.Errorf("the upstream saw %v, want user %s, roles editor, no Authorization", got, email)
	}
	var session *network.Cookie
	for _, c := range b.cookies(in.proxy) {
		if c.Name == "latch_session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteLax || session.Path != "/" || strings.Count(session.Value, ".") == 2 {
		t.Fatalf("session cookie %+v, want HttpOnly, SameSite=Lax, Path=/, not a JWT", session)
	}

	// Who am I, from latch itself.
	b.do("opening /.latch/me", chromedp.Navigate(in.proxy+"/.latch/me"), chromedp.WaitVisible(chromedp.CSS("pre")))
	if me := b.bodyJSON(); me["email"] != email || me["kind"] != "session" {
		t.Errorf("/.latch/me: %v", me)
	}

	// Logout, from a page of the site (a same-origin form post), then the
	// protected page asks for the login again.
	b.do("opening a page", chromedp.Navigate(in.proxy+"/open"), chromedp.WaitVisible(chromedp.CSS("pre")))
	b.do("logging out", chromedp.Evaluate[chromedp.Void](`(() => {
		const f = document.createElement("form");
		f.method = "post"; f.action = "/.latch/logout";
		document.body.appendChild(f); f.submit();
	})()`), chromedp.WaitVisible(chromedp.ID("login-form")))
	b.screenshot("4-logged-out")
	for _, c := range b.cookies(in.proxy) {
		if c.Name == "latch_session" {
			t.Errorf("session cookie still set after logout: %+v", c)
		}
	}
	b.do("going back to the protected page", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("login-form")))
	// The old cookie value is dead in the store, not just in the browser.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, page, nil)
	req.Header.Set("Cookie", "latch_session="+session.Value)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the logged-out cookie: got %d, want 401", resp.StatusCode)
	}

	// The upstream never saw latch's cookie, and always its own.
	mu.Lock()
	defer mu.Unlock()
	if len(cookiesSeen) < 2 {
		t.Fatalf("the upstream saw %d requests, want at least 2", len(cookiesSeen))
	}
	for i, c := range cookiesSeen {
		if strings.Contains(c, "latch_session") {
			t.Errorf("request %d reached the upstream with Cookie %q", i, c)
		}
		if i > 0 && !strings.Contains(c, "app=kept") {
			t.Errorf("request %d reached the upstream without its own cookie: %q", i, c)
		}
	}
	// The page ran under its CSP without errors.
	for _, line := range b.console.lines() {
		if strings.Contains(line, "Content Security Policy") {
			t.Errorf("browser console: %s", line)
		}
	}
}
