package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch"
)

// Browser sessions end to end: the login page and its form, the session
// cookie on later requests, CSRF, login redirects, logout, the ways a
// session ends, and latch's namespace.

const (
	adaEmail    = "ada@example.com"
	adaPassword = "Ada-Passw0rd!x"
	// rootBearer is an admin's token that fakeAuth accepts; root is no
	// stored user, so the session check passes it.
	rootBearer = "Bearer root@example.com:admin"
)

// browserClient follows no redirect, so a test sees each 302 and 303, and
// gives up on any request after 10 seconds.
var browserClient = &http.Client{
	Transport:     testTransport,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// sessFront is a Handler whose Store is a memStore behind a SessionCache,
// holding ada (role admin, password adaPassword), with a settable clock.
type sessFront struct {
	*httptest.Server
	st    *memStore
	cache *SessionCache
	up    *recording
	clk   *clock
}

// sessStart is when every sessFront's clock starts.
var sessStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newSessFront builds a sessFront; mod may change the options (users may
// wrap st, or be nil for st).
func newSessFront(t *testing.T, users func(*memStore) Users, mod func(*Options)) *sessFront {
	t.Helper()
	st := newMemStore()
	if _, err := st.AddUser(context.Background(), adaEmail, []string{"admin"}, adaPassword); err != nil {
		t.Fatal(err)
	}
	var u Users = st
	if users != nil {
		u = users(st)
	}
	f := &sessFront{st: st, up: newRecording(t), clk: &clock{t: sessStart}}
	f.cache = NewSessionCache(u, SessionCacheOptions{})
	o := Options{
		Upstream: mustURL(t, f.up.srv.URL), Authenticator: fakeAuth{}, Decider: &fakeDecider{},
		Store: f.cache, ResetURL: "http://latch.example/.latch/reset-password", Now: f.clk.now,
		// The clock stands still: budget enough hashes for every login.
		Login: LoginLimits{PerSecond: 1000, Burst: 1000, PerAccount: 1000, PerAddress: 1000},
	}
	if mod != nil {
		mod(&o)
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f.Server = httptest.NewServer(h)
	t.Cleanup(f.Close)
	return f
}

// send sends a request with the given headers and body (none when "") and
// follows no redirect.
func (f *sessFront) send(t *testing.T, method, path string, hdr http.Header, body string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := browserClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// postLogin posts the login form with the given fields (a field is left
// out when its value is "-") and extra headers.
func (f *sessFront) postLogin(t *testing.T, email, password, rd string, hdr http.Header) *http.Response {
	t.Helper()
	form := url.Values{}
	for k, v := range map[string]string{"email": email, "password": password, "rd": rd} {
		if v != "-" {
			form.Set(k, v)
		}
	}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for k, v := range hdr {
		h[k] = v
	}
	return f.send(t, "POST", "/.latch/login", h, form.Encode())
}

// login signs ada in through the form and returns the session cookie's
// value.
func (f *sessFront) login(t *testing.T) string {
	t.Helper()
	resp := f.postLogin(t, adaEmail, adaPassword, "/", nil)
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: got %d, want 303 (body %s)", resp.StatusCode, body)
	}
	c := findCookie(resp, cookieName)
	if c == nil {
		t.Fatalf("login set no %s cookie: %q", cookieName, resp.Header.Values("Set-Cookie"))
	}
	return c.Value
}

// sessions returns a copy of the store's browser-session records.
func (f *sessFront) sessions() map[string]latch.BrowserSession {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	out := make(map[string]latch.BrowserSession, len(f.st.browser))
	for k, v := range f.st.browser {
		out[k] = v
	}
	return out
}

// withCookie returns headers carrying the session cookie and any more
// given as name, value pairs.
func withCookie(secret string, kv ...string) http.Header {
	h := http.Header{"Cookie": {cookieName + "=" + secret}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func findCookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// sha256Hex is the store key wanted for a cookie secret, computed here
// independently of sessionKey.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var (
	rdValue    = regexp.MustCompile(`<input type="hidden" name="rd" value="([^"]*)">`)
	emailValue = regexp.MustCompile(`<input id="email" name="email"[^>]* value="([^"]*)">`)
	errorText  = regexp.MustCompile(`<p id="error">([^<]*)</p>`)
)

// pageField returns the (unescaped) value re captures in the page, and
// whether it was there.
func pageField(page string, re *regexp.Regexp) (string, bool) {
	m := re.FindStringSubmatch(page)
	if m == nil {
		return "", false
	}
	return html.UnescapeString(m[1]), true
}

// wantPage checks that resp is one of latch's HTML pages with status and
// returns its body.
func wantPage(t *testing.T, resp *http.Response, status int) string {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status: got %d, want %d (body %.300s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type: got %q, want text/html", ct)
	}
	return body
}

// TestSafeRedirect: only a same-origin path survives; everything a browser
// could read as another host, a scheme or a script becomes "/".
func TestSafeRedirect(t *testing.T) {
	t.Parallel()
	longOK := "/" + strings.Repeat("a", 2047)
	tests := []struct{ rd, want string }{
		{"", "/"},
		{"/", "/"},
		{"/api/admin/features?x=1&y=2", "/api/admin/features?x=1&y=2"},
		{"/a/b#frag", "/a/b#frag"},
		{"/user@evil.com", "/user@evil.com"}, // a path, not a userinfo
		// Percent-encoded: the browser keeps them in the path, same origin.
		{"/%09/evil.com", "/%09/evil.com"},
		{"/%2F/evil.com", "/%2F/evil.com"},
		{"/%5Cevil.com", "/%5Cevil.com"},
		{longOK, longOK},
		{longOK + "a", "/"}, // over 2 KiB
		{"//evil.com", "/"},
		{"///evil.com", "/"},
		{`/\evil.com`, "/"},
		{`/a\b`, "/"},
		{"https://evil.com", "/"},
		{"http:/evil.com", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.com", "/"},
		{"./x", "/"},
		{" /x", "/"},
		// Raw control characters: a browser drops tabs and newlines, so
		// "/\t/evil" would become "//evil".
		{"/\t/evil.com", "/"},
		{"/\n/evil.com", "/"},
		{"/\r/evil.com", "/"},
		{"/x\x00", "/"},
		{"/x\x7f", "/"},
		{"\t//evil.com", "/"},
	}
	for _, tt := range tests {
		if got := safeRedirect(tt.rd); got != tt.want {
			t.Errorf("safeRedirect(%.60q) = %.60q, want %.60q", tt.rd, got, tt.want)
		}
	}
}

// TestLoginPage: GET /.latch/login renders the form, with a CSP that
// allows no script, carrying a safe rd html-escaped, and "/" for a hostile
// one.
func TestLoginPage(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	benign := `/api/admin/features?a=1&b=<i>"x"</i>`
	tests := []struct{ name, rd, want string }{
		{"none", "", "/"},
		{"benign with markup", benign, benign},
		{"encoded tab stays in the path", "/%09/evil.com", "/%09/evil.com"},
		{"protocol-relative", "//evil.com", "/"},
		{"backslash", `/\evil.com`, "/"},
		{"absolute", "https://evil.com", "/"},
		{"raw tab", "/\t/evil.com", "/"},
		{"raw tab, short", "/\t/evil", "/"},
		{"script", "javascript:alert(1)", "/"},
		{"very long", "/" + strings.Repeat("x", 5000), "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := "/.latch/login"
			if tt.rd != "" {
				path += "?rd=" + url.QueryEscape(tt.rd)
			}
			resp := f.send(t, "GET", path, nil, "")
			page := wantPage(t, resp, http.StatusOK)
			csp := resp.Header.Get("Content-Security-Policy")
			if csp == "" || strings.Contains(csp, "script-src") || !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy: got %q, want default-src 'none' and no script-src", csp)
			}
			if !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("the page may be framed: CSP %q, X-Frame-Options %q", csp, resp.Header.Get("X-Frame-Options"))
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", cc)
			}
			for _, field := range []string{`name="email"`, `name="password"`, `name="rd"`, `action="/.latch/login"`, `method="post"`} {
				if !strings.Contains(page, field) {
					t.Errorf("the page has no %s", field)
				}
			}
			if strings.Contains(page, "<script") {
				t.Error("the page has a script")
			}
			got, ok := pageField(page, rdValue)
			if !ok || got != tt.want {
				t.Errorf("rd field: got %q (found %v), want %q", got, ok, tt.want)
			}
			if strings.Contains(page, "<i>") {
				t.Error("rd reached the page unescaped")
			}
			if _, ok := pageField(page, errorText); ok {
				t.Error("a first load shows an error")
			}
		})
	}
	if n := f.up.count(); n != 0 {
		t.Errorf("the upstream got %d requests, want none", n)
	}
}

// TestLoginFormStartsSession: good credentials get 303 to rd and a session
// cookie (HttpOnly, SameSite=Lax, Path=/, Max-Age the absolute timeout, not
// Secure) whose value is a random secret, not a JWT, stored under its
// SHA-256.
func TestLoginFormStartsSession(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		absolute time.Duration
		rd, loc  string
	}{
		{"default timeout", 0, "/api/admin/features?x=1", "/api/admin/features?x=1"},
		{"custom timeout", 3 * time.Hour, "/", "/"},
		{"hostile rd", 0, "//evil.com/x", "/"},
		{"no rd", 0, "-", "/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSessFront(t, nil, func(o *Options) { o.SessionAbsolute = tt.absolute })
			resp := f.postLogin(t, "Ada@Example.com", adaPassword, tt.rd, nil)
			readBody(t, resp)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.loc {
				t.Fatalf("got %d Location %q, want 303 to %q", resp.StatusCode, resp.Header.Get("Location"), tt.loc)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", cc)
			}
			setCookies := resp.Header.Values("Set-Cookie")
			if len(setCookies) != 1 {
				t.Fatalf("Set-Cookie: got %q, want one", setCookies)
			}
			c := findCookie(resp, cookieName)
			if c == nil {
				t.Fatalf("no %s cookie in %q", cookieName, setCookies)
			}
			absolute := tt.absolute
			if absolute == 0 {
				absolute = 7 * 24 * time.Hour
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || c.Domain != "" ||
				c.MaxAge != int(absolute.Seconds()) {
				t.Errorf("cookie %q: want HttpOnly, SameSite=Lax, Path=/, no Domain, not Secure, Max-Age=%d", setCookies[0], int(absolute.Seconds()))
			}
			if strings.Count(c.Value, ".") != 0 || strings.HasPrefix(c.Value, "eyJ") {
				t.Errorf("cookie value %q looks like a JWT", c.Value)
			}
			if raw, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil || len(raw) != 32 {
				t.Errorf("cookie value %q: %d bytes (%v), want 32 random bytes base64url", c.Value, len(raw), err)
			}
			recs := f.sessions()
			rec, ok := recs[sha256Hex(c.Value)]
			if len(recs) != 1 || !ok {
				t.Fatalf("store records %v, want one under sha256(cookie) %s", slices.Collect(maps.Keys(recs)), sha256Hex(c.Value))
			}
			if _, ok := recs[c.Value]; ok {
				t.Error("the store holds the cookie's secret itself")
			}
			ada, _ := f.st.GetUser(context.Background(), adaEmail)
			if rec.Email != adaEmail || rec.Generation != ada.Generation || !rec.Created.Equal(sessStart) ||
				!rec.LastSeen.Equal(sessStart) || !rec.Expires.Equal(sessStart.Add(absolute)) {
				t.Errorf("record %+v, want ada's generation %d, created and seen %v, expiring %v", rec, ada.Generation, sessStart, sessStart.Add(absolute))
			}
			// A second login is a second session with another secret.
			if again := f.login(t); again == c.Value || len(f.sessions()) != 2 {
				t.Errorf("second login: secret %q (first %q), %d records; want a new secret and two records", again, c.Value, len(f.sessions()))
			}
		})
	}
}

// TestLoginFormEndsOldSession: signing in with a session cookie already
// set starts a new session with a new secret and ends the old one (no
// fixation); a failed sign-in leaves the old one alone.
func TestLoginFormEndsOldSession(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	old := f.login(t)
	wantPage(t, f.postLogin(t, adaEmail, "Not-The-Passw0rd", "/", withCookie(old)), http.StatusUnauthorized)
	f.wantSessionLive(t, old, "admin")
	resp := f.postLogin(t, adaEmail, adaPassword, "/", withCookie(old))
	readBody(t, resp)
	c := findCookie(resp, cookieName)
	if resp.StatusCode != http.StatusSeeOther || c == nil || c.Value == old {
		t.Fatalf("got %d, cookie %v; want 303 with a new secret", resp.StatusCode, c)
	}
	f.wantSessionEnded(t, old)
	f.wantSessionLive(t, c.Value, "admin")
	if n := len(f.sessions()); n != 1 {
		t.Errorf("%d records, want the new session's alone", n)
	}
}

// TestLoginFormSecureCookie: with SecureCookie the cookie is
// __Host-latch_session and Secure; only that name authenticates, and
// logout clears that name, Secure (or a browser would refuse it).
func TestLoginFormSecureCookie(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, func(o *Options) { o.SecureCookie = true })
	resp := f.postLogin(t, adaEmail, adaPassword, "/", nil)
	readBody(t, resp)
	c := findCookie(resp, hostCookieName)
	if resp.StatusCode != http.StatusSeeOther || c == nil {
		t.Fatalf("got %d, Set-Cookie %q; want 303 and %s", resp.StatusCode, resp.Header.Values("Set-Cookie"), hostCookieName)
	}
	if findCookie(resp, cookieName) != nil {
		t.Errorf("the plain %s cookie was set too", cookieName)
	}
	if !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %q: want Secure, HttpOnly, Path=/, no Domain, SameSite=Lax", resp.Header.Get("Set-Cookie"))
	}
	me := func(name string) int {
		resp := f.send(t, "GET", "/.latch/me", http.Header{"Cookie": {name + "=" + c.Value}}, "")
		readBody(t, resp)
		return resp.StatusCode
	}
	if got := me(hostCookieName); got != http.StatusOK {
		t.Errorf("/.latch/me with %s: got %d, want 200", hostCookieName, got)
	}
	if got := me(cookieName); got != http.StatusUnauthorized {
		t.Errorf("/.latch/me with the plain name: got %d, want 401", got)
	}
	resp = f.send(t, "POST", "/.latch/logout", http.Header{"Cookie": {hostCookieName + "=" + c.Value}}, "")
	readBody(t, resp)
	cleared := findCookie(resp, hostCookieName)
	if resp.StatusCode != http.StatusSeeOther || cleared == nil || cleared.MaxAge >= 0 || !cleared.Secure {
		t.Errorf("logout: got %d, Set-Cookie %q; want 303 clearing %s, Secure", resp.StatusCode, resp.Header.Values("Set-Cookie"), hostCookieName)
	}
	if n := len(f.sessions()); n != 0 {
		t.Errorf("after logout: %d records, want 0", n)
	}
}

