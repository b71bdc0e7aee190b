package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	resetPath    = "/api/admin/user-admin/reset-password"
	validatePath = "/.latch/reset/validate"
	redeemPath   = "/.latch/reset/redeem"
)

// TestResetRoutes covers every answer of the reset routes: an admin asking
// for a link (POST /api/admin/user-admin/reset-password), a link's check
// (GET /.latch/reset/validate) and its use (POST /.latch/reset/redeem).
func TestResetRoutes(t *testing.T) {
	t.Parallel()
	const js = "application/json"
	issue := func(s *memStore) { s.issue("ada@example.com") } // tok-1
	used := func(s *memStore) {
		tok := s.issue("ada@example.com")
		if _, err := s.RedeemResetToken(t.Context(), tok, "Str0ng-Passw0rd"); err != nil {
			panic(err)
		}
	}
	redeem := func(token, pw string) string {
		b, _ := json.Marshal(map[string]string{"token": token, "password": pw})
		return string(b)
	}
	tests := []routeCase{
		// POST /api/admin/user-admin/reset-password, in the API page's
		// order: 401, 403, 415, 400, then 404, 429 or 200.
		{name: "link", method: "POST", path: resetPath, auth: adminAuth, ctype: js, body: `{"id":"Ada@Example.com"}`,
			status: http.StatusOK, check: func(t *testing.T, st *memStore, _ *http.Response, b []byte) {
				var got struct{ ResetPasswordURL string }
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
				u, err := url.Parse(got.ResetPasswordURL)
				if err != nil || !strings.HasPrefix(got.ResetPasswordURL, resetPage+"?") {
					t.Fatalf("resetPasswordUrl %q, want it on %s", got.ResetPasswordURL, resetPage)
				}
				if email, _, err := st.ValidateResetToken(t.Context(), u.Query().Get("token")); err != nil || email != "ada@example.com" {
					t.Errorf("the link's token is %q's (%v), want ada's", email, err)
				}
			}},
		{name: "link without credentials", method: "POST", path: resetPath, ctype: "text/plain", body: "x",
			status: http.StatusUnauthorized, errName: NameAuthRequired},
		{name: "link by a viewer", method: "POST", path: resetPath, auth: viewerAuth, ctype: "text/plain", body: "x",
			status: http.StatusForbidden, errName: NameNoAccess},
		{name: "link as text", method: "POST", path: resetPath, auth: adminAuth, ctype: "text/plain", body: "x",
			status: http.StatusUnsupportedMediaType, errName: NameContentType},
		{name: "link without a content type", method: "POST", path: resetPath, auth: adminAuth, body: `{"id":"ada@example.com"}`,
			status: http.StatusUnsupportedMediaType, errName: NameContentType,
			check: func(t *testing.T, _ *memStore, _ *http.Response, b []byte) {
				if !strings.Contains(string(b), "(none: the request has no Content-Type header)") {
					t.Errorf("body %s, want the 415 to say no Content-Type was sent", b)
				}
			}},
		{name: "link too large", method: "POST", path: resetPath, auth: adminAuth, ctype: js,
			body:   `{"id":"` + strings.Repeat("a", maxBody) + `@example.com"}`,
			status: http.StatusRequestEntityTooLarge, errName: NamePayloadTooLarge},
		{name: "link for an unknown user", method: "POST", path: resetPath, auth: adminAuth, ctype: js, body: `{"id":"bob@example.com"}`,
			status: http.StatusNotFound, errName: NameNotFound},
		{name: "link for an address no user can have", method: "POST", path: resetPath, auth: adminAuth, ctype: js,
			body: `{"id":"bo\u00a0b@example.com"}`, status: http.StatusNotFound, errName: NameNotFound},
		{name: "link too soon", method: "POST", path: resetPath, auth: adminAuth, ctype: js, body: `{"id":"ada@example.com"}`,
			setup:  func(s *memStore) { s.rateLimit = 89*time.Second + time.Millisecond },
			status: http.StatusTooManyRequests, errName: NameRateLimit, retryAfter: "90"},
		{name: "link, store down", method: "POST", path: resetPath, auth: adminAuth, ctype: js, body: `{"id":"ada@example.com"}`,
			setup: failWith(errStoreDown), status: http.StatusServiceUnavailable, errName: NameUnavailable, retryAfter: "5"},
		{name: "link, store fault", method: "POST", path: resetPath, auth: adminAuth, ctype: js, body: `{"id":"ada@example.com"}`,
			setup: failWith(errStoreFault), status: http.StatusInternalServerError, errName: NameInternal},

		// GET /.latch/reset/validate?token=T, for anyone.
		{name: "validate", method: "GET", path: validatePath + "?token=tok-1", setup: issue, status: http.StatusOK,
			check: func(t *testing.T, _ *memStore, _ *http.Response, b []byte) {
				want := `{"email":"ada@example.com","expiresAt":"` + memNow.Add(24*time.Hour).Format(time.RFC3339) + `"}`
				if strings.TrimSpace(string(b)) != want {
					t.Errorf("body %s, want %s", b, want)
				}
			}},
		{name: "validate without a token", method: "GET", path: validatePath, status: http.StatusUnauthorized, errName: NameInvalidToken},
		{name: "validate two tokens", method: "GET", path: validatePath + "?token=tok-1&token=tok-1", setup: issue,
			status: http.StatusUnauthorized, errName: NameInvalidToken},
		{name: "validate an unknown token", method: "GET", path: validatePath + "?token=tok-9", setup: issue,
			status: http.StatusUnauthorized, errName: NameInvalidToken},
		{name: "validate a used token", method: "GET", path: validatePath + "?token=tok-1", setup: used,
			status: http.StatusForbidden, errName: NameUsedToken},
		{name: "validate, store down", method: "GET", path: validatePath + "?token=tok-1", setup: failWith(errStoreDown),
			status: http.StatusServiceUnavailable, errName: NameUnavailable, retryAfter: "5"},
		{name: "validate, store fault", method: "GET", path: validatePath + "?token=tok-1", setup: failWith(errStoreFault),
			status: http.StatusInternalServerError, errName: NameInternal},

		// POST /.latch/reset/redeem {token, password}, for anyone.
		{name: "redeem", method: "POST", path: redeemPath, ctype: js, body: redeem("tok-1", "Str0ng-Passw0rd"), setup: issue,
			status: http.StatusOK, check: func(t *testing.T, st *memStore, _ *http.Response, b []byte) {
				if strings.TrimSpace(string(b)) != `{"email":"ada@example.com"}` {
					t.Errorf("body %s", b)
				}
				if _, ok, _ := st.VerifyPassword(t.Context(), "ada@example.com", "Str0ng-Passw0rd"); !ok {
					t.Error("the password was not set")
				}
			}},
		{name: "redeem an empty password", method: "POST", path: redeemPath, ctype: js, body: redeem("tok-1", ""), setup: issue,
			status: http.StatusBadRequest, errName: NamePasswordUndef},
		{name: "redeem without a password", method: "POST", path: redeemPath, ctype: js, body: `{"token":"tok-1"}`, setup: issue,
			status: http.StatusBadRequest, errName: NamePasswordUndef},
		{name: "redeem a weak password", method: "POST", path: redeemPath, ctype: js, body: redeem("tok-1", "password"), setup: issue,
			status: http.StatusBadRequest, errName: NameOwasp},
		{name: "redeem without a token", method: "POST", path: redeemPath, ctype: js, body: `{"password":"Str0ng-Passw0rd"}`,
			status: http.StatusBadRequest, errName: NameValidation},
		{name: "redeem an empty token", method: "POST", path: redeemPath, ctype: js, body: redeem("", "Str0ng-Passw0rd"),
			status: http.StatusBadRequest, errName: NameValidation},
		{name: "redeem with an extra property", method: "POST", path: redeemPath, ctype: js,
			body: `{"token":"tok-1","password":"Str0ng-Passw0rd","email":"ada@example.com"}`, setup: issue,
			status: http.StatusBadRequest, errName: NameValidation},
		{name: "redeem not JSON", method: "POST", path: redeemPath, ctype: js, body: `token=tok-1`,
			status: http.StatusBadRequest, errName: NameValidation},
		{name: "redeem as a form", method: "POST", path: redeemPath, ctype: "application/x-www-form-urlencoded",
			body: "token=tok-1", status: http.StatusUnsupportedMediaType, errName: NameContentType},
		{name: "redeem too large", method: "POST", path: redeemPath, ctype: js, body: redeem(strings.Repeat("t", maxBody), "Str0ng-Passw0rd"),
			status: http.StatusRequestEntityTooLarge, errName: NamePayloadTooLarge},
		{name: "redeem an unknown token", method: "POST", path: redeemPath, ctype: js, body: redeem("tok-9", "Str0ng-Passw0rd"), setup: issue,
			status: http.StatusUnauthorized, errName: NameInvalidToken},
		{name: "redeem a used token", method: "POST", path: redeemPath, ctype: js, body: redeem("tok-1", "Str0ng-Passw0rd"), setup: used,
			status: http.StatusForbidden, errName: NameUsedToken},
		{name: "redeem, store down", method: "POST", path: redeemPath, ctype: js, body: redeem("tok-1", "Str0ng-Passw0rd"),
			setup: failWith(errStoreDown), status: http.StatusServiceUnavailable, errName: NameUnavailable, retryAfter: "5"},
		{name: "redeem, store fault", method: "POST", path: redeemPath, ctype: js, body: redeem("tok-1", "Str0ng-Passw0rd"),
			setup: failWith(errStoreFault), status: http.StatusInternalServerError, errName: NameInternal},
	}
	runRouteCases(t, tests)
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
