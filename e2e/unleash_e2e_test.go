//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The people of the Unleash tests, in latch's store.
var (
	admin  = person{"alice@example.com", "Admin-Passw0rd!", []string{"admin"}}
	editor = person{"eddie@example.com", "Editor-Passw0rd!", []string{"editor"}}
	viewer = person{"vera@example.com", "Viewer-Passw0rd!", []string{"viewer"}}
	// newbie has no password yet: an admin sends a reset link.
	newbie = person{"nina@example.com", "", []string{"viewer"}}
	// rotator signs in, then changes the password through a reset link.
	rotator = person{"rob@example.com", "Rotator-Passw0rd!", []string{"editor"}}
)

// TestUnleash runs Unleash OSS (examples/unleash/server.js, on PostgreSQL)
// behind latch with examples/unleash's policy, and drives its web UI in
// headless Chromium: everyone signs in on latch's login page and lands on
// Unleash's dashboard as themselves, with the Unleash root role of their
// latch role.
func TestUnleash(t *testing.T) {
	dbURL := startPostgres(t)
	// Unleash's public URL is latch's: reserve latch's port first.
	latchPort := freePort(t)
	un := startUnleash(t, dbURL, fmt.Sprintf("http://127.0.0.1:%d", latchPort))
	l := startLatch(t, latchOpts{
		port:     latchPort,
		upstream: un.url,
		rules:    "examples/unleash/policy.csv",
		tests:    "examples/unleash/policy.tests",
		protect:  []string{"/api/admin/"},
		users:    []person{admin, editor, viewer, newbie, rotator},
	})

	// Everyone signs in on latch's login page, in a browser of their own,
	// and lands on Unleash's dashboard as themselves, with the Unleash
	// root role of their latch role.
	browsers := map[string]*browser{}
	for _, p := range []person{admin, editor, viewer, rotator} {
		b := newBrowser(t, strings.Split(p.email, "@")[0])
		signIn(t, b, l, p)
		browsers[p.email] = b
		me := b.whoami(t)
		if me.Status != 200 || me.email() != p.email {
			t.Fatalf("%s: GET /api/admin/user in the page: %d %s", p.email, me.Status, me.Body)
		}
		wantPerm := map[string]string{"admin": "ADMIN", "editor": "CREATE_FEATURE"}[p.roles[0]]
		if wantPerm != "" && !strings.Contains(me.Body, `"permission":"`+wantPerm+`"`) {
			t.Errorf("%s: Unleash's permissions lack %s: %s", p.email, wantPerm, me.Body)
		}
		if p.roles[0] != "admin" && strings.Contains(me.Body, `"permission":"ADMIN"`) {
			t.Errorf("%s: Unleash made them ADMIN: %s", p.email, me.Body)
		}
	}
	// signedIn is p's browser, reporting to the subtest t.
	signedIn := func(t *testing.T, p person) *browser {
		b := browsers[p.email]
		if b == nil {
			t.Fatalf("%s has no signed-in browser", p.email)
		}
		b.t = t
		return b
	}

	flag := fmt.Sprintf("e2e-flag-%d", time.Now().UnixNano()%1e6)
	t.Run("EditorCreatesAndToggles", func(t *testing.T) {
		b := signedIn(t, editor)
		b.do("project page", chromedp.Navigate(l.url+"/projects/default"))
		b.dismissSplash()
		b.clickUntil("New feature flag", `[...document.querySelectorAll("label")].some(l => l.textContent.trim().toLowerCase() === "feature flag name")`, 45*time.Second)
		b.typeInto("feature flag name", flag, 15*time.Second)
		b.click("Create feature flag", 15*time.Second)
		b.waitFor("the flag's page", fmt.Sprintf(`location.pathname === %s`, jsString("/projects/default/features/"+flag)), 30*time.Second)
		b.click("development", 30*time.Second)
		b.waitFor("development on", fmt.Sprintf(`fetch(%s).then(r => r.json()).then(f => f.environments.some(e => e.name === "development" && e.enabled))`,
			jsString("/api/admin/projects/default/features/"+flag)), 30*time.Second)
	})

	t.Run("ViewerCannotChange", func(t *testing.T) {
		b := signedIn(t, viewer)
		b.do("the flag's page", chromedp.Navigate(l.url+"/projects/default/features/"+flag))
		b.dismissSplash()
		b.waitText("the flag's name", flag, 30*time.Second)
		// The page shows the switch, but the viewer's change is refused
		// by latch before Unleash sees it.
		refused := []struct {
			method, path string
			body         any
		}{
			{"POST", "/api/admin/projects/default/features/" + flag + "/environments/development/off", nil},
			{"POST", "/api/admin/projects/default/features", map[string]any{"name": flag + "-by-viewer", "type": "release"}},
			{"PATCH", "/api/admin/projects/default/features/" + flag, []map[string]any{{"op": "replace", "path": "/description", "value": "viewer was here"}}},
		}
		for _, c := range refused {
			r := b.pageFetch(c.method, c.path, c.body)
			if r.Status != http.StatusForbidden || !strings.Contains(r.Body, `"NoAccessError"`) {
				t.Errorf("viewer %s %s: got %d %s, want 403 NoAccessError", c.method, c.path, r.Status, r.Body)
			}
		}
		read := "/api/admin/projects/default/features/" + flag
		if f := b.pageFetch("GET", read, nil); f.Status != 200 || !strings.Contains(f.Body, `"name":"`+flag+`"`) {
			t.Errorf("viewer reads the flag: got %d %s, want 200", f.Status, tail(f.Body, 500))
		}
		// Unleash never saw the writes: its hook logged the viewer's read
		// that came after them, and none of them.
		lines := waitRouteLine(t, un.routeLog, "GET "+read+" viewer", 10*time.Second)
		for _, c := range refused {
			if line := c.method + " " + c.path + " viewer"; slices.Contains(lines, line) {
				t.Errorf("Unleash saw the viewer's %s %s, which latch refused", c.method, c.path)
			}
		}
	})

	t.Run("EventLogNamesTheUser", func(t *testing.T) {
		b := signedIn(t, admin)
		r := b.pageFetch("GET", "/api/admin/events/"+flag, nil)
		if r.Status != 200 {
			t.Fatalf("GET /api/admin/events/%s: %d %s", flag, r.Status, r.Body)
		}
		var body struct {
			Events []struct {
				Type      string `json:"type"`
				CreatedBy string `json:"createdBy"`
			} `json:"events"`
		}
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Fatalf("events: %v: %s", err, r.Body)
		}
		byType := map[string]string{}
		for _, e := range body.Events {
			byType[e.Type] = e.CreatedBy
		}
		for _, typ := range []string{"feature-created", "feature-environment-enabled"} {
			if got := byType[typ]; got != editor.email {
				t.Errorf("event %s: createdBy %q, want %q (events: %v)", typ, got, editor.email, byType)
			}
		}
		// And the UI's event log shows it.
		b.do("event log", chromedp.Navigate(l.url+"/history"))
		b.dismissSplash()
		b.waitText("the editor in the event log", editor.email, 30*time.Second)
	})

	t.Run("AutomationToken", func(t *testing.T) {
		// A script with a JWT from `latch token` (a subject that is no
		// stored user, so not an email) works as an Unleash user of its
		// own, named in the event log.
		token := strings.TrimSpace(run(t, time.Minute, "", latchBin, "token", "--config", l.config,
			"--sub", "ci-bot", "--allow-unknown", "--role", "editor", "--ttl", "10m"))
		name := flag + "-ci"
		status, body := apiCall(t, "POST", l.url+"/api/admin/projects/default/features", token, `{"name":"`+name+`","type":"release"}`)
		if status != http.StatusCreated && status != http.StatusOK {
			t.Fatalf("ci-bot creates %s: got %d %s", name, status, body)
		}
		status, body = apiCall(t, "GET", l.url+"/api/admin/events/"+name, token, "")
		if status != 200 || !strings.Contains(body, `"createdBy":"ci-bot"`) {
			t.Errorf("events of %s: got %d %s, want createdBy ci-bot", name, status, tail(body, 500))
		}
	})

	t.Run("RoleChangeReachesUnleash", func(t *testing.T) {
		// An admin makes the editor a viewer in latch (its user API). latch
		// ends the editor's browser sessions (resetstore's SetRoles) or
		// serves the new role at once; either way the editor's next write is
		// refused, and once signed in again Unleash gives it the Viewer root
		// role.
		adm, ed := signedIn(t, admin), signedIn(t, editor)
		setRoles := func(roles ...string) {
			t.Helper()
			if r := adm.pageFetch("PUT", "/.latch/users/"+url.PathEscape(editor.email), map[string]any{"roles": roles}); r.Status != 200 {
				t.Fatalf("PUT /.latch/users/%s %v: %d %s", editor.email, roles, r.Status, r.Body)
			}
		}
		create := map[string]any{"name": flag + "-demoted", "type": "release"}
		setRoles("viewer")
		defer func() {
			setRoles(editor.roles...)
			if ed.whoami(t).Status != 200 {
				signIn(t, ed, l, editor)
			}
		}()
		r := ed.pageFetch("POST", "/api/admin/projects/default/features", create)
		switch r.Status {
		case http.StatusForbidden:
		case http.StatusUnauthorized:
			t.Logf("the role change ended the editor's session: %s", r.Body)
			signIn(t, ed, l, person{editor.email, editor.password, []string{"viewer"}})
		default:
			t.Fatalf("the demoted editor creates a flag: got %d %s, want 403 or 401", r.Status, r.Body)
		}
		if r := ed.pageFetch("POST", "/api/admin/projects/default/features", create); r.Status != http.StatusForbidden {
			t.Errorf("the demoted editor creates a flag: got %d %s, want 403", r.Status, r.Body)
		}
		if me := ed.whoami(t); me.Status != 200 || strings.Contains(me.Body, `"permission":"CREATE_FEATURE"`) {
			t.Errorf("the demoted editor in Unleash: got %d %s, want 200 without CREATE_FEATURE", me.Status, tail(me.Body, 400))
		}
	})

	t.Run("ClientAPIUntouched", func(t *testing.T) {
		direct := clientGet(t, un.url+"/api/client/features", "")
		through := clientGet(t, l.url+"/api/client/features", "")
		if direct.status != 200 || through.status != 200 {
			t.Fatalf("GET /api/client/features: direct %d, through latch %d: %s", direct.status, through.status, through.body)
		}
		if direct.body != through.body {
			t.Errorf("bodies differ:\ndirect: %s\nlatch:  %s", direct.body, through.body)
		}
		if direct.etag == "" || direct.etag != through.etag {
			t.Errorf("ETag: direct %q, through latch %q", direct.etag, through.etag)
		}
		if !strings.Contains(through.body, `"name":"`+flag+`"`) {
			t.Errorf("the SDK does not see %s: %s", flag, through.body)
		}
		if again := clientGet(t, l.url+"/api/client/features", through.etag); again.status != http.StatusNotModified {
			t.Errorf("If-None-Match through latch: got %d, want 304", again.status)
		}
	})

	t.Run("ForgedIdentityHeaders", func(t *testing.T) {
		// server.js trusts X-Latch-User; through latch a client's own is
		// always removed, whatever the path's spelling.
		for _, path := range []string{"/api/admin/user", "/API/Admin/user", "//api//admin/user", "/api/%61dmin/user", "/api/admin/./user"} {
			for _, h := range []string{"X-Latch-User", "x-latch-user", "X_Latch_User"} {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, l.url+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header[h] = []string{admin.email}
				req.Header["X-Latch-Roles"] = []string{"admin"}
				resp, err := httpClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK || strings.Contains(string(body), admin.email) {
					t.Errorf("GET %s with %s: %s: got %d %s, want no user", path, h, admin.email, resp.StatusCode, body)
				}
			}
		}
	})

	t.Run("ResetLinkForNewUser", func(t *testing.T) {
		adm := signedIn(t, admin)
		link := resetLink(t, adm, l, newbie.email)
		b := newBrowser(t, "nina")
		password := "Newbie-Passw0rd!"
		setPassword(t, b, link, password)
		signIn(t, b, l, person{newbie.email, password, newbie.roles})
		if me := b.whoami(t); me.Status != 200 || me.email() != newbie.email {
			t.Fatalf("the new user in Unleash: %d %s", me.Status, me.Body)
		}
	})

	t.Run("LogoutThenBack", func(t *testing.T) {
		b := signedIn(t, viewer)
		b.do("dashboard", chromedp.Navigate(l.url+"/"))
		b.waitDashboard()
		// Unleash's own "Sign out" posts a form to /logout; server.js sends
		// it on (307) to latch's logout, which ends the session.
		b.do("sign out", chromedp.Evaluate[chromedp.Void](`(() => {
			const f = document.createElement("form");
			f.method = "POST"; f.action = "/logout";
			document.body.appendChild(f); setTimeout(() => f.submit(), 0);
		})()`))
		b.waitFor("latch's login page", `location.pathname === "/.latch/login" && !!document.querySelector("input[name=email]")`, 30*time.Second)
		b.do("back", chromedp.NavigateBack())
		b.waitLoginPage(t)
		if me := b.whoami(t); me.Status != http.StatusUnauthorized {
			t.Errorf("after logout, GET /api/admin/user: got %d %s, want 401", me.Status, me.Body)
		}
		// Unleash's login page (rendered from latch's 401 body) links to
		// latch's; signing in there leads back to Unleash.
		b.waitFor("Unleash's Sign In link to latch's login", `!!document.querySelector('a[href^="/.latch/login"]')`, 30*time.Second)
		b.click("Sign In", 10*time.Second)
		b.waitFor("latch's login form", `location.pathname === "/.latch/login" && !!document.querySelector("input[name=email]")`, 30*time.Second)
		submitLogin(t, b, viewer)
	})

	t.Run("PasswordChangeEndsSessions", func(t *testing.T) {
		old := signedIn(t, rotator)
		if me := old.whoami(t); me.Status != 200 {
			t.Fatalf("before: %d %s", me.Status, me.Body)
		}
		link := resetLink(t, signedIn(t, admin), l, rotator.email)
		b := newBrowser(t, "rob-new")
		password := "Rotated-Passw0rd!"
		setPassword(t, b, link, password)
		if me := old.whoami(t); me.Status != http.StatusUnauthorized {
			t.Errorf("the old session after the reset: GET /api/admin/user %d %s, want 401", me.Status, me.Body)
		}
		old.do("reload", chromedp.Navigate(l.url+"/"))
		old.waitLoginPage(t)
		signIn(t, b, l, person{rotator.email, password, rotator.roles})
		if me := b.whoami(t); me.Status != 200 || me.email() != rotator.email {
			t.Errorf("with the new password: %d %s", me.Status, me.Body)
		}
	})

	// What Unleash's UI called, per user (server.js's LATCH_ROUTE_LOG), and
	// what latch denied: the material to adjust policy.csv with.
	saveLines(t, "unleash-admin-requests.log", readLines(t, un.routeLog))
	var denied []string
	for _, line := range strings.Split(l.proc.log.String(), "\n") {
		if strings.Contains(line, `"decision":"deny"`) || strings.Contains(line, "decision=deny") {
			denied = append(denied, line)
		}
	}
	saveLines(t, "latch-denied.log", denied)
}