// TestLoginFormRefusals: a wrong password and an unknown user get the same
// 401 page; missing fields 400; a cross-origin post 403; too many attempts
// 429. None starts a session or reaches the upstream.
func TestLoginFormRefusals(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	check := func(t *testing.T, resp *http.Response, status int) string {
		t.Helper()
		page := wantPage(t, resp, status)
		if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
			t.Errorf("Set-Cookie %q on a refusal", c)
		}
		msg, ok := pageField(page, errorText)
		if !ok || msg == "" {
			t.Errorf("the page shows no error")
		}
		return msg
	}
	t.Run("wrong password and unknown user", func(t *testing.T) {
		wrong := f.postLogin(t, adaEmail, "Not-The-Passw0rd", "/x", nil)
		wrongMsg := check(t, wrong, http.StatusUnauthorized)
		unknown := f.postLogin(t, "nobody@example.com", adaPassword, "/x", nil)
		unknownMsg := check(t, unknown, http.StatusUnauthorized)
		if wrongMsg != unknownMsg {
			t.Errorf("messages differ: wrong password %q, unknown user %q", wrongMsg, unknownMsg)
		}
	})
	t.Run("page keeps email and rd", func(t *testing.T) {
		resp := f.postLogin(t, adaEmail, "Not-The-Passw0rd", "/api/admin/x?y=1", nil)
		page := wantPage(t, resp, http.StatusUnauthorized)
		if got, _ := pageField(page, emailValue); got != adaEmail {
			t.Errorf("email field: got %q, want %q", got, adaEmail)
		}
		if got, _ := pageField(page, rdValue); got != "/api/admin/x?y=1" {
			t.Errorf("rd field: got %q, want /api/admin/x?y=1", got)
		}
		if strings.Contains(page, "Not-The-Passw0rd") {
			t.Error("the page echoes the password")
		}
	})
	for _, tt := range []struct{ name, email, password string }{
		{"no email", "-", adaPassword},
		{"empty email", "", adaPassword},
		{"no password", adaEmail, "-"},
		{"empty password", adaEmail, ""},
		{"not an address", "ada", adaPassword},
		{"nothing", "-", "-"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			check(t, f.postLogin(t, tt.email, tt.password, "/", nil), http.StatusBadRequest)
		})
	}
	for _, tt := range []struct {
		name string
		hdr  http.Header
	}{
		{"Sec-Fetch-Site cross-site", http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"Sec-Fetch-Site same-site", http.Header{"Sec-Fetch-Site": {"same-site"}}},
		{"foreign Origin, old browser", http.Header{"Origin": {"https://evil.com"}}},
	} {
		t.Run("cross-origin, "+tt.name, func(t *testing.T) {
			check(t, f.postLogin(t, adaEmail, adaPassword, "/", tt.hdr), http.StatusForbidden)
		})
	}
	if n := len(f.sessions()); n != 0 {
		t.Errorf("%d sessions were created, want none", n)
	}
	if n := f.up.count(); n != 0 {
		t.Errorf("the upstream got %d requests, want none", n)
	}
}

