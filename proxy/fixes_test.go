package proxy

import (
	"errors"
	"net/http"
	"testing"
)

// The login page's 503 for a spent hash budget says when to retry, as the
// login API's does.
func TestLoginFormBusyRetryAfter(t *testing.T) {
	t.Parallel()
	f := newSessFront(t, nil, func(o *Options) { o.Login = LoginLimits{PerSecond: 1, Burst: 1} })
	f.login(t)
	resp := f.postLogin(t, adaEmail, adaPassword, "/", nil)
	wantPage(t, resp, http.StatusServiceUnavailable)
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After: got %q, want \"1\" (as the login API's 503 says)", ra)
	}
}

// Mode jwt mints nothing when the token would not be sent (the client's
// unrecognised Authorization stays), so a failing minter cannot block it.
func TestHandoffJWTNoMintWhenAuthorizationKept(t *testing.T) {
	t.Parallel()
	m := &fakeUpstream{err: errors.New("signer down")}
	f := newSessFront(t, nil, func(o *Options) {
		o.Handoff = []HandoffRoute{{Prefix: "/api/", Mode: HandoffJWT}}
		o.UpstreamTokens = m
	})
	secret := f.login(t)
	got := f.forwarded(t, "GET", "/api/admin/features", withCookie(secret, "Authorization", devToken))
	wantUpstream(t, got, adaEmail, "admin", devToken)
	if _, n := m.last(); n != 0 {
		t.Errorf("minted %d tokens that were never sent", n)
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
