package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// panicStore is a Store whose every method panics: a test that sees a 500
// knows a local handler ran. It satisfies Store whatever methods Store has.
type panicStore struct{ Store }

// storeFront serves a Handler that answers latch's own routes (with a
// panicStore), in front of up.
func storeFront(t *testing.T, up string, mod func(*Options)) *httptest.Server {
	t.Helper()
	return newFront(t, up, func(o *Options) {
		o.Store = panicStore{}
		o.Sessions = noSessions{}
		o.Authenticator = apiTokenAuth{}
		o.ResetURL = "http://latch.example/reset-password"
		if mod != nil {
			mod(o)
		}
	})
}

type noSessions struct{ Sessions }

// apiTokenAuth is fakeAuth with its identities marked as API tokens, which
// skip the session check (noSessions would panic).
type apiTokenAuth struct{ fakeAuth }

func (a apiTokenAuth) Authenticate(ctx context.Context, h http.Header) (Identity, *Denial, error) {
	id, d, err := a.fakeAuth.Authenticate(ctx, h)
	id.Kind = "api_token"
	return id, d, err
}

// Finding 1: a Unicode letter in the path never reaches latch's own routes
// or gets past the rules. Before the fix, /ap%C4%B0/admin/user-admin was
// routed to the user list (Unicode lower-casing) while the policy and the
// protection saw an open path.
func TestUnicodeSpellingsOfOwnRoutesNeedCredentials(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	front := storeFront(t, up.srv.URL, nil)
	for _, tt := range []struct{ method, path string }{
		{"GET", "/ap%C4%B0/admin/user-admin"},                      // U+0130 İ
		{"POST", "/ap%C4%B0/admin/user-admin/reset-password"},      //
		{"DELETE", "/api/adm%C4%B1n/user-admin/admin@example.com"}, // U+0131 ı
		{"GET", "/api/admin/user-%E2%84%AAdmin"},                   // not a route; stays open
		{"PUT", "/api/admin/u%C5%BFer-admin/x@example.com"},        // U+017F ſ
		{"GET", "/API/ADMIN/USER-ADMIN"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			before := up.count()
			resp := do(t, tt.method, front.URL+tt.path, nil)
			wantError(t, resp, http.StatusUnauthorized, NameAuthRequired)
			if up.count() != before {
				t.Error("the upstream received an unauthenticated request")
			}
		})
	}
}

// recordingDecider denies every reading that names admin@example.com and
// allows the rest; it records what it was asked.
type recordingDecider struct {
	mu    sync.Mutex
	calls []string
}

func (d *recordingDecider) Decide(sub string, roles []string, methods, readings []string) (Decision, error) {
	d.mu.Lock()
	d.calls = append(d.calls, pairs(methods, readings)...)
	d.mu.Unlock()
	return eachPair(methods, readings, func(method, p string) (Decision, error) {
		if strings.Contains(p, "admin@example.com") {
			return Decision{Rule: []string{"role:admin", "/.latch/users/admin@example.com", "*", "deny"}}, nil
		}
		return Decision{Allow: true}, nil
	})
}

func (d *recordingDecider) asked() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}

// Finding 1, inside the prefix: a rule denying admin@example.com also
// denies its spellings with a Unicode letter, and the handler's path
// parameter is the ASCII-folded canonical path the policy saw.
func TestUnicodeSpellingDeniedLikeTheRule(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	d := &recordingDecider{}
	front := storeFront(t, up.srv.URL, func(o *Options) { o.Decider = d })
	auth := http.Header{"Authorization": {"Bearer a@example.com:admin"}}
	for _, p := range []string{
		"/.latch/users/adm%C4%B0n@example.com",
		"/.latch/users/ADMIN@example.com",
		"/.latch/users/admin%40example.com",    // '@' escaped: decoded, as the handler reads it
		"/.latch/users/admin@exampl%C4%98.com", // U+0118 Ę: no ASCII reading, still not admin@
	} {
		resp := do(t, "GET", front.URL+p, auth)
		if strings.Contains(p, "%C4%98") {
			// No reading names admin@example.com: allowed, and the handler
			// runs (panicStore: 500) with the path as the policy saw it.
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("%s: status %d, want the handler to run (500 from panicStore)", p, resp.StatusCode)
			}
			continue
		}
		wantError(t, resp, http.StatusForbidden, NameNoAccess)
	}
	asked := strings.Join(d.asked(), "\n")
	if !strings.Contains(asked, "GET /.latch/users/admin@example.com") {
		t.Errorf("the policy was not asked about the Unicode reading; asked:\n%s", asked)
	}
}