// TestLoginFormSameOriginAllowed: the headers a browser sends when the form
// is posted from latch's own page pass the cross-origin check.
func TestLoginFormSameOriginAllowed(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	for _, hdr := range []http.Header{
		{"Sec-Fetch-Site": {"same-origin"}},
		{"Sec-Fetch-Site": {"none"}},
		{"Origin": {f.URL}},
	} {
		resp := f.postLogin(t, adaEmail, adaPassword, "/", hdr)
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther || findCookie(resp, cookieName) == nil {
			t.Errorf("%v: got %d, want 303 with a cookie", hdr, resp.StatusCode)
		}
	}
}

// TestLoginFormRateLimited: past PerAccount attempts a minute, even the
// right password gets the 429 page with Retry-After, and no session.
func TestLoginFormRateLimited(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, func(o *Options) { o.Login.PerAccount = 2 })
	// Spellings of one address count as one account.
	for _, email := range []string{adaEmail, "ADA@example.com"} {
		wantPage(t, f.postLogin(t, email, "Not-The-Passw0rd", "/", nil), http.StatusUnauthorized)
	}
	resp := f.postLogin(t, adaEmail, adaPassword, "/", nil)
	wantPage(t, resp, http.StatusTooManyRequests)
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After: got %q, want a positive number of seconds", ra)
	}
	if findCookie(resp, cookieName) != nil || len(f.sessions()) != 0 {
		t.Error("a rate-limited login started a session")
	}
	// Another account is not limited.
	if _, err := f.st.AddUser(context.Background(), "bea@example.com", []string{"viewer"}, "Bea-Passw0rd!x"); err != nil {
		t.Fatal(err)
	}
	resp = f.postLogin(t, "bea@example.com", "Bea-Passw0rd!x", "/", nil)
	readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("another account: got %d, want 303", resp.StatusCode)
	}
	// The next minute, ada may try again.
	f.clk.add(time.Minute)
	resp = f.postLogin(t, adaEmail, adaPassword, "/", nil)
	readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a minute later: got %d, want 303", resp.StatusCode)
	}
}