// saveLines writes lines to name in the test's output folder.
// waitRouteLine waits until the Unleash hook's route log has the line
// want and returns its lines. The hook writes through a stream, so a line
// lands a moment after the request.
func waitRouteLine(t *testing.T, path, want string, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		lines := readLines(t, path)
		if slices.Contains(lines, want) {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("Unleash's route log has no %q after %s (%d lines)", want, timeout, len(lines))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func saveLines(t *testing.T, name string, lines []string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(outDir(t), name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Error(err)
	}
}

// signIn signs p in on latch's login page and waits for Unleash's
// dashboard.
func signIn(t *testing.T, b *browser, l *latch, p person) {
	t.Helper()
	b.do("login page", chromedp.Navigate(l.url+"/.latch/login?rd=/"), chromedp.WaitVisible(`input[name=email]`))
	submitLogin(t, b, p)
}

// submitLogin fills latch's login form for p and waits for Unleash's
// dashboard.
func submitLogin(t *testing.T, b *browser, p person) {
	t.Helper()
	b.do("sign in",
		chromedp.SendKeys(`input[name=email]`, p.email),
		chromedp.SendKeys(`input[name=password]`, p.password),
		chromedp.Click(`button[type=submit]`),
	)
	b.waitFor("Unleash at /", `location.pathname === "/" && !document.querySelector("input[name=email]")`, 30*time.Second)
	b.waitDashboard()
}

// waitDashboard waits for Unleash's dashboard and closes its welcome
// dialog if it shows.
func (b *browser) waitDashboard() {
	b.t.Helper()
	b.waitFor("Unleash's dashboard", `document.title.startsWith("Dashboard")`, 60*time.Second)
	b.dismissSplash()
}

// dismissSplash closes Unleash's first-visit dialog when it is open.
func (b *browser) dismissSplash() {
	const label = "Got it, let's get started!"
	ctx, cancel := b.within(10 * time.Second)
	defer cancel()
	ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(async () => {
		for (let i = 0; i < 20; i++) {
			const btn = [...document.querySelectorAll("button")].find(e => e.innerText.trim() === %s);
			if (btn) { setTimeout(() => btn.click(), 0); return true; }
			await new Promise(r => setTimeout(r, 100));
		}
		return false;
	})()`, jsString(label)), chromedp.EvalAwaitPromise))
	if ok {
		b.screenshot("welcome dialog closed")
	}
}

// waitLoginPage waits for a login page: latch's form, or Unleash's UI
// sending the user to latch's login (its login route, rendered from
// latch's 401 body).
func (b *browser) waitLoginPage(t *testing.T) {
	t.Helper()
	b.waitFor("a login page",
		`!!document.querySelector("input[name=email]") || !!document.querySelector('a[href^="/.latch/login"]')`, 30*time.Second)
}

// me is the answer of GET /api/admin/user in the page.
type me struct{ fetchResult }

func (m me) email() string {
	var v struct {
		User struct {
			Email string `json:"email"`
		} `json:"user"`
	}
	_ = json.Unmarshal([]byte(m.Body), &v)
	return v.User.Email
}

func (b *browser) whoami(t *testing.T) me {
	t.Helper()
	return me{b.pageFetch("GET", "/api/admin/user", nil)}
}

// resetLink asks latch's seed route, as the admin in b, for a reset link
// for email.
func resetLink(t *testing.T, b *browser, l *latch, email string) string {
	t.Helper()
	r := b.pageFetch("POST", "/api/admin/user-admin/reset-password", map[string]string{"id": email})
	if r.Status != 200 {
		t.Fatalf("reset link for %s: %d %s", email, r.Status, r.Body)
	}
	var v struct {
		URL string `json:"resetPasswordUrl"`
	}
	if err := json.Unmarshal([]byte(r.Body), &v); err != nil || !strings.HasPrefix(v.URL, l.url+"/.latch/reset-password?token=") {
		t.Fatalf("reset link for %s: %s (%v), want %s/.latch/reset-password?token=…", email, r.Body, err, l.url)
	}
	return v.URL
}

// setPassword opens a reset link and sets password on latch's page.
func setPassword(t *testing.T, b *browser, link, password string) {
	t.Helper()
	if _, err := url.Parse(link); err != nil {
		t.Fatal(err)
	}
	b.do("reset page", chromedp.Navigate(link), chromedp.WaitVisible(`#password`))
	b.do("new password",
		chromedp.SendKeys(`#password`, password),
		chromedp.SendKeys(`#confirm`, password),
		chromedp.Click(`button[type=submit]`),
	)
	b.waitFor("password set", `(() => { const s = document.getElementById("success"); return !!s && s.getClientRects().length > 0; })()`, 30*time.Second)
}

// apiCall sends a JSON request with a bearer token.
func apiCall(t *testing.T, method, u, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

type clientAnswer struct {
	status int
	etag   string
	body   string
}

// clientGet is an Unleash SDK's request: the backend token in
// Authorization, If-None-Match when etag is set.
func clientGet(t *testing.T, u, etag string) clientAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", clientToken)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return clientAnswer{resp.StatusCode, resp.Header.Get("ETag"), string(body)}
}