// Finding 2: paths that a Unicode-folding upstream reads as protected are
// protected.
func TestUnicodeFoldedPathsAreProtected(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	front := newFront(t, up.srv.URL, func(o *Options) { o.Protect = []string{"/api/admin/", "/secret/"} })
	for _, p := range []string{
		"/ap%C4%B0/admin/secret", "/ap%C4%B1/admin/secret", "/api/%E2%84%AAdmin/../admin/x",
		"/%C5%BFecret/x", "/%C5%BFECRET", "/%EF%BD%93ecret/x", "/api/admin%EF%BC%8Fx",
		"/api/admin%20/x", "/api/admin./x", "/%20secret/x", "/secret.%20./x", "/public/..%20/api/admin/x",
		// U+00A0 NO-BREAK SPACE is a space in NFKC.
		"/api/admin%C2%A0/x",
		// Dots that climb above the root are clamped there.
		"/%EF%BC%8E%EF%BC%8E/api/admin/x", "/..%20/api/admin/x", "/.../api/admin/x",
	} {
		before := up.count()
		resp := do(t, "GET", front.URL+p, nil)
		wantError(t, resp, http.StatusUnauthorized, NameAuthRequired)
		if up.count() != before {
			t.Errorf("%s reached the upstream without a credential", p)
		}
	}
	// A Unicode letter with no ASCII reading leaves the path open.
	resp := do(t, "GET", front.URL+"/ap%C4%98/admin/x", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/ap%%C4%%98/admin/x: status %d, want 200 (forwarded)", resp.StatusCode)
	}
}

// Every rune that Go's unicode tables fold to an ASCII letter has that
// reading (the table is derived, not written by hand).
func TestASCIIReadingCoversFoldTables(t *testing.T) {
	t.Parallel()
	n := 0
	for _, r := range foldRunes() {
		want := string(rune(lowerByte(byte(asciiMember(r)))))
		if got := asciiReading(r); got != want {
			t.Errorf("asciiReading(%U) = %q, want %q", r, got, want)
		}
		n++
	}
	if n < 4 { // İ, ı, ſ, K at least
		t.Fatalf("only %d runes fold to ASCII; the table walk is broken", n)
	}
}

var foldRunesOnce = sync.OnceValue(func() []rune {
	var out []rune
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if asciiMember(r) != 0 {
			out = append(out, r)
		}
	}
	return out
})

func foldRunes() []rune { return foldRunesOnce() }

// asciiMember is an ASCII letter that r folds or maps to, or 0.
func asciiMember(r rune) rune {
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return f
		}
	}
	for _, f := range []rune{unicode.ToLower(r), unicode.ToUpper(r), unicode.ToTitle(r)} {
		if f < utf8.RuneSelf {
			return f
		}
	}
	return 0
}

// Finding 4: latch's own privileged routes need a credential whatever
// policy.protect lists.
func TestOwnRoutesProtectedWhateverProtectSays(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	front := storeFront(t, up.srv.URL, func(o *Options) { o.Protect = []string{"/admin/"} })
	for _, tt := range []struct{ method, path string }{
		{"GET", "/.latch/users"},
		{"POST", "/.latch/users"},
		{"POST", "/api/admin/user-admin/reset-password"},
		{"DELETE", "/.latch/users/a@example.com"},
	} {
		wantError(t, do(t, tt.method, front.URL+tt.path, nil), http.StatusUnauthorized, NameAuthRequired)
	}
	if got := ProtectedPrefixes([]string{"/admin/"}, ""); strings.Join(got, " ") != "/admin/ /api/admin/user-admin/reset-password /.latch/users" {
		t.Errorf("ProtectedPrefixes = %q", got)
	}
}