// TestLoginFormLimits: a form larger than MaxBodyBytes gets the 413 page,
// and a login beyond the password-hash budget the 503 page with
// Retry-After; neither starts a session.
func TestLoginFormLimits(t *testing.T) {
	t.Parallel()
	t.Run("too large", func(t *testing.T) {
		t.Parallel()
		f := newSessFront(t, nil, func(o *Options) { o.MaxBodyBytes = 512 })
		wantPage(t, f.postLogin(t, adaEmail, strings.Repeat("x", 600), "/", nil), http.StatusRequestEntityTooLarge)
		if n := len(f.sessions()); n != 0 {
			t.Errorf("%d sessions, want none", n)
		}
	})
	t.Run("hash budget spent", func(t *testing.T) {
		t.Parallel()
		f := newSessFront(t, nil, func(o *Options) { o.Login = LoginLimits{PerSecond: 1, Burst: 1} })
		f.login(t)
		resp := f.postLogin(t, adaEmail, adaPassword, "/", nil)
		wantPage(t, resp, http.StatusServiceUnavailable)
		if ra := resp.Header.Get("Retry-After"); ra != "1" {
			t.Errorf("Retry-After: got %q, want \"1\" (as the login API's 503 says)", ra)
		}
		if n := len(f.sessions()); n != 1 {
			t.Errorf("%d sessions, want only the first login's", n)
		}
		f.clk.add(time.Second) // one more hash earned
		f.login(t)
	})
	t.Run("charset parameter", func(t *testing.T) {
		t.Parallel()
		f := newSessFront(t, nil, nil)
		form := url.Values{"email": {adaEmail}, "password": {adaPassword}}.Encode()
		resp := f.send(t, "POST", "/.latch/login", http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=UTF-8"}}, form)
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther || findCookie(resp, cookieName) == nil {
			t.Errorf("got %d, want 303 with a cookie", resp.StatusCode)
		}
	})
}

// TestSessionGenerationChecked: a session whose record survived a change
// of its user's generation (a store that failed to end it) is refused, and
// it acts with the roles stored now, not those of its sign-in.
func TestSessionGenerationChecked(t *testing.T) {
	t.Parallel()
	sessions := fakeSessions{}
	f := newSessFront(t, nil, func(o *Options) { o.Sessions = sessions })
	ada, err := f.st.GetUser(context.Background(), adaEmail)
	if err != nil {
		t.Fatal(err)
	}
	sessions[adaEmail] = Session{Found: true, Generation: ada.Generation, Roles: []string{"viewer"}}
	secret := f.login(t)
	f.wantSessionLive(t, secret, "viewer")
	sessions[adaEmail] = Session{Found: true, Generation: ada.Generation + 1, Roles: []string{"viewer"}}
	wantError(t, f.send(t, "GET", "/api/admin/features", withCookie(secret), ""), http.StatusUnauthorized, NameAuthRequired)
	delete(sessions, adaEmail)
	wantError(t, f.send(t, "GET", "/api/admin/features", withCookie(secret), ""), http.StatusUnauthorized, NameAuthRequired)
}

// TestSessionCookieAuthenticates: the cookie authenticates a protected
// request; the upstream gets the identity headers and every other cookie,
// never latch's; /.latch/me names the session.
func TestSessionCookieAuthenticates(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	secret := f.login(t)
	hdr := http.Header{"Cookie": {
		"a=1; " + cookieName + "=" + secret + "; my_latch_session=2; latch_session_x=3",
		"c=4",
	}}
	resp := f.send(t, "GET", "/api/admin/features", hdr, "")
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != "upstream saw /api/admin/features" {
		t.Fatalf("got %d %q, want the upstream's 200", resp.StatusCode, body)
	}
	got := f.up.last(t)
	if u, r := got.Header.Get("X-Latch-User"), got.Header.Get("X-Latch-Roles"); u != adaEmail || r != "admin" {
		t.Errorf("identity headers: got %q, %q; want %q, admin", u, r, adaEmail)
	}
	want := []string{"a=1; my_latch_session=2; latch_session_x=3", "c=4"}
	if c := got.Header.Values("Cookie"); !slices.Equal(c, want) {
		t.Errorf("upstream Cookie lines: got %q, want %q", c, want)
	}
	if a := got.Header.Values("Authorization"); len(a) != 0 {
		t.Errorf("upstream Authorization: got %q, want none", a)
	}

	// Other spellings a client may send: no space after ';', latch's
	// secure-cookie name (which latch never forwards either).
	for _, tt := range []struct{ line, want string }{
		{"a=1;" + cookieName + "=" + secret, "a=1"},
		{cookieName + "=" + secret + ";b=2;", "b=2"},
		{hostCookieName + "=x; " + cookieName + "=" + secret + "; c=3", "c=3"},
	} {
		resp := f.send(t, "GET", "/api/admin/features", http.Header{"Cookie": {tt.line}}, "")
		readBody(t, resp)
		got := f.up.last(t)
		if resp.StatusCode != http.StatusOK || got.Header.Get("X-Latch-User") != adaEmail {
			t.Errorf("Cookie %q: got %d as %q, want 200 as ada", tt.line, resp.StatusCode, got.Header.Get("X-Latch-User"))
		}
		if c := got.Header.Values("Cookie"); !slices.Equal(c, []string{tt.want}) {
			t.Errorf("Cookie %q: upstream got %q, want [%s]", tt.line, c, tt.want)
		}
	}

	// The session cookie alone: no Cookie line reaches the upstream.
	resp = f.send(t, "GET", "/api/admin/features", withCookie(secret), "")
	readBody(t, resp)
	if c, ok := f.up.last(t).Header["Cookie"]; ok {
		t.Errorf("upstream Cookie: got %q, want no Cookie header", c)
	}

	resp = f.send(t, "GET", "/.latch/me", withCookie(secret), "")
	body := readBody(t, resp)
	var me struct {
		Subject, Email, Kind string
		Roles                []string
	}
	if err := json.Unmarshal([]byte(body), &me); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/.latch/me: got %d %s (%v)", resp.StatusCode, body, err)
	}
	if me.Subject != adaEmail || me.Email != adaEmail || me.Kind != "session" || !slices.Equal(me.Roles, []string{"admin"}) {
		t.Errorf("/.latch/me: got %+v, want ada, roles [admin], kind session", me)
	}
	wantError(t, f.send(t, "GET", "/.latch/me", nil, ""), http.StatusUnauthorized, NameAuthRequired)
}

// TestSessionCSRF: a cookie-authenticated unsafe request must come from
// the same origin; bearer tokens are exempt; on an open path a
// cross-origin cookie counts for nothing.
func TestSessionCSRF(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	secret := f.login(t)
	tests := []struct {
		name        string
		method      string
		path        string
		hdr         http.Header
		status      int    // 200: forwarded
		user        string // the identity the upstream must see ("" none)
		refusedName string
	}{
		{"cross-site POST", "POST", "/api/admin/features", withCookie(secret, "Sec-Fetch-Site", "cross-site"), 403, "", NameNoAccess},
		{"same-site DELETE", "DELETE", "/api/admin/features/x", withCookie(secret, "Sec-Fetch-Site", "same-site"), 403, "", NameNoAccess},
		{"foreign Origin PUT", "PUT", "/api/admin/features/x", withCookie(secret, "Origin", "https://evil.com"), 403, "", NameNoAccess},
		{"cross-site POST with an unrecognised bearer", "POST", "/api/admin/features",
			withCookie(secret, "Sec-Fetch-Site", "cross-site", "Authorization", "*:development.abc"), 403, "", NameNoAccess},
		{"same-origin POST", "POST", "/api/admin/features", withCookie(secret, "Sec-Fetch-Site", "same-origin"), 200, adaEmail, ""},
		{"own Origin PUT", "PUT", "/api/admin/features/x", withCookie(secret, "Origin", f.URL), 200, adaEmail, ""},
		{"no fetch metadata", "POST", "/api/admin/features", withCookie(secret), 200, adaEmail, ""},
		{"cross-site GET is safe", "GET", "/api/admin/features", withCookie(secret, "Sec-Fetch-Site", "cross-site"), 200, adaEmail, ""},
		{"bearer cross-site", "POST", "/api/admin/features",
			http.Header{"Authorization": {rootBearer}, "Sec-Fetch-Site": {"cross-site"}}, 200, "root@example.com", ""},
		{"bearer and cookie cross-site", "POST", "/api/admin/features",
			withCookie(secret, "Authorization", rootBearer, "Sec-Fetch-Site", "cross-site"), 200, "root@example.com", ""},
		{"open path cross-site POST is anonymous", "POST", "/api/client/metrics",
			withCookie(secret, "Sec-Fetch-Site", "cross-site"), 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.up.count()
			resp := f.send(t, tt.method, tt.path, tt.hdr, "{}")
			if tt.status != 200 {
				body := wantError(t, resp, tt.status, tt.refusedName)
				if body["message"] != errCrossOrigin.Message {
					t.Errorf("message: got %q, want the cross-origin refusal", body["message"])
				}
				if n := f.up.count(); n != before {
					t.Errorf("the upstream got %d requests, want none", n-before)
				}
				return
			}
			body := readBody(t, resp)
			if resp.StatusCode != 200 || f.up.count() != before+1 {
				t.Fatalf("got %d %q, want it forwarded", resp.StatusCode, body)
			}
			got := f.up.last(t)
			if u := got.Header.Get("X-Latch-User"); u != tt.user {
				t.Errorf("X-Latch-User: got %q, want %q", u, tt.user)
			}
			if _, ok := got.Header["X-Latch-Roles"]; ok != (tt.user != "") {
				t.Errorf("X-Latch-Roles present %v, want %v", ok, tt.user != "")
			}
			if c := got.Header.Get("Cookie"); strings.Contains(c, secret) {
				t.Errorf("the session cookie reached the upstream: %q", c)
			}
		})
	}
	// The refusals left the session alone.
	resp := f.send(t, "GET", "/.latch/me", withCookie(secret), "")
	readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/.latch/me after the refusals: got %d, want 200", resp.StatusCode)
	}
}

