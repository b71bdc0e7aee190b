package proxy

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

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

// The handoff mode covers every reading of the path: a spelling whose key
// falls under a passthrough prefix but which a lenient backend reads as
// another route does not get latch's consumed credential.
func TestHandoffModeCoversReadings(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, func(o *Options) {
		o.Handoff = []HandoffRoute{{Prefix: "/api/client/", Mode: HandoffPassthrough}}
		o.Decider = allowEverything{} // a policy letting the caller use /api/*
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

// A reset.url of "/" (or any path ending in "/") registers no page: it
// would be a subtree pattern taking every GET from the upstream, open
// whatever policy.protect says.
func TestResetURLSubtreeNotRegistered(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, func(o *Options) { o.ResetURL = "https://app.example/" })
	for _, p := range []string{"/", "/anything/else"} {
		got := f.forwarded(t, "GET", p, nil)
		if got.URL.Path != p {
			t.Errorf("GET %s reached the upstream as %q", p, got.URL.Path)
		}
	}
	resp := f.send(t, "GET", "/api/admin/features", nil, "")
	readBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous GET /api/admin/features: got %d, want 401", resp.StatusCode)
	}
}

type allowEverything struct{}

func (allowEverything) Decide(sub string, roles []string, methods, readings []string) (Decision, error) {
	return Decision{Allow: true, Rule: []string{"role:admin", "/api/*", ".*", "allow"}}, nil
}
