//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// verified is what testdata/jwtverifier.mjs answers.
type verified struct {
	Claims struct {
		Iss   string   `json:"iss"`
		Aud   any      `json:"aud"`
		Sub   string   `json:"sub"`
		Email string   `json:"email"`
		Roles []string `json:"roles"`
	} `json:"claims"`
	UserHeader  string `json:"userHeader"`
	RolesHeader string `json:"rolesHeader"`
	Cookie      string `json:"cookie"` // the Cookie header the upstream received
	Error       string `json:"error"`
}

// TestHandoffJWT runs latch with handoff mode jwt in front of an upstream
// that verifies the token itself (testdata/jwtverifier.mjs: Node's crypto,
// the key set fetched from latch's /.latch/jwks.json), so the token is
// checked by code that is not latch's: alg, kid, signature, iss, aud, exp.
// Both credentials a user has reach it as a verifiable token: a login JWT
// and the browser session cookie.
func TestHandoffJWT(t *testing.T) {
	const audience = "e2e-upstream"

	port := freePort(t)
	upURL := startJWTVerifier(t, fmt.Sprintf("http://127.0.0.1:%d", port), audience)

	l := startLatch(t, latchOpts{
		port:     port,
		upstream: upURL,
		rules:    "policies/policy.csv",
		protect:  []string{"/api/admin/"},
		users:    []person{viewer},
		extra:    "auth:\n  handoff: [\"/api/admin/ jwt\"]\n  handoff_jwt:\n    audience: " + audience + "\n",
	})

	check := func(what string, status int, got verified) {
		t.Helper()
		if status != http.StatusOK {
			t.Fatalf("%s: the upstream answered %d (%s), want 200: it could not verify latch's token", what, status, got.Error)
		}
		c := got.Claims
		if c.Sub != viewer.email || c.Email != viewer.email || c.Iss != "latch" || fmt.Sprint(c.Aud) != audience && fmt.Sprint(c.Aud) != "["+audience+"]" {
			t.Errorf("%s: claims sub %q email %q iss %q aud %v, want %q, %q, latch, %s", what, c.Sub, c.Email, c.Iss, c.Aud, viewer.email, viewer.email, audience)
		}
		if !slices.Equal(c.Roles, viewer.roles) {
			t.Errorf("%s: roles %q, want %q", what, c.Roles, viewer.roles)
		}
		if got.UserHeader != c.Sub || got.RolesHeader != strings.Join(c.Roles, ",") {
			t.Errorf("%s: X-Latch-User %q, X-Latch-Roles %q disagree with the token's sub %q, roles %q", what, got.UserHeader, got.RolesHeader, c.Sub, c.Roles)
		}
	}

	// A login JWT: latch consumes it and sends its own token instead.
	loginToken := jsonLogin(t, l, viewer)
	status, got := verifiedGet(t, l.url+"/api/admin/features", "Bearer "+loginToken, nil)
	check("login JWT", status, got)

	// The session cookie of the login form.
	cookie := formLogin(t, l, viewer)
	status, got = verifiedGet(t, l.url+"/api/admin/features", "", cookie)
	check("session cookie", status, got)
	if strings.Contains(got.Cookie, "latch_session") {
		t.Errorf("the session cookie reached the upstream: Cookie %q", got.Cookie)
	}

	// The verifier is no rubber stamp: straight to it, latch's login token
	// (aud latch) and the same token with a broken signature are refused.
	status, got = verifiedGet(t, upURL+"/api/admin/features", "Bearer "+loginToken, nil)
	if status != http.StatusUnauthorized || !strings.HasPrefix(got.Error, "aud") {
		t.Errorf("login token straight to the upstream: %d %q, want 401 aud ...", status, got.Error)
	}
	i := strings.LastIndexByte(loginToken, '.') + 1
	first := "A"
	if loginToken[i] == 'A' {
		first = "B"
	}
	flipped := loginToken[:i] + first + loginToken[i+1:]
	status, got = verifiedGet(t, upURL+"/api/admin/features", "Bearer "+flipped, nil)
	if status != http.StatusUnauthorized || got.Error != "bad signature" {
		t.Errorf("tampered token straight to the upstream: %d %q, want 401 bad signature", status, got.Error)
	}

	// Outside the jwt prefix (mode headers), no token goes upstream.
	status, got = verifiedGet(t, l.url+"/other", "", cookie)
	if status != http.StatusUnauthorized || got.Error != "no bearer JWT" {
		t.Errorf("a path in mode headers: the upstream answered %d %q, want 401 no bearer JWT", status, got.Error)
	}
}

// startJWTVerifier runs testdata/jwtverifier.mjs on a free port, trusting
// the key set of the latch at latchURL (which need not run yet) for tokens
// with iss latch and aud audience, and returns its URL.
func startJWTVerifier(t *testing.T, latchURL, audience string) string {
	t.Helper()
	node := need(t, "Node.js (Debian's nodejs)", "node", "nodejs")
	port := freePort(t)
	cmd := exec.Command(node, filepath.Join("testdata", "jwtverifier.mjs"))
	cmd.Env = append(cmd.Environ(),
		fmt.Sprintf("PORT=%d", port),
		"LATCH_JWKS_URL="+latchURL+"/.latch/jwks.json",
		"ISSUER=latch",
		"AUDIENCE="+audience,
	)
	p := startProc(t, "jwtverifier", 0, 5*time.Second, cmd)
	p.waitLine(t, regexp.MustCompile(`jwtverifier listening`), 30*time.Second)
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// jsonLogin signs in through POST /.latch/login (JSON) and returns the JWT.
func jsonLogin(t *testing.T, l *latch, p person) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": p.email, "password": p.password})
	resp, err := httpClient.Post(l.url+"/.latch/login", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	status := resp.StatusCode
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(text, &out); status != http.StatusOK || err != nil || out.Token == "" {
		t.Fatalf("login as %s: %d %s", p.email, status, text)
	}
	return out.Token
}

// formLogin signs in through the login form, same-origin, and returns the
// session cookie latch set with its 303.
func formLogin(t *testing.T, l *latch, p person) *http.Cookie {
	t.Helper()
	form := url.Values{"email": {p.email}, "password": {p.password}, "rd": {"/"}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, l.url+"/.latch/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", l.url)
	client := &http.Client{Timeout: httpClient.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == "latch_session" && c.Value != "" {
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("login form: %s, want 303", resp.Status)
			}
			return c
		}
	}
	t.Fatalf("login form: %s, no latch_session cookie (Set-Cookie %q)", resp.Status, resp.Header.Values("Set-Cookie"))
	return nil
}

// verifiedGet sends GET with an Authorization (when not empty) and a
// cookie (when not nil) and decodes the verifier's answer.
func verifiedGet(t *testing.T, u, authz string, cookie *http.Cookie) (int, verified) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if cookie != nil {
		req.AddCookie(cookie)
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
	var v verified
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %s: not the verifier's answer: %q", u, resp.Status, body)
	}
	return resp.StatusCode, v
}