// TestSessionCSRFOwnRoutes: latch's own user routes, the likeliest target
// of a forged request, refuse a cross-site one made with the cookie and
// change nothing; the same request from latch's origin succeeds.
func TestSessionCSRFOwnRoutes(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	secret := f.login(t)
	create := `{"email":"mallory@example.com","roles":["admin"],"password":"M4llory-Passw0rd!"}`
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/.latch/users", create},
		{"PUT", "/.latch/users/" + adaEmail, `{"roles":["viewer"]}`},
		{"DELETE", "/.latch/users/" + adaEmail, ""},
		{"POST", SeedRoute, `{"id":"` + adaEmail + `"}`},
	} {
		hdr := withCookie(secret, "Sec-Fetch-Site", "cross-site", "Content-Type", "application/json")
		body := wantError(t, f.send(t, tt.method, tt.path, hdr, tt.body), http.StatusForbidden, NameNoAccess)
		if body["message"] != errCrossOrigin.Message {
			t.Errorf("%s %s: message %q, want the cross-origin refusal", tt.method, tt.path, body["message"])
		}
	}
	if _, err := f.st.GetUser(context.Background(), "mallory@example.com"); err == nil {
		t.Error("a cross-site request created a user")
	}
	if u, err := f.st.GetUser(context.Background(), adaEmail); err != nil || !slices.Equal(u.Roles, []string{"admin"}) {
		t.Errorf("ada after the refusals: %+v, %v; want her unchanged", u, err)
	}
	if n := len(f.st.tokens); n != 0 {
		t.Errorf("%d reset tokens issued by cross-site requests", n)
	}
	resp := f.send(t, "POST", "/.latch/users", withCookie(secret, "Sec-Fetch-Site", "same-origin", "Content-Type", "application/json"), create)
	if body := readBody(t, resp); resp.StatusCode != http.StatusCreated {
		t.Errorf("same-origin create: got %d %s, want 201", resp.StatusCode, body)
	}
	if n := f.up.count(); n != 0 {
		t.Errorf("the upstream got %d requests, want none", n)
	}
}

// TestLoginRedirect: a browser loading a protected page without a
// credential goes to the login page, to come back; a script gets the 401
// naming the login page.
func TestLoginRedirect(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	navs := []struct {
		name, method, path string
		hdr                http.Header
		rd                 string // "" for a 401
	}{
		{"Accept text/html", "GET", "/api/admin/features", http.Header{"Accept": {"text/html,application/xhtml+xml"}}, "/api/admin/features"},
		{"navigate", "GET", "/api/admin/features?x=1&y=a%20b", http.Header{"Sec-Fetch-Mode": {"navigate"}}, "/api/admin/features?x=1&y=a%20b"},
		{"HEAD", "HEAD", "/api/admin/x", http.Header{"Accept": {"text/html"}}, "/api/admin/x"},
		{"escaped path", "GET", "/api/admin/a%20b%22c", http.Header{"Sec-Fetch-Mode": {"navigate"}}, "/api/admin/a%20b%22c"},
		{"the case the client sent", "GET", "/API/Admin/Features", http.Header{"Sec-Fetch-Mode": {"navigate"}}, "/API/Admin/Features"},
		{"stale session", "GET", "/api/admin/features",
			withCookie(strings.Repeat("A", secretLen), "Sec-Fetch-Mode", "navigate"), "/api/admin/features"},
		{"fetch", "GET", "/api/admin/features", http.Header{"Accept": {"application/json"}}, ""},
		{"no Accept", "GET", "/api/admin/features", nil, ""},
		{"fetch mode cors wins over Accept", "GET", "/api/admin/features",
			http.Header{"Sec-Fetch-Mode": {"cors"}, "Accept": {"text/html"}}, ""},
		{"POST is no navigation", "POST", "/api/admin/features", http.Header{"Accept": {"text/html"}}, ""},
	}
	for _, tt := range navs {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := f.send(t, tt.method, tt.path, tt.hdr, "")
			if tt.rd == "" {
				body := wantError(t, resp, http.StatusUnauthorized, NameAuthRequired)
				if body["path"] != "/.latch/login" || body["type"] != "custom" {
					t.Errorf("path, type: got %v, %v; want /.latch/login, custom", body["path"], body["type"])
				}
				if m, _ := body["message"].(string); !strings.Contains(m, "/.latch/login") {
					t.Errorf("message %q does not name /.latch/login", m)
				}
				if d, _ := body["details"].([]any); len(d) == 0 {
					t.Errorf("details: got %v, want some", body["details"])
				}
				return
			}
			readBody(t, resp)
			loc, err := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || err != nil {
				t.Fatalf("got %d Location %q, want 302", resp.StatusCode, resp.Header.Get("Location"))
			}
			if loc.Path != "/.latch/login" || loc.Host != "" || loc.Query().Get("rd") != tt.rd {
				t.Errorf("Location %q: want /.latch/login with rd %q", loc, tt.rd)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", cc)
			}
			// The login page carries rd on to the form.
			page := wantPage(t, f.send(t, "GET", loc.String(), nil, ""), http.StatusOK)
			if got, _ := pageField(page, rdValue); got != tt.rd {
				t.Errorf("the page's rd: got %q, want %q", got, tt.rd)
			}
		})
	}
	t.Run("long path goes to the bare login page", func(t *testing.T) {
		t.Parallel()
		resp := f.send(t, "GET", "/api/admin/"+strings.Repeat("x", 2100), http.Header{"Sec-Fetch-Mode": {"navigate"}}, "")
		readBody(t, resp)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/.latch/login" {
			t.Errorf("got %d Location %q, want 302 to /.latch/login", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("open path is forwarded", func(t *testing.T) {
		t.Parallel()
		resp := f.send(t, "GET", "/api/client/features", http.Header{"Sec-Fetch-Mode": {"navigate"}}, "")
		readBody(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("got %d, want the upstream's 200", resp.StatusCode)
		}
	})
}

// TestLoginRedirectWithoutStore: without a Store latch has no login page,
// so even a navigation gets the 401.
func TestLoginRedirectWithoutStore(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	front := newFront(t, up.srv.URL, nil)
	wantError(t, do(t, "GET", front.URL+"/api/admin/features", http.Header{"Sec-Fetch-Mode": {"navigate"}}),
		http.StatusUnauthorized, NameAuthRequired)
}

// TestLogout: the session ends in the store at once and its cookie is
// cleared; a browser goes to the login page, a script gets 204; a
// cross-site logout is refused and ends nothing.
func TestLogout(t *testing.T) {
	t.Parallel()
	t.Run("browser", func(t *testing.T) {
		t.Parallel()
		f := newSessFront(t, nil, nil)
		secret := f.login(t)
		other := f.login(t) // another session of ada's
		resp := f.send(t, "POST", "/.latch/logout", withCookie(secret, "Sec-Fetch-Site", "same-origin"), "")
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/.latch/login" {
			t.Fatalf("got %d Location %q, want 303 to /.latch/login", resp.StatusCode, resp.Header.Get("Location"))
		}
		c := findCookie(resp, cookieName)
		if c == nil || c.MaxAge >= 0 || c.Value != "" || c.Path != "/" {
			t.Errorf("Set-Cookie %q: want %s cleared (Max-Age<=0, Path=/)", resp.Header.Values("Set-Cookie"), cookieName)
		}
		recs := f.sessions()
		if _, ok := recs[sha256Hex(secret)]; ok {
			t.Error("the session's record is still stored")
		}
		if _, ok := recs[sha256Hex(other)]; !ok || len(recs) != 1 {
			t.Errorf("records %d, want only the other session left", len(recs))
		}
		nav := f.send(t, "GET", "/api/admin/features", withCookie(secret, "Sec-Fetch-Mode", "navigate"), "")
		readBody(t, nav)
		if nav.StatusCode != http.StatusFound {
			t.Errorf("old cookie, navigation: got %d, want 302", nav.StatusCode)
		}
		body := wantError(t, f.send(t, "GET", "/api/admin/features", withCookie(secret), ""), http.StatusUnauthorized, NameAuthRequired)
		if m, _ := body["message"].(string); !strings.Contains(m, errBrowserSessionEnded.Message) {
			t.Errorf("old cookie: message %q, want it to say the session ended", m)
		}
		resp = f.send(t, "GET", "/.latch/me", withCookie(other), "")
		readBody(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("the other session: got %d, want 200", resp.StatusCode)
		}
	})
	t.Run("script", func(t *testing.T) {
		t.Parallel()
		f := newSessFront(t, nil, nil)
		secret := f.login(t)
		resp := f.send(t, "POST", "/.latch/logout", withCookie(secret, "Accept", "application/json"), "")
		if body := readBody(t, resp); resp.StatusCode != http.StatusNoContent || body != "" {
			t.Errorf("got %d %q, want 204 and no body", resp.StatusCode, body)
		}
		if c := findCookie(resp, cookieName); c == nil || c.MaxAge >= 0 {
			t.Errorf("Set-Cookie %q: want the cookie cleared", resp.Header.Values("Set-Cookie"))
		}
		if n := len(f.sessions()); n != 0 {
			t.Errorf("%d records left, want 0", n)
		}
	})
	t.Run("without a session", func(t *testing.T) {
		t.Parallel()
		f := newSessFront(t, nil, nil)
		secret := f.login(t)
		resp := f.send(t, "POST", "/.latch/logout", nil, "")
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("got %d, want 303", resp.StatusCode)
		}
		if _, ok := f.sessions()[sha256Hex(secret)]; !ok {
			t.Error("a logout without a cookie ended another session")
		}
	})
	for _, hdr := range []struct{ k, v string }{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.com"}} {
		t.Run("cross-site "+hdr.k, func(t *testing.T) {
			t.Parallel()
			f := newSessFront(t, nil, nil)
			secret := f.login(t)
			resp := f.send(t, "POST", "/.latch/logout", withCookie(secret, hdr.k, hdr.v), "")
			if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Errorf("Set-Cookie %q on a refused logout", c)
			}
			body := wantError(t, resp, http.StatusForbidden, NameNoAccess)
			if body["message"] != errCrossOrigin.Message {
				t.Errorf("message: got %q, want the cross-origin refusal", body["message"])
			}
			if _, ok := f.sessions()[sha256Hex(secret)]; !ok {
				t.Error("the refused logout ended the session")
			}
			me := f.send(t, "GET", "/.latch/me", withCookie(secret), "")
			readBody(t, me)
			if me.StatusCode != http.StatusOK {
				t.Errorf("/.latch/me after a refused logout: got %d, want 200", me.StatusCode)
			}
		})
	}
}

