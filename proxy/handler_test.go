package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestProtectedRoutes(t *testing.T) {
	tests := []struct {
		name, method, path, auth string
		status                   int
		errName, msgHas          string
	}{
		{"no credential", "GET", "/api/admin/features", "", 401, NameAuthRequired, "You must log in to use this service."},
		{"bad credential", "GET", "/api/admin/features", "garbage", 401, NameAuthRequired, "malformed"},
		{"no credential mixed case", "GET", "/API/Admin/features", "", 401, NameAuthRequired, "You must log in to use this service."},
		{"no credential prefix itself", "GET", "/api/admin", "", 401, NameAuthRequired, ""},
		{"viewer may GET", "GET", "/api/admin/features", "Bearer v@example.com:viewer", 200, "", ""},
		{"viewer may not POST", "POST", "/api/admin/features", "Bearer v@example.com:viewer", 403, NameNoAccess, "You need permission to POST /api/admin/*."},
		{"the overriding method is named", "GET", "/api/admin/features?_method=DELETE", "Bearer v@example.com:viewer", 403, NameNoAccess, "You need permission to DELETE /api/admin/*."},
		{"permission named", "POST", "/api/admin/user-admin/x", "Bearer v@example.com:viewer", 403, NameNoAccess, `You need the "ADMIN" permission to perform this action.`},
		{"namespace miss", "GET", "/.latch/nothing", "", 404, NameNotFound, "The requested resource was not found."},
		{"namespace never forwarded", "GET", "/.LATCH/users", "Bearer a@example.com:admin", 404, NameNotFound, ""},
		{"admin via dot segments", "DELETE", "/public/../api/admin/x", "Bearer a@example.com:admin", 200, "", ""},
		{"viewer smuggling via dots", "POST", "/public/../api/admin/x", "Bearer v@example.com:viewer", 403, NameNoAccess, ""},
		{"open route needs nothing", "POST", "/public/x", "", 200, "", ""},
	}
	up := newRecording(t)
	front := newFront(t, up.srv.URL, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			h := http.Header{}
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			resp := do(t, tt.method, front.URL+tt.path, h)
			if tt.status == 200 {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status: got %d, want 200", resp.StatusCode)
				}
				if up.count() != before+1 {
					t.Error("allowed request did not reach the upstream")
				}
				return
			}
			body := wantError(t, resp, tt.status, tt.errName)
			if !strings.Contains(body["message"].(string), tt.msgHas) {
				t.Errorf("message: got %q, want it to hold %q", body["message"], tt.msgHas)
			}
			if strings.Contains(body["message"].(string), "viewer") {
				t.Errorf("message %q lists the caller's roles", body["message"])
			}
			if up.count() != before {
				t.Error("refused request reached the upstream")
			}
		})
	}
}

func TestDecidesOnLowerCaseToo(t *testing.T) {
	up := newRecording(t)
	d := &fakeDecider{}
	front := newFront(t, up.srv.URL, func(o *Options) { o.Decider = d })
	// The admin rule in fakeDecider matches "/api/admin/" only in lower
	// case, so a mixed-case path is denied: fail closed.
	resp := do(t, "GET", front.URL+"/API/ADMIN/x", http.Header{"Authorization": {"Bearer a@example.com:admin"}})
	wantError(t, resp, 403, NameNoAccess)
	resp = do(t, "GET", front.URL+"/api/admin/Features", http.Header{"Authorization": {"Bearer a@example.com:admin"}})
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status: got %d, want 200", resp.StatusCode)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	want := "GET /api/admin/Features,GET /api/admin/features"
	if got := strings.Join(d.calls[len(d.calls)-2:], ","); got != want {
		t.Errorf("decisions: got %q, want %q", got, want)
	}
}

func TestFailsClosed(t *testing.T) {
	up := newRecording(t)
	tests := []struct {
		name   string
		mod    func(*Options)
		status int
		errNm  string
	}{
		{"decider error", func(o *Options) { o.Decider = &fakeDecider{err: errors.New("bad regex")} }, 403, NameNoAccess},
		{"no decider", func(o *Options) { o.Decider = nil }, 403, NameNoAccess},
		{"authenticator broken", func(o *Options) { o.Authenticator = fakeAuth{err: errors.New("jwks never fetched")} }, 503, NameUnavailable},
		{"no authenticator", func(o *Options) { o.Authenticator = nil }, 401, NameAuthRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front := newFront(t, up.srv.URL, tt.mod)
			body := wantError(t, do(t, "GET", front.URL+"/api/admin/x", http.Header{"Authorization": {"Bearer a@example.com:admin"}}), tt.status, tt.errNm)
			for _, leak := range []string{"regex", "jwks"} {
				if strings.Contains(body["message"].(string), leak) {
					t.Errorf("message %q leaks the internal cause", body["message"])
				}
			}
		})
	}
	if up.count() != 0 {
		t.Errorf("upstream got %d requests, want 0", up.count())
	}
}

