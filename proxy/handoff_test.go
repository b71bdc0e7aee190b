package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// What the upstream receives for an authenticated request, by handoff
// mode; the fronts are sessFronts (browser_test.go), so a session cookie
// is one of the credentials.

// devToken is an Authorization latch does not recognise (an Unleash
// client token): fakeAuth refuses it as malformed.
const devToken = "*:development.abc"

// mintCall is one call of a fakeUpstream.
type mintCall struct {
	sub   string
	roles []string
	aud   string
	ttl   time.Duration
}

// fakeUpstream is an UpstreamMinter recording its calls; its tokens are
// "up-<n>-<sub>". When err is set it fails with it.
type fakeUpstream struct {
	mu    sync.Mutex
	calls []mintCall
	err   error
}

func (m *fakeUpstream) MintUpstream(sub string, roles []string, audience string, ttl time.Duration) (string, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, mintCall{sub: sub, roles: slices.Clone(roles), aud: audience, ttl: ttl})
	if m.err != nil {
		return "", time.Time{}, m.err
	}
	return fmt.Sprintf("up-%d-%s", len(m.calls), sub), time.Unix(2000000000, 0), nil
}

// last returns the latest call and the number of calls.
func (m *fakeUpstream) last() (mintCall, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.calls) == 0 {
		return mintCall{}, 0
	}
	return m.calls[len(m.calls)-1], len(m.calls)
}

// forwarded sends the request and returns what the upstream received,
// failing unless it was forwarded and answered 200.
func (f *sessFront) forwarded(t *testing.T, method, path string, hdr http.Header) *http.Request {
	t.Helper()
	before := f.up.count()
	resp := f.send(t, method, path, hdr, "")
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || f.up.count() != before+1 {
		t.Fatalf("%s %s: got %d %q, want it forwarded", method, path, resp.StatusCode, body)
	}
	return f.up.last(t)
}

// wantUpstream checks the identity headers and Authorization lines the
// upstream received.
func wantUpstream(t *testing.T, got *http.Request, user, roles string, authz ...string) {
	t.Helper()
	if u, r := got.Header.Get("X-Latch-User"), got.Header.Get("X-Latch-Roles"); u != user || r != roles {
		t.Errorf("identity headers: got %q, %q; want %q, %q", u, r, user, roles)
	}
	if _, ok := got.Header["X-Latch-User"]; !ok && user != "" {
		t.Error("no X-Latch-User header")
	} else if ok && user == "" {
		t.Errorf("X-Latch-User %q on an anonymous request", got.Header.Get("X-Latch-User"))
	}
	if a := got.Header.Values("Authorization"); !slices.Equal(a, authz) {
		t.Errorf("Authorization: got %q, want %q", a, authz)
	}
	if c := got.Header.Get("Cookie"); strings.Contains(c, cookieName) {
		t.Errorf("the session cookie reached the upstream: %q", c)
	}
}

// TestHandoffHeaders: the default mode removes the credential latch
// consumed and keeps one it did not recognise.
func TestHandoffHeaders(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	secret := f.login(t)
	tests := []struct {
		name, path  string
		hdr         http.Header
		user, roles string
		authz       []string
	}{
		{"bearer, protected", "/api/admin/features", http.Header{"Authorization": {rootBearer}}, "root@example.com", "admin", nil},
		{"bearer, open", "/api/client/features", http.Header{"Authorization": {rootBearer}}, "root@example.com", "admin", nil},
		{"unrecognised, open", "/api/client/features", http.Header{"Authorization": {devToken}}, "", "", []string{devToken}},
		{"cookie", "/api/admin/features", withCookie(secret), adaEmail, "admin", nil},
		{"cookie and unrecognised, open", "/api/client/features", withCookie(secret, "Authorization", devToken),
			adaEmail, "admin", []string{devToken}},
		{"cookie and unrecognised, protected", "/api/admin/features", withCookie(secret, "Authorization", devToken),
			adaEmail, "admin", []string{devToken}},
		{"bearer and cookie", "/api/admin/features", withCookie(secret, "Authorization", rootBearer),
			"root@example.com", "admin", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantUpstream(t, f.forwarded(t, "GET", tt.path, tt.hdr), tt.user, tt.roles, tt.authz...)
		})
	}
	t.Run("unrecognised, protected", func(t *testing.T) {
		before := f.up.count()
		wantError(t, f.send(t, "GET", "/api/admin/features", http.Header{"Authorization": {devToken}}, ""),
			http.StatusUnauthorized, NameAuthRequired)
		if n := f.up.count(); n != before {
			t.Errorf("the upstream got %d requests, want none", n-before)
		}
	})
}