// wantSessionEnded checks that secret no longer authenticates: a
// navigation goes to the login page and a fetch gets 401.
func (f *sessFront) wantSessionEnded(t *testing.T, secret string) {
	t.Helper()
	resp := f.send(t, "GET", "/api/admin/features", withCookie(secret, "Sec-Fetch-Mode", "navigate"), "")
	readBody(t, resp)
	if resp.StatusCode != http.StatusFound {
		t.Errorf("navigation with the ended session: got %d, want 302", resp.StatusCode)
	}
	wantError(t, f.send(t, "GET", "/.latch/me", withCookie(secret), ""), http.StatusUnauthorized, NameAuthRequired)
	if _, ok := f.sessions()[sha256Hex(secret)]; ok {
		t.Error("the ended session's record is still stored")
	}
}

// wantSessionLive checks that secret authenticates as ada with roles.
func (f *sessFront) wantSessionLive(t *testing.T, secret string, roles ...string) {
	t.Helper()
	before := f.up.count()
	resp := f.send(t, "GET", "/api/admin/features", withCookie(secret), "")
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("live session: got %d %s, want 200", resp.StatusCode, body)
	}
	got := f.up.last(t)
	if f.up.count() != before+1 || got.Header.Get("X-Latch-User") != adaEmail || got.Header.Get("X-Latch-Roles") != strings.Join(roles, ",") {
		t.Errorf("upstream saw user %q roles %q, want %s %v", got.Header.Get("X-Latch-User"), got.Header.Get("X-Latch-Roles"), adaEmail, roles)
	}
}

// TestSessionEndsWithUserChange: a role change, a password reset and the
// user's deletion each end the session at once, through the SessionCache
// (which had the session cached), whether by latch's routes or by a call
// on the cache.
func TestSessionEndsWithUserChange(t *testing.T) {
	t.Parallel()
	admin := http.Header{"Authorization": {rootBearer}, "Content-Type": {"application/json"}}
	tests := []struct {
		name   string
		change func(t *testing.T, f *sessFront)
	}{
		{"roles by PUT /.latch/users/{id}", func(t *testing.T, f *sessFront) {
			resp := f.send(t, "PUT", "/.latch/users/"+adaEmail, admin, `{"roles":["viewer"]}`)
			if body := readBody(t, resp); resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT: got %d %s", resp.StatusCode, body)
			}
		}},
		{"roles by SessionCache.SetRoles", func(t *testing.T, f *sessFront) {
			if _, err := f.cache.SetRoles(context.Background(), "ADA@example.com", []string{"viewer"}); err != nil {
				t.Fatal(err)
			}
		}},
		{"password reset redeemed", func(t *testing.T, f *sessFront) {
			tok := f.st.issue(adaEmail)
			resp := f.send(t, "POST", "/.latch/reset/redeem", http.Header{"Content-Type": {"application/json"}},
				`{"token":"`+tok+`","password":"N3w-Passw0rd!x"}`)
			if body := readBody(t, resp); resp.StatusCode != http.StatusOK {
				t.Fatalf("redeem: got %d %s", resp.StatusCode, body)
			}
		}},
		{"deleted by DELETE /.latch/users/{id}", func(t *testing.T, f *sessFront) {
			resp := f.send(t, "DELETE", "/.latch/users/"+adaEmail, admin, "")
			if body := readBody(t, resp); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE: got %d %s", resp.StatusCode, body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSessFront(t, nil, nil)
			secret := f.login(t)
			f.wantSessionLive(t, secret, "admin") // now cached
			tt.change(t, f)
			f.wantSessionEnded(t, secret)
		})
	}
	t.Run("another user's change leaves it", func(t *testing.T) {
		t.Parallel()
		f := newSessFront(t, nil, nil)
		f.st.add("bea@example.com", "viewer")
		secret := f.login(t)
		f.wantSessionLive(t, secret, "admin")
		if _, err := f.cache.SetRoles(context.Background(), "bea@example.com", []string{"admin"}); err != nil {
			t.Fatal(err)
		}
		f.wantSessionLive(t, secret, "admin")
	})
}