// TestRolesValue: roles that could split or forge the header are dropped,
// with one role or several.
func TestRolesValue(t *testing.T) {
	for _, c := range []struct {
		roles []string
		want  string
	}{
		{nil, ""},
		{[]string{"admin"}, "admin"},
		{[]string{"admin", "viewer"}, "admin,viewer"},
		{[]string{""}, ""},
		{[]string{"a,b"}, ""},
		{[]string{"x\r\nX-Evil: 1"}, ""},
		{[]string{"nul\x00"}, ""},
		{[]string{"a,b", "viewer", ""}, "viewer"},
	} {
		if got := rolesValue(c.roles); got != c.want {
			t.Errorf("rolesValue(%q) = %q, want %q", c.roles, got, c.want)
		}
	}
}

func TestDecisionMessage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		d    Decision
		want string
	}{
		{Decision{Permission: "ADMIN", Pattern: "/api/admin/*", Method: "GET"}, `You need the "ADMIN" permission to perform this action.`},
		{Decision{Pattern: "/api/admin/*", Method: "DELETE", Path: "/api/admin/features"}, "You need permission to DELETE /api/admin/*."},
		{Decision{Method: "PUT", Path: "/api/admin/x"}, "You need permission to PUT /API/Admin/x."},
	} {
		if got := tt.d.Message("/API/Admin/x"); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.d, got, tt.want)
		}
	}
}

// refusingAuth recognises and refuses "Bearer revoked-root" (a revoked or
// expired JWT), cannot check "Bearer broken" (the JWKS is down), and
// otherwise answers as fakeAuth.
type refusingAuth struct{}

func (refusingAuth) Authenticate(ctx context.Context, h http.Header) (Identity, *Denial, error) {
	switch h.Get("Authorization") {
	case "Bearer revoked-root":
		return Identity{}, &Denial{Reason: "revoked", Message: "The session has ended."}, nil
	case "Bearer broken":
		return Identity{}, nil, errors.New("jwks not fetched")
	}
	return fakeAuth{}.Authenticate(ctx, h)
}

// A credential latch recognises and refuses, or cannot check, decides the
// request as it would without a cookie: a session does not carry it to the
// upstream (a review found both passing, with the refused token forwarded
// beside the cookie's user). An unrecognised one still leaves the cookie
// to decide.
func TestRefusedBearerIsNotRescuedByCookie(t *testing.T) {
	t.Parallel()
	for _, mode := range []HandoffMode{HandoffHeaders, HandoffPassthrough} {
		f := newSessFront(t, nil, func(o *Options) {
			o.Authenticator = refusingAuth{}
			o.Handoff = []HandoffRoute{{Prefix: "/api/", Mode: mode}}
		})
		secret := f.login(t)
		for _, tt := range []struct {
			authz  string
			status int
		}{{"Bearer revoked-root", http.StatusUnauthorized}, {"Bearer broken", http.StatusServiceUnavailable}} {
			before := f.up.count()
			resp := f.send(t, "GET", "/api/admin/features", withCookie(secret, "Authorization", tt.authz), "")
			body := readBody(t, resp)
			if resp.StatusCode != tt.status || f.up.count() != before {
				t.Errorf("[%s] %q + a valid cookie: got %d (forwarded %v) %s, want %d and nothing forwarded",
					mode, tt.authz, resp.StatusCode, f.up.count() != before, body, tt.status)
			}
		}
		got := f.forwarded(t, "GET", "/api/admin/features", withCookie(secret, "Authorization", "*:development.abc"))
		if got.Header.Get("X-Latch-User") != adaEmail || got.Header.Get("Authorization") != "*:development.abc" {
			t.Errorf("[%s] an unrecognised token + the cookie: upstream saw user %q, Authorization %q",
				mode, got.Header.Get("X-Latch-User"), got.Header.Get("Authorization"))
		}
	}
}

// A safe method whose override names an unsafe one is checked as the
// unsafe one: a cross-site GET ?_method=DELETE with the cookie is refused
// (a review found it forwarded as the user).
func TestOverrideOnSafeMethodIsCrossOriginChecked(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, nil)
	secret := f.login(t)
	for _, tt := range []struct {
		method, path string
		hdr          []string
		status       int
	}{
		{"GET", "/api/admin/features/x?_method=DELETE", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"HEAD", "/api/admin/features/x?_method=DELETE", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"OPTIONS", "/api/admin/features/x?_method=DELETE", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"GET", "/api/admin/features/x", []string{"Sec-Fetch-Site", "cross-site", "X-HTTP-Method-Override", "PUT"}, http.StatusForbidden},
		{"GET", "/api/admin/features/x?_method=DELETE", []string{"Sec-Fetch-Site", "same-origin"}, http.StatusOK},
		{"GET", "/api/admin/features/x?_method=GET", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusOK},
	} {
		before := f.up.count()
		resp := f.send(t, tt.method, tt.path, withCookie(secret, tt.hdr...), "")
		body := readBody(t, resp)
		forwarded := f.up.count() != before
		if resp.StatusCode != tt.status || forwarded != (tt.status == http.StatusOK) {
			t.Errorf("%s %s %v: got %d (forwarded %v) %s, want %d", tt.method, tt.path, tt.hdr, resp.StatusCode, forwarded, body, tt.status)
		}
	}
}