// TestHandoffJWT: mode jwt replaces a consumed credential with a token
// minted for the identity (its subject and roles, the audience and TTL
// configured), keeps an Authorization latch did not recognise, and mints
// nothing for an anonymous request.
func TestHandoffJWT(t *testing.T) {
	t.Parallel()
	m := &fakeUpstream{}
	f := newSessFront(t, nil, func(o *Options) {
		o.Handoff = []HandoffRoute{{Prefix: "/", Mode: HandoffJWT}}
		o.UpstreamTokens, o.HandoffAudience, o.HandoffTTL = m, "unleash", 2*time.Minute
	})
	secret := f.login(t)
	for _, tt := range []struct {
		name, path, sub string
		hdr             http.Header
	}{
		{"bearer, protected", "/api/admin/features", "root@example.com", http.Header{"Authorization": {rootBearer}}},
		{"bearer, open", "/api/client/features", "root@example.com", http.Header{"Authorization": {rootBearer}}},
		{"cookie", "/api/admin/features", adaEmail, withCookie(secret)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := f.forwarded(t, "GET", tt.path, tt.hdr)
			call, n := m.last()
			want := mintCall{sub: tt.sub, roles: []string{"admin"}, aud: "unleash", ttl: 2 * time.Minute}
			if n == 0 || call.sub != want.sub || !slices.Equal(call.roles, want.roles) || call.aud != want.aud || call.ttl != want.ttl {
				t.Fatalf("minted for %+v (%d calls), want %+v", call, n, want)
			}
			wantUpstream(t, got, tt.sub, "admin", fmt.Sprintf("Bearer up-%d-%s", n, tt.sub))
		})
	}
	t.Run("roles are the stored ones", func(t *testing.T) {
		setRoles := func(roles ...string) {
			if _, err := f.cache.SetRoles(t.Context(), adaEmail, roles); err != nil {
				t.Fatal(err)
			}
		}
		setRoles("viewer", "ops") // ends ada's sessions
		s2 := f.login(t)
		got := f.forwarded(t, "GET", "/api/admin/features", withCookie(s2))
		call, n := m.last()
		if call.sub != adaEmail || !slices.Equal(call.roles, []string{"viewer", "ops"}) {
			t.Errorf("minted for %+v, want ada with [viewer ops]", call)
		}
		wantUpstream(t, got, adaEmail, "viewer,ops", fmt.Sprintf("Bearer up-%d-%s", n, adaEmail))
		setRoles("admin")
		secret = f.login(t)
	})
	for _, tt := range []struct {
		name, path string
		hdr        http.Header
		user       string
		authz      []string
	}{
		{"cookie and unrecognised", "/api/admin/features", withCookie(secret, "Authorization", devToken), adaEmail, []string{devToken}},
		{"anonymous", "/api/client/features", nil, "", nil},
		{"unrecognised alone, open", "/api/client/features", http.Header{"Authorization": {devToken}}, "", []string{devToken}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, before := m.last()
			got := f.forwarded(t, "GET", tt.path, tt.hdr)
			roles := ""
			if tt.user != "" {
				roles = "admin"
			}
			wantUpstream(t, got, tt.user, roles, tt.authz...)
			if _, n := m.last(); tt.user == "" && n != before {
				t.Errorf("minted %d tokens for an anonymous request", n-before)
			}
		})
	}
	t.Run("latch's own routes mint nothing", func(t *testing.T) {
		_, before := m.last()
		resp := f.send(t, "GET", "/.latch/me", withCookie(secret), "")
		readBody(t, resp)
		if _, n := m.last(); resp.StatusCode != http.StatusOK || n != before {
			t.Errorf("/.latch/me: got %d, %d tokens minted; want 200 and none", resp.StatusCode, n-before)
		}
	})
}

// TestHandoffJWTDefaults: without HandoffAudience and HandoffTTL the token
// is for audience "upstream" and lives 5 minutes.
func TestHandoffJWTDefaults(t *testing.T) {
	t.Parallel()
	m := &fakeUpstream{}
	f := newSessFront(t, nil, func(o *Options) {
		o.Handoff = []HandoffRoute{{Prefix: "/api/", Mode: HandoffJWT}}
		o.UpstreamTokens = m
	})
	f.forwarded(t, "GET", "/api/admin/features", http.Header{"Authorization": {rootBearer}})
	if call, n := m.last(); n != 1 || call.aud != "upstream" || call.ttl != 5*time.Minute {
		t.Errorf("minted %+v (%d calls), want audience upstream, ttl 5m", call, n)
	}
}