// touchCounter counts TouchBrowserSession calls that reach the store.
type touchCounter struct {
	*memStore
	mu      sync.Mutex
	touches []time.Time
}

func (c *touchCounter) TouchBrowserSession(ctx context.Context, key string, at time.Time) error {
	c.mu.Lock()
	c.touches = append(c.touches, at)
	c.mu.Unlock()
	return c.memStore.TouchBrowserSession(ctx, key, at)
}

func (c *touchCounter) count() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.touches) }

// TestSessionIdleAndAbsolute: with an injected clock, a session used
// within the idle timeout lives on, its LastSeen written at most once per
// touchEvery; one unused for the idle timeout ends and is deleted; one past
// its absolute end ends however busy.
func TestSessionIdleAndAbsolute(t *testing.T) {
	t.Parallel()
	const idle, absolute = time.Hour, 3 * time.Hour
	build := func(t *testing.T) (*sessFront, *touchCounter) {
		var tc *touchCounter
		f := newSessFront(t, func(st *memStore) Users { tc = &touchCounter{memStore: st}; return tc },
			func(o *Options) { o.SessionIdle, o.SessionAbsolute = idle, absolute })
		return f, tc
	}
	lastSeen := func(f *sessFront, secret string) time.Time { return f.sessions()[sha256Hex(secret)].LastSeen }

	t.Run("touched at most once a minute", func(t *testing.T) {
		t.Parallel()
		f, tc := build(t)
		secret := f.login(t)
		// Twenty uses, 20s apart: 400s in all, so a touch at 60s, 120s, ...
		// at most one per minute.
		for i := 1; i <= 20; i++ {
			f.clk.add(20 * time.Second)
			f.wantSessionLive(t, secret, "admin")
			seen := lastSeen(f, secret)
			if now := f.clk.now(); now.Sub(seen) >= time.Minute || seen.After(now) {
				t.Fatalf("after use %d at %v: LastSeen %v, want within the last minute", i, now.Sub(sessStart), seen.Sub(sessStart))
			}
		}
		if n := tc.count(); n < 6 || n > 7 {
			t.Errorf("touches: got %d over 400s of use every 20s, want 6 or 7 (one a minute)", n)
		}
		tc.mu.Lock()
		for i := 1; i < len(tc.touches); i++ {
			if d := tc.touches[i].Sub(tc.touches[i-1]); d < time.Minute {
				t.Errorf("touches %d and %d %v apart, want at least a minute", i-1, i, d)
			}
		}
		tc.mu.Unlock()
	})
	t.Run("touchEvery follows a short idle", func(t *testing.T) {
		t.Parallel()
		var tc *touchCounter
		f := newSessFront(t, func(st *memStore) Users { tc = &touchCounter{memStore: st}; return tc },
			func(o *Options) { o.SessionIdle = 2 * time.Minute })
		secret := f.login(t)
		f.clk.add(29 * time.Second)
		f.wantSessionLive(t, secret, "admin")
		if n := tc.count(); n != 0 {
			t.Errorf("touches before idle/4: got %d, want 0", n)
		}
		f.clk.add(time.Second) // 30s = idle/4
		f.wantSessionLive(t, secret, "admin")
		if n := tc.count(); n != 1 || !lastSeen(f, secret).Equal(sessStart.Add(30*time.Second)) {
			t.Errorf("at idle/4: %d touches, LastSeen +%v; want 1 touch at +30s", n, lastSeen(f, secret).Sub(sessStart))
		}
	})
	t.Run("idle passed", func(t *testing.T) {
		t.Parallel()
		f, _ := build(t)
		secret := f.login(t)
		f.clk.add(2 * time.Minute)
		f.wantSessionLive(t, secret, "admin") // touched at +2m
		seen := lastSeen(f, secret)
		f.clk.add(idle - time.Nanosecond - (f.clk.now().Sub(seen)))
		f.wantSessionLive(t, secret, "admin") // just within
		seen = lastSeen(f, secret)
		f.clk.add(idle - f.clk.now().Sub(seen)) // exactly idle since the last touch
		f.wantSessionEnded(t, secret)
	})
	t.Run("idle passed, never used", func(t *testing.T) {
		t.Parallel()
		f, _ := build(t)
		secret := f.login(t)
		f.clk.add(idle)
		f.wantSessionEnded(t, secret)
	})
	t.Run("absolute passed", func(t *testing.T) {
		t.Parallel()
		f, _ := build(t)
		secret := f.login(t)
		for f.clk.now().Before(sessStart.Add(absolute - 10*time.Minute)) {
			f.clk.add(10 * time.Minute)
			f.wantSessionLive(t, secret, "admin")
		}
		f.clk.add(10*time.Minute - time.Nanosecond)
		f.wantSessionLive(t, secret, "admin") // just before the end
		f.clk.add(time.Nanosecond)            // at the absolute end
		resp := f.send(t, "GET", "/api/admin/features", withCookie(secret, "Sec-Fetch-Mode", "navigate"), "")
		readBody(t, resp)
		if resp.StatusCode != http.StatusFound {
			t.Errorf("past the absolute end: got %d, want 302", resp.StatusCode)
		}
		wantError(t, f.send(t, "GET", "/.latch/me", withCookie(secret), ""), http.StatusUnauthorized, NameAuthRequired)
	})
}

// TestMalformedSessionCookie: a cookie value of the wrong shape is ignored:
// anonymous on an open path (and not forwarded), 401 or 302 on a protected
// one, never a 500; a well-formed unknown one says the session ended.
func TestMalformedSessionCookie(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	secret := f.login(t)
	values := []string{
		"",
		"x",
		secret[:secretLen-1],
		secret + "A",
		secret[:secretLen-1] + ".",
		secret[:secretLen-1] + "+",
		secret[:secretLen-1] + "=",
		secret[:secretLen-1] + "%",
		`"` + secret[:secretLen-2] + `"`,
		strings.Repeat("é", 21) + "a",
		strings.Repeat("x", 5000),
	}
	for i, v := range values {
		hdr := func(kv ...string) http.Header {
			h := http.Header{"Cookie": {"a=1; " + cookieName + "=" + v}}
			for i := 0; i+1 < len(kv); i += 2 {
				h.Add(kv[i], kv[i+1])
			}
			return h
		}
		body := wantError(t, f.send(t, "GET", "/api/admin/features", hdr(), ""), http.StatusUnauthorized, NameAuthRequired)
		if m, _ := body["message"].(string); !strings.HasPrefix(m, msgNoCredential) {
			t.Errorf("value %d: message %q, want the no-credential message", i, m)
		}
		resp := f.send(t, "GET", "/api/admin/features", hdr("Sec-Fetch-Mode", "navigate"), "")
		readBody(t, resp)
		if resp.StatusCode != http.StatusFound {
			t.Errorf("value %d, navigation: got %d, want 302", i, resp.StatusCode)
		}
		before := f.up.count()
		resp = f.send(t, "POST", "/api/client/metrics", hdr(), "{}")
		readBody(t, resp)
		if resp.StatusCode != http.StatusOK || f.up.count() != before+1 {
			t.Fatalf("value %d, open path: got %d, want forwarded", i, resp.StatusCode)
		}
		got := f.up.last(t)
		if u := got.Header.Get("X-Latch-User"); u != "" {
			t.Errorf("value %d: X-Latch-User %q, want anonymous", i, u)
		}
		if c := got.Header.Values("Cookie"); !slices.Equal(c, []string{"a=1"}) {
			t.Errorf("value %d: upstream Cookie %q, want [a=1]", i, c)
		}
	}
	// Well formed, but no session of latch's.
	unknown := strings.Repeat("A", secretLen)
	body := wantError(t, f.send(t, "GET", "/api/admin/features", withCookie(unknown), ""), http.StatusUnauthorized, NameAuthRequired)
	if m, _ := body["message"].(string); !strings.Contains(m, errBrowserSessionEnded.Message) {
		t.Errorf("unknown session: message %q, want it to say the session ended", m)
	}
	// A bad copy before the good one does not hide it.
	resp := f.send(t, "GET", "/.latch/me", http.Header{"Cookie": {cookieName + "=bad; " + cookieName + "=" + secret}}, "")
	readBody(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("bad then good cookie: got %d, want 200", resp.StatusCode)
	}
}