// With policy.protect ["/"], latch's own open routes (login, logout, the
// reset routes) stay open: otherwise nobody could sign in, and the login
// page would redirect to itself. Its privileged routes stay protected.
func TestLoginReachableWhenAllProtected(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, func(o *Options) { o.Protect = []string{"/"} })
	resp := f.send(t, "GET", "/.latch/login", http.Header{"Sec-Fetch-Mode": {"navigate"}}, "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /.latch/login: got %d Location %q, want the page", resp.StatusCode, resp.Header.Get("Location"))
	}
	readBody(t, resp)
	secret := f.login(t)
	f.wantSessionLive(t, secret, "admin")
	for _, path := range []string{"/.latch/users", "/api/admin/user-admin/reset-password", "/anything"} {
		resp := f.send(t, "POST", path, nil, "")
		readBody(t, resp)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous POST %s: got %d, want 401 (still protected)", path, resp.StatusCode)
		}
	}
}

// Finding 5: a method override is decided like the method it names.
func TestMethodOverrideIsDecided(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	front := newFront(t, up.srv.URL, nil)
	viewer := "Bearer v@example.com:viewer"
	for _, tt := range []struct {
		name, method, path string
		hdr                http.Header
		status             int
	}{
		{"header", "GET", "/api/admin/features", http.Header{"X-Http-Method-Override": {"DELETE"}}, 403},
		{"x-http-method", "GET", "/api/admin/features", http.Header{"X-Http-Method": {"delete"}}, 403},
		{"x-method-override", "GET", "/api/admin/features", http.Header{"X-Method-Override": {"PUT"}}, 403},
		{"underscore variant", "GET", "/api/admin/features", http.Header{"X_http_method_override": {"DELETE"}}, 403},
		{"list", "GET", "/api/admin/features", http.Header{"X-Http-Method-Override": {"GET, DELETE"}}, 403},
		{"query", "GET", "/api/admin/features?_method=DELETE", nil, 403},
		{"query lower-case value", "GET", "/api/admin/features?a=1&_method=delete", nil, 403},
		{"query encoded key", "GET", "/api/admin/features?%5Fmethod=DELETE", nil, 403},
		{"query array", "GET", "/api/admin/features?_method[]=DELETE", nil, 403},
		{"query semicolon", "GET", "/api/admin/features?x=1;_method=PATCH", nil, 403},
		{"override to GET is allowed", "GET", "/api/admin/features?_method=GET", nil, 200},
		{"not a token", "GET", "/api/admin/features", http.Header{"X-Http-Method-Override": {"DE LETE"}}, 400},
		{"override to TRACE", "GET", "/api/admin/features?_method=TRACE", nil, 400},
		{"too many overrides", "GET", "/api/admin/features", http.Header{"X-Http-Method-Override": {"GET,A,B,C,D,E,F"}}, 400},
		{"query PHP dot", "GET", "/api/admin/features?.method=DELETE", nil, 403},
		{"query PHP encoded dot", "GET", "/api/admin/features?%2Emethod=DELETE", nil, 403},
		{"query PHP leading space", "GET", "/api/admin/features?+_method=DELETE", nil, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Authorization": {viewer}}
			for k, v := range tt.hdr {
				h[k] = v
			}
			before := up.count()
			resp := do(t, tt.method, front.URL+tt.path, h)
			if tt.status == 200 {
				resp.Body.Close()
				if resp.StatusCode != 200 || up.count() != before+1 {
					t.Fatalf("status %d, forwarded %d; want 200 and forwarded", resp.StatusCode, up.count()-before)
				}
				return
			}
			name := NameNoAccess
			if tt.status == 400 {
				name = NameBadData
			}
			wantError(t, resp, tt.status, name)
			if up.count() != before {
				t.Error("the upstream received the request")
			}
		})
	}
}