// TestHandoffPassthrough: Authorization reaches the upstream as sent,
// beside the identity headers; the session cookie still does not.
func TestHandoffPassthrough(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, func(o *Options) { o.Handoff = []HandoffRoute{{Prefix: "/api/", Mode: HandoffPassthrough}} })
	secret := f.login(t)
	wantUpstream(t, f.forwarded(t, "GET", "/api/admin/features", http.Header{"Authorization": {rootBearer}}),
		"root@example.com", "admin", rootBearer)
	wantUpstream(t, f.forwarded(t, "GET", "/api/admin/features", withCookie(secret, "Authorization", devToken)),
		adaEmail, "admin", devToken)
	wantUpstream(t, f.forwarded(t, "GET", "/api/admin/features", withCookie(secret)), adaEmail, "admin")
	// Outside the prefix, the default mode.
	wantUpstream(t, f.forwarded(t, "GET", "/other", http.Header{"Authorization": {rootBearer}}), "root@example.com", "admin")
}

// TestHandoffLongestPrefix: the longest matching prefix picks the mode,
// whatever order the routes come in, ASCII case aside.
func TestHandoffLongestPrefix(t *testing.T) {
	t.Parallel()
	m := &fakeUpstream{}
	f := newSessFront(t, nil, func(o *Options) {
		o.Handoff = []HandoffRoute{{Prefix: "/api/", Mode: HandoffJWT}, {Prefix: "/API/Client/", Mode: HandoffPassthrough}}
		o.UpstreamTokens = m
	})
	bearer := http.Header{"Authorization": {rootBearer}}
	wantUpstream(t, f.forwarded(t, "GET", "/api/client/features", bearer), "root@example.com", "admin", rootBearer)
	wantUpstream(t, f.forwarded(t, "GET", "/Api/CLIENT/features", bearer), "root@example.com", "admin", rootBearer)
	if _, n := m.last(); n != 0 {
		t.Errorf("passthrough routes minted %d tokens", n)
	}
	wantUpstream(t, f.forwarded(t, "GET", "/api/admin/features", bearer), "root@example.com", "admin", "Bearer up-1-root@example.com")
	wantUpstream(t, f.forwarded(t, "GET", "/apix", bearer), "root@example.com", "admin")
}

// TestHandoffMintError: a token that cannot be minted is a 500 that says
// nothing of the cause, and nothing is forwarded.
func TestHandoffMintError(t *testing.T) {
	t.Parallel()
	m := &fakeUpstream{err: errors.New("ed25519: signing key at /etc/latch/key.pem unreadable")}
	f := newSessFront(t, nil, func(o *Options) {
		o.Handoff = []HandoffRoute{{Prefix: "/api/", Mode: HandoffJWT}}
		o.UpstreamTokens = m
	})
	for _, path := range []string{"/api/admin/features", "/api/client/features"} {
		body := wantError(t, f.send(t, "GET", path, http.Header{"Authorization": {rootBearer}}, ""),
			http.StatusInternalServerError, NameInternal)
		if s := fmt.Sprint(body); strings.Contains(s, "ed25519") || strings.Contains(s, "/etc/latch") {
			t.Errorf("%s: the body leaks the cause: %s", path, s)
		}
	}
	if n := f.up.count(); n != 0 {
		t.Errorf("the upstream got %d requests, want none", n)
	}
	// An anonymous request needs no token, nor one whose Authorization
	// latch did not recognise (it stays): a failing minter blocks neither.
	_, before := m.last()
	f.forwarded(t, "GET", "/api/client/features", nil)
	secret := f.login(t)
	got := f.forwarded(t, "GET", "/api/admin/features", withCookie(secret, "Authorization", devToken))
	wantUpstream(t, got, adaEmail, "admin", devToken)
	if _, n := m.last(); n != before {
		t.Errorf("minted %d tokens that were never sent", n-before)
	}
}

// The handoff mode covers every reading of the path: a spelling whose key
// falls under a passthrough prefix but which a lenient backend reads as
// another route does not get latch's consumed credential.
func TestHandoffModeCoversReadings(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, func(o *Options) {
		o.Handoff = []HandoffRoute{{Prefix: "/api/client/", Mode: HandoffPassthrough}}
		o.Decider = instantDecider{} // a policy letting the caller use /api/*
	})
	const bearer = "Bearer a@example.com:admin"
	for _, tt := range []struct{ path, want string }{
		{"/api/client/features", bearer},
		{"/api/admin/features", ""},
		{"/api/client/..%20/admin/features", ""},
		{"/api/client/%2e%2e%20/admin/features", ""},
	} {
		got := f.forwarded(t, "GET", tt.path, http.Header{"Authorization": {bearer}})
		if a := got.Header.Get("Authorization"); a != tt.want {
			t.Errorf("GET %s: upstream Authorization %q, want %q", tt.path, a, tt.want)
		}
	}
}