// TestNamespace: under /.latch, what no route matches is 404 or 405 and
// never forwarded; ASCII case does not matter; another namespace moves
// everything, and /.latch is then the upstream's.
func TestNamespace(t *testing.T) {
	t.Parallel()
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		f := newSessFront(t, nil, nil)
		wantError(t, f.send(t, "GET", "/.latch/nope", nil, ""), http.StatusNotFound, NameNotFound)
		wantError(t, f.send(t, "GET", "/.latch", nil, ""), http.StatusNotFound, NameNotFound)
		wantError(t, f.send(t, "GET", "/.latch/", nil, ""), http.StatusNotFound, NameNotFound)
		wantError(t, f.send(t, "POST", "/.latch/login/x", nil, "{}"), http.StatusNotFound, NameNotFound)
		resp := f.send(t, "GET", "/.latch/logout", nil, "")
		body := wantError(t, resp, http.StatusMethodNotAllowed, NameMethodNotAllowed)
		if m, _ := body["message"].(string); !strings.Contains(m, "POST") {
			t.Errorf("405 message %q does not name POST", m)
		}
		wantError(t, f.send(t, "DELETE", "/.latch/me", nil, ""), http.StatusMethodNotAllowed, NameMethodNotAllowed)
		for _, p := range []string{"/.LATCH/login", "/.Latch/Login", "/.latch/LOGIN?rd=%2Fx"} {
			page := wantPage(t, f.send(t, "GET", p, nil, ""), http.StatusOK)
			if !strings.Contains(page, `action="/.latch/login"`) {
				t.Errorf("%s: the form does not post to /.latch/login", p)
			}
		}
		resp = f.send(t, "POST", "/.LATCH/Login", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			url.Values{"email": {adaEmail}, "password": {adaPassword}}.Encode())
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther || findCookie(resp, cookieName) == nil {
			t.Errorf("POST /.LATCH/Login: got %d, want 303 with a cookie", resp.StatusCode)
		}
		if n := f.up.count(); n != 0 {
			t.Errorf("the upstream got %d requests, want none", n)
		}
		// Only the namespace itself and below: a sibling is the upstream's.
		resp = f.send(t, "GET", "/.latchy/login", nil, "")
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != "upstream saw /.latchy/login" {
			t.Errorf("/.latchy/login: got %d %q, want forwarded", resp.StatusCode, body)
		}
	})
	t.Run("custom", func(t *testing.T) {
		t.Parallel()
		f := newSessFront(t, nil, func(o *Options) { o.Namespace = "/_Auth/" })
		page := wantPage(t, f.send(t, "GET", "/_auth/login?rd=%2Fx", nil, ""), http.StatusOK)
		if !strings.Contains(page, `action="/_auth/login"`) {
			t.Error("the form does not post to /_auth/login")
		}
		resp := f.send(t, "POST", "/_auth/login", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			url.Values{"email": {adaEmail}, "password": {adaPassword}, "rd": {"/x"}}.Encode())
		readBody(t, resp)
		c := findCookie(resp, cookieName)
		if resp.StatusCode != http.StatusSeeOther || c == nil || resp.Header.Get("Location") != "/x" {
			t.Fatalf("POST /_auth/login: got %d Location %q, want 303 to /x with a cookie", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp = f.send(t, "GET", "/_auth/me", withCookie(c.Value), "")
		readBody(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("/_auth/me: got %d, want 200", resp.StatusCode)
		}
		wantError(t, f.send(t, "GET", "/_auth/nope", nil, ""), http.StatusNotFound, NameNotFound)
		resp = f.send(t, "GET", "/api/admin/features?q=1", http.Header{"Sec-Fetch-Mode": {"navigate"}}, "")
		readBody(t, resp)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/_auth/login?rd=") {
			t.Errorf("navigation: got %d Location %q, want 302 to /_auth/login", resp.StatusCode, loc)
		}
		body := wantError(t, f.send(t, "GET", "/api/admin/features", nil, ""), http.StatusUnauthorized, NameAuthRequired)
		if body["path"] != "/_auth/login" {
			t.Errorf("401 path: got %v, want /_auth/login", body["path"])
		}
		resp = f.send(t, "POST", "/_auth/logout", withCookie(c.Value, "Accept", "text/html"), "")
		readBody(t, resp)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/_auth/login" {
			t.Errorf("logout: got %d Location %q, want 303 to /_auth/login", resp.StatusCode, resp.Header.Get("Location"))
		}
		if n := f.up.count(); n != 0 {
			t.Errorf("the upstream got %d requests before /.latch, want none", n)
		}
		// /.latch is now the upstream's.
		for _, p := range []string{"/.latch/login", "/.latch/me", "/.latch/nope"} {
			resp := f.send(t, "GET", p, nil, "")
			if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != "upstream saw "+p {
				t.Errorf("%s: got %d %q, want forwarded", p, resp.StatusCode, body)
			}
		}
	})
}

// TestFormerOwnRoutesForwarded: the seed's user-admin search and simple
// login are the upstream's now; the search is still protected.
func TestFormerOwnRoutesForwarded(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	wantError(t, f.send(t, "GET", "/api/admin/user-admin/search?q=ada", nil, ""), http.StatusUnauthorized, NameAuthRequired)
	if n := f.up.count(); n != 0 {
		t.Fatalf("an unauthenticated search reached the upstream (%d requests)", n)
	}
	resp := f.send(t, "GET", "/api/admin/user-admin/search?q=ada", http.Header{"Authorization": {rootBearer}}, "")
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != "upstream saw /api/admin/user-admin/search" {
		t.Errorf("search: got %d %q, want forwarded", resp.StatusCode, body)
	}
	if got := f.up.last(t); got.URL.RawQuery != "q=ada" || got.Header.Get("X-Latch-User") != "root@example.com" {
		t.Errorf("upstream got query %q user %q", got.URL.RawQuery, got.Header.Get("X-Latch-User"))
	}
	resp = f.send(t, "POST", "/auth/simple/login", http.Header{"Content-Type": {"application/json"}},
		`{"username":"ada@example.com","password":"x"}`)
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != "upstream saw /auth/simple/login" {
		t.Errorf("/auth/simple/login: got %d %q, want forwarded", resp.StatusCode, body)
	}
	if n := len(f.sessions()); n != 0 {
		t.Errorf("%d sessions, want none", n)
	}
}
