package proxy

import (
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