// TestParseHandoff: config entries "<prefix> <mode>", and the errors that
// name the entry.
func TestParseHandoff(t *testing.T) {
	t.Parallel()
	got, err := ParseHandoff([]string{"/api/ jwt", "  /api/client/ passthrough ", "/x   headers"})
	want := []HandoffRoute{{"/api/", HandoffJWT}, {"/api/client/", HandoffPassthrough}, {"/x", HandoffHeaders}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseHandoff = %v, %v; want %v", got, err, want)
	}
	if got, err := ParseHandoff(nil); err != nil || len(got) != 0 {
		t.Errorf("ParseHandoff(nil) = %v, %v; want nothing", got, err)
	}
	for _, bad := range []string{"api/ jwt", "/api/ bogus", "/api/", "", "/api/ JWT", "/api/ jwt extra", "jwt /api/", "/api/../admin/ passthrough", "/api%2F passthrough", "/api?x passthrough"} {
		_, err := ParseHandoff([]string{"/ok headers", bad})
		if err == nil {
			t.Errorf("ParseHandoff(%q): no error", bad)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "auth.handoff[1]") || !strings.Contains(msg, fmt.Sprintf("%q", bad)) {
			t.Errorf("ParseHandoff(%q): error %q does not name entry 1 and its text", bad, msg)
		}
	}
	for m, s := range map[HandoffMode]string{HandoffHeaders: "headers", HandoffJWT: "jwt", HandoffPassthrough: "passthrough"} {
		if m.String() != s {
			t.Errorf("%d.String() = %q, want %q", m, m.String(), s)
		}
	}
}

// TestNewHandoffErrors: New refuses mode jwt without UpstreamTokens and an
// unknown mode.
func TestNewHandoffErrors(t *testing.T) {
	t.Parallel()
	up := mustURL(t, "http://127.0.0.1:1")
	_, err := New(Options{Upstream: up, Handoff: []HandoffRoute{{Prefix: "/api/", Mode: HandoffJWT}}})
	if err == nil || !strings.Contains(err.Error(), "UpstreamTokens") {
		t.Errorf("jwt without UpstreamTokens: got %v, want an error naming UpstreamTokens", err)
	}
	_, err = New(Options{Upstream: up, Handoff: []HandoffRoute{{Prefix: "/api/", Mode: HandoffMode(7)}}, UpstreamTokens: &fakeUpstream{}})
	if err == nil || !strings.Contains(err.Error(), "/api/") {
		t.Errorf("unknown mode: got %v, want an error naming the route", err)
	}
	if _, err := New(Options{Upstream: up, Handoff: []HandoffRoute{{Prefix: "/api/", Mode: HandoffPassthrough}}}); err != nil {
		t.Errorf("passthrough without UpstreamTokens: %v", err)
	}
}

// TestJWKSRoute: <ns>/jwks.json serves Options.JWKS as a JWK set; without
// one it is not found, and never forwarded.
func TestJWKSRoute(t *testing.T) {
	t.Parallel()
	jwks := []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}]}`)
	for _, tt := range []struct {
		name, ns, path string
		jwks           []byte
	}{
		{"default namespace", "", "/.latch/jwks.json", jwks},
		{"upper case", "", "/.LATCH/JWKS.json", jwks},
		{"custom namespace", "/_auth", "/_auth/jwks.json", jwks},
		{"unset", "", "/.latch/jwks.json", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSessFront(t, nil, func(o *Options) { o.JWKS, o.Namespace = tt.jwks, tt.ns })
			resp := f.send(t, "GET", tt.path, nil, "")
			if tt.jwks == nil {
				wantError(t, resp, http.StatusNotFound, NameNotFound)
			} else {
				body := readBody(t, resp)
				if resp.StatusCode != http.StatusOK || body != string(tt.jwks) {
					t.Errorf("got %d %q, want 200 and the key set", resp.StatusCode, body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
					t.Errorf("Content-Type: got %q, want application/jwk-set+json", ct)
				}
				wantError(t, f.send(t, "POST", tt.path, nil, "{}"), http.StatusMethodNotAllowed, NameMethodNotAllowed)
			}
			if n := f.up.count(); n != 0 {
				t.Errorf("the upstream got %d requests, want none", n)
			}
		})
	}
	t.Run("without a store", func(t *testing.T) {
		t.Parallel()
		up := newRecording(t)
		front := newFront(t, up.srv.URL, func(o *Options) { o.JWKS = jwks })
		resp := do(t, "GET", front.URL+"/.latch/jwks.json", nil)
		if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != string(jwks) {
			t.Errorf("got %d %q, want the key set", resp.StatusCode, body)
		}
	})
}