// Finding 6 and 7: methods that are not upper-case tokens are refused, and
// CONNECT and TRACE are answered with 405.
func TestMethodsRefused(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	front := newFront(t, up.srv.URL, nil)
	for _, tt := range []struct {
		method string
		status int
		name   string
	}{
		{"delete", 400, NameBadData},
		{"Delete", 400, NameBadData},
		{"TRACE", 405, NameMethodNotAllowed},
	} {
		wantError(t, do(t, tt.method, front.URL+"/public", nil), tt.status, tt.name)
	}
	// CONNECT through a raw connection: the Go client would tunnel.
	resp := rawRequest(t, front.URL, "CONNECT /public HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	wantError(t, resp, 405, NameMethodNotAllowed)
	if up.count() != 0 {
		t.Errorf("the upstream received %d refused requests", up.count())
	}
}

func rawRequest(t *testing.T, base, raw string) *http.Response {
	t.Helper()
	u := mustURL(t, base)
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
	return resp
}

// Finding 7: a body on a method that defines none is forwarded on a
// connection that is closed after it, so an upstream that leaves it unread
// never reads it as a next request.
func TestBodyOnBodylessMethodClosesUpstreamConnection(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	front := newFront(t, up.srv.URL, nil)
	for _, m := range []string{"GET", "DELETE", "OPTIONS"} {
		req, _ := http.NewRequest(m, front.URL+"/public", strings.NewReader("GET /api/admin/secret HTTP/1.1\r\nHost: x\r\n\r\n"))
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := up.last(t); !got.Close {
			t.Errorf("%s with a body: forwarded with Close=%v, want a connection closed after it", m, got.Close)
		}
	}
	// Without a body, and with a method that defines one, connections are reused.
	for _, m := range []string{"GET", "POST"} {
		var body io.Reader
		if m == "POST" {
			body = strings.NewReader("x=1")
		}
		req, _ := http.NewRequest(m, front.URL+"/public", body)
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if up.last(t).Close {
			t.Errorf("%s: forwarded on a closing connection", m)
		}
	}
}

// Finding 12: a trickled body does not hold the upstream for ever.
func TestStalledBodyEndsTheForwardedRequest(t *testing.T) {
	t.Parallel()
	readErr := make(chan error, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}))
	t.Cleanup(up.Close)
	front := newFront(t, up.URL, func(o *Options) { o.BodyIdleTimeout = 50 * time.Millisecond })
	u := mustURL(t, front.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Announce 1000 bytes, send 3, then stall.
	fmt.Fprintf(c, "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("the upstream read a complete body from a stalled client")
		}
	case <-time.After(30 * time.Second): // a bound on the wait, not a speed target
		t.Fatal("the upstream is still reading a stalled body")
	}
	// latch answers and lets go of the connection too, rather than
	// draining the rest of the body for ever.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatalf("no answer to the stalled request: %v", err)
	}
}

// Finding 12 on latch's own routes: a stalled body on the anonymous login
// route is answered too.
func TestStalledBodyOnOwnRoute(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	front := storeFront(t, up.srv.URL, func(o *Options) { o.BodyIdleTimeout = 50 * time.Millisecond })
	u := mustURL(t, front.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /.latch/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a bound on the wait
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled login body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("stalled login body: status %d, want a refusal", resp.StatusCode)
	}
}

// Finding 15: headers that let a client replace the routed path are never
// forwarded.
func TestRewriteHeadersStripped(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	front := newFront(t, up.srv.URL, nil)
	h := http.Header{
		"X-Original-Url": {"/api/admin/secret"}, "X_rewrite_url": {"/api/admin/secret"},
		"X-Forwarded-Prefix": {"/api/admin"}, "x-forwarded-path": {"/api/admin/secret"},
		"X-Original-Uri": {"/api/admin/secret"}, "X-Forwarded-Uri": {"/api/admin/secret"},
		"X_envoy_original_path": {"/api/admin/secret"},
	}
	do(t, "GET", front.URL+"/public", h).Body.Close()
	got := up.last(t)
	for sent := range h {
		for k := range got.Header {
			if matchesAny(k, []string{sent}) {
				t.Errorf("forwarded %s: %q", k, got.Header[k])
			}
		}
	}
}

// countingAuth accepts "Bearer ok" as an admin and counts its calls.
type countingAuth struct{ n atomic.Int64 }

func (a *countingAuth) Authenticate(ctx context.Context, h http.Header) (Identity, *Denial, error) {
	a.n.Add(1)
	if h.Get("Authorization") == "Bearer ok" {
		return Identity{Subject: "a@example.com", Roles: []string{"admin"}, Kind: "api_token"}, nil, nil
	}
	return Identity{}, &Denial{Reason: "missing", Message: "no credential"}, nil
}

// denyAll denies every request and records the pairs it was asked about.
type denyAll struct {
	mu    sync.Mutex
	paths map[string]bool
}

func (d *denyAll) Decide(sub string, roles []string, methods, readings []string) (Decision, error) {
	d.mu.Lock()
	for _, p := range pairs(methods, readings) {
		d.paths[p] = true
	}
	d.mu.Unlock()
	return eachPair(methods, readings, func(string, string) (Decision, error) { return Decision{}, nil })
}

type reachTransport struct{ n atomic.Int64 }

func (t *reachTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

// oracleProtected reports whether a backend that reads the decoded path
// with Unicode case rules (strings.ToLower, strings.ToUpper, or an ASCII
// member of each rune's fold orbit), cleans it and compares prefixes
// without regard to case, finds it under one of the prefixes. It is
// written from the standard library, apart from latch's code.
func oracleProtected(escaped string, prefixes []string) bool {
	dec, err := url.PathUnescape(escaped)
	if err != nil {
		return false
	}
	var member strings.Builder
	for _, r := range dec {
		if m := asciiMember(r); m != 0 {
			r = m
		}
		member.WriteRune(r)
	}
	// A backend that trims spaces around segments and dots after them
	// (Windows, IIS, Spring's AntPathMatcher) reads each variant trimmed.
	trim := func(p string) string {
		segs := strings.Split(p, "/")
		for i, s := range segs {
			if t := strings.TrimRight(strings.TrimLeft(s, " "), " ."); t != "" || s == "" {
				if s != "." && s != ".." {
					segs[i] = t
				}
			}
		}
		return strings.Join(segs, "/")
	}
	variants := []string{dec, strings.ToLower(dec), strings.ToUpper(dec), member.String()}
	for _, v := range variants[:4] {
		variants = append(variants, trim(v))
	}
	for _, v := range variants {
		c := path.Clean(v)
		for _, p := range prefixes {
			if strings.HasPrefix(strings.ToLower(c+"/"), strings.ToLower(p)) {
				return true
			}
		}
	}
	return false
}

// FuzzRouting checks that routing, protection and the decision agree: for
// any path, if latch would answer it itself or any Unicode case reading of
// it is protected, an anonymous request is refused before anything runs,
// and an authenticated one is decided on every reading before anything
// runs. Bytes 0x01-0x1f of the input are replaced by runes from Go's fold
// tables (percent-encoded), so the fuzzer explores them.
func FuzzRouting(f *testing.F) {
	for _, s := range []string{"/.latch/users", "/ap\x01/admin/user-admin/reset-password", "/\x02ecret/x",
		"/.latch/users/adm\x03n@example.com", "/admin/x", "/API/Admin/User-Admin/x", "/public/../admin/",
		"/admin%20/x", "/admin./x", "/x/..%20/admin/", "/ admin/"} {
		f.Add(s, uint16(0))
	}
	protect := []string{"/admin/", "/secret/"}
	oracle := ProtectedPrefixes(protect, "")
	auth := &countingAuth{}
	dec := &denyAll{paths: map[string]bool{}}
	rt := &reachTransport{}
	h, err := New(Options{Upstream: mustURL(f, "http://upstream.invalid"), Transport: rt, Authenticator: auth,
		Decider: dec, Protect: protect, Store: panicStore{}, Sessions: noSessions{}, ResetURL: "http://x/reset"})
	if err != nil {
		f.Fatal(err)
	}
	runes := foldRunes()
	methodsList := []string{"GET", "POST", "PUT", "DELETE"}
	f.Fuzz(func(t *testing.T, in string, pick uint16) {
		var b strings.Builder
		k := int(pick)
		for i := 0; i < len(in); i++ {
			c := in[i]
			if c >= 1 && c < 0x20 {
				r := runes[(int(c)*7919+k)%len(runes)]
				b.WriteString(url.PathEscape(string(r)))
				k++
				continue
			}
			b.WriteByte(c)
		}
		u, err := url.Parse(b.String())
		if err != nil || u.Host != "" || u.Scheme != "" || u.RawQuery != "" || u.Fragment != "" {
			return
		}
		escaped := u.EscapedPath()
		method := methodsList[int(pick)%len(methodsList)]
		tg, err := Resolve(escaped, oracle)
		if err != nil {
			return // refused with 400 before anything (TestRefusedPathNeverForwarded)
		}
		must := oracleProtected(escaped, oracle)
		if must && !tg.Protected {
			t.Fatalf("%s: a Unicode case reading is protected, but Resolve says open (readings %q)", escaped, tg.Readings)
		}
		if !tg.Protected {
			return
		}
		for _, bearer := range []string{"", "Bearer ok"} {
			r := httptest.NewRequest(method, "http://latch.example/", nil)
			r.URL = u
			r.RequestURI = u.RequestURI()
			if bearer != "" {
				r.Header.Set("Authorization", bearer)
			}
			before, authBefore := rt.n.Load(), auth.n.Load()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if rt.n.Load() != before {
				t.Fatalf("%s %s (auth %q): forwarded although protected and denied", method, escaped, bearer)
			}
			if w.Code == http.StatusInternalServerError {
				t.Fatalf("%s %s (auth %q): a local handler ran although protected and denied", method, escaped, bearer)
			}
			if bearer != "" && auth.n.Load() == authBefore {
				t.Fatalf("%s %s: not authenticated", method, escaped)
			}
			want := http.StatusUnauthorized
			if bearer != "" {
				want = http.StatusForbidden
			}
			if w.Code != want {
				t.Fatalf("%s %s (auth %q): status %d, want %d", method, escaped, bearer, w.Code, want)
			}
		}
		dec.mu.Lock()
		defer dec.mu.Unlock()
		// The policy decides whether every reading is allowed; it must be
		// asked about each of them.
		for _, p := range tg.Readings {
			if !dec.paths[method+" "+p] {
				t.Fatalf("%s %s: the policy was not asked about %q", method, escaped, p)
			}
		}
		if len(dec.paths) > 100000 {
			clear(dec.paths)
		}
	})
}

// methodDecider allows the listed methods on every path.
type methodDecider map[string]bool

func (d methodDecider) Decide(sub string, roles []string, methods, readings []string) (Decision, error) {
	return eachPair(methods, readings, func(method, _ string) (Decision, error) { return Decision{Allow: d[method]}, nil })
}

// Finding 5, form bodies: a _method field of a POST's form body is decided
// too, and the body reaches the upstream unchanged.
func TestFormBodyOverrideIsDecided(t *testing.T) {
	t.Parallel()
	bodies := make(chan string, 16)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
	}))
	t.Cleanup(up.Close)
	front := newFront(t, up.URL, func(o *Options) { o.Decider = methodDecider{"GET": true, "POST": true} })
	multi := func(field, value string) (string, string) {
		var b strings.Builder
		mw := multipart.NewWriter(&b)
		mw.WriteField("title", "x")
		mw.WriteField(field, value)
		mw.Close()
		return mw.FormDataContentType(), b.String()
	}
	mct, mDelete := multi("_method", "delete")
	mct2, mTitle := multi("note", "hello")
	big := "a=" + strings.Repeat("x", maxFormScan)
	for _, tt := range []struct {
		name, ctype, body string
		status            int
	}{
		{"urlencoded", "application/x-www-form-urlencoded", "a=1&_method=DELETE", 403},
		{"urlencoded charset", "application/x-www-form-urlencoded; charset=utf-8", "_METHOD=put", 403},
		{"multipart", mct, mDelete, 403},
		{"urlencoded without", "application/x-www-form-urlencoded", "a=1&b=2", 200},
		{"multipart without", mct2, mTitle, 200},
		{"multipart malformed", mct, mTitle, 400},
		{"json is not read", "application/json", `{"_method":"DELETE"}`, 200},
		{"no content type", "", "_method=DELETE", 403},
		{"bad media type parameter", "application/x-www-form-urlencoded; x", "_method=DELETE", 403},
		{"media type list", "application/x-www-form-urlencoded, text/plain", "_method=DELETE", 403},
		{"PHP dot in a body", "application/x-www-form-urlencoded", ".method=DELETE", 403},
		{"multipart/mixed", strings.Replace(mct, "multipart/form-data", "multipart/mixed", 1), mDelete, 403},
		{"multipart without boundary", "multipart/form-data", mDelete, 400},
		{"too large to read", "application/x-www-form-urlencoded", big, 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", front.URL+"/api/admin/features", strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			req.Header.Set("Authorization", "Bearer e@example.com:editor")
			resp, err := testClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if tt.status != 200 {
				name := map[int]string{400: NameBadData, 403: NameNoAccess, 413: NamePayloadTooLarge}[tt.status]
				wantError(t, resp, tt.status, name)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if got := <-bodies; got != tt.body {
				t.Errorf("the upstream got body %q, want %q", got, tt.body)
			}
		})
	}
}
