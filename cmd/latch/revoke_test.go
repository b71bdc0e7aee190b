package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latch-dev/latch/resetstore"
)

// Issue 12, finding 3 (and 8): a latch login token follows its user's
// stored state. These tests run the whole program on bbolt (and etcd),
// through the user-admin API as an operator would.

const (
	bossEmail = "boss@example.com"
	bossPass  = "B0ss-Passw0rd!x"
	adminOnly = "/.latch/users" // only role admin may list users
)

// revokeLatch starts latch on bbolt with the admin, the viewer and boss (a
// second admin) stored; environ overrides the config.
func revokeLatch(t *testing.T, environ ...string) *instance {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := resetstore.Open(filepath.Join(data, "latch.db"), resetstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		email, pw string
		roles     []string
	}{{adminEmail, adminPass, []string{"admin"}}, {viewEmail, viewPass, []string{"viewer"}}, {bossEmail, bossPass, []string{"admin"}}} {
		if _, err := st.AddUser(context.Background(), u.email, u.roles, u.pw); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return startLatchIn(t, dir, baseConfig(t, echoUpstream(t).URL, ""), environ...)
}

func wantStatus(t *testing.T, what string, a answer, status int) {
	t.Helper()
	if a.status != status {
		t.Errorf("%s: got %d %s, want %d", what, a.status, a.raw, status)
	}
}

// TestRevokeDeletedUser: the token of a deleted user is refused with 401.
func TestRevokeDeletedUser(t *testing.T) {
	t.Parallel()
	in := revokeLatch(t)
	admin := loginToken(t, in, adminEmail, adminPass)
	boss := loginToken(t, in, bossEmail, bossPass)
	wantStatus(t, "boss before the delete", call(t, "GET", in.proxy+adminOnly, boss, "", ""), 200)
	wantStatus(t, "delete boss", call(t, "DELETE", in.proxy+adminOnly+"/"+bossEmail, admin, "", ""), 204)
	call(t, "GET", in.proxy+adminOnly, boss, "", "").wantErr(t, 401, "AuthenticationRequired", "log in again")
	call(t, "GET", in.proxy+"/api/admin/features", boss, "", "").wantErr(t, 401, "AuthenticationRequired", "")
	wantStatus(t, "the admin's own token", call(t, "GET", in.proxy+adminOnly, admin, "", ""), 200)
}

// TestRevokeDemotedAdmin: a demoted admin's token acts with the new roles
// at once (bbolt): 403 on an admin-only route, still 200 where a viewer may
// go; promoted again, 200 again.
func TestRevokeDemotedAdmin(t *testing.T) {
	t.Parallel()
	in := revokeLatch(t)
	admin := loginToken(t, in, adminEmail, adminPass)
	boss := loginToken(t, in, bossEmail, bossPass)
	wantStatus(t, "boss before the demotion", call(t, "GET", in.proxy+adminOnly, boss, "", ""), 200)
	wantStatus(t, "demote boss", call(t, "PUT", in.proxy+adminOnly+"/"+bossEmail, admin, "application/json", `{"roles":["viewer"]}`), 200)
	call(t, "GET", in.proxy+adminOnly, boss, "", "").wantErr(t, 403, "NoAccessError", "ADMIN")
	call(t, "POST", in.proxy+resetRoute, boss, "application/json", `{"id":"`+viewEmail+`"}`).wantErr(t, 403, "NoAccessError", "")
	if a := call(t, "GET", in.proxy+"/api/admin/features", boss, "", ""); a.status != 200 || a.body["roles"] != "viewer" {
		t.Errorf("viewer route with the demoted token: got %d %s, want 200 with roles viewer upstream", a.status, a.raw)
	}
	wantStatus(t, "promote boss again", call(t, "PUT", in.proxy+adminOnly+"/"+bossEmail, admin, "application/json", `{"roles":["admin"]}`), 200)
	wantStatus(t, "boss promoted again", call(t, "GET", in.proxy+adminOnly, boss, "", ""), 200)
}

// TestRevokeRecreatedUser: a user deleted and created again (with or
// without a password) does not get the old user's tokens back.
func TestRevokeRecreatedUser(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"email":"` + bossEmail + `","roles":["admin"]}`,
		`{"email":"` + bossEmail + `","roles":["admin"],"password":"An0ther-Passw0rd!"}`,
	} {
		in := revokeLatch(t)
		admin := loginToken(t, in, adminEmail, adminPass)
		boss := loginToken(t, in, bossEmail, bossPass)
		wantStatus(t, "delete boss", call(t, "DELETE", in.proxy+adminOnly+"/"+bossEmail, admin, "", ""), 204)
		wantStatus(t, "create boss again", call(t, "POST", in.proxy+adminOnly, admin, "application/json", body), 201)
		call(t, "GET", in.proxy+adminOnly, boss, "", "").wantErr(t, 401, "AuthenticationRequired", "")
	}
}

// TestRevokeLoginRacingRedeem (finding 8): logins with the old password
// run while the password is reset. A login whose check read the old hash
// may still answer 200, but its token must be refused once the reset is
// done; logins with the new password work.
func TestRevokeLoginRacingRedeem(t *testing.T) {
	t.Parallel()
	in := revokeLatch(t, "LATCH_LOGIN_PER_ACCOUNT_PER_MINUTE=100000", "LATCH_LOGIN_PER_ADDRESS_PER_MINUTE=100000",
		"LATCH_LOGIN_MAX_CONCURRENT=64")
	admin := loginToken(t, in, adminEmail, adminPass)
	link := call(t, "POST", in.proxy+resetRoute, admin, "application/json", `{"id":"`+bossEmail+`"}`)
	token := linkToken(t, link)

	const newPass = "N3w-Boss-Passw0rd!"
	var (
		stop   atomic.Bool
		mu     sync.Mutex
		tokens []string // 200 answers to the old password
		wg     sync.WaitGroup
	)
	body, _ := json.Marshal(map[string]string{"email": bossEmail, "password": bossPass})
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				resp, err := http.Post(in.proxy+"/.latch/login", "application/json", strings.NewReader(string(body)))
				if err != nil {
					t.Error(err)
					return
				}
				var b map[string]string
				json.NewDecoder(resp.Body).Decode(&b)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					tokens = append(tokens, b["token"])
					mu.Unlock()
				}
			}
		})
	}
	// Let logins with the old password succeed first, then reset while
	// they keep coming.
	pollUntil(t, "a first login with the old password", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(tokens) > 0
	})
	var r answer
	pollUntil(t, "the redemption past the busy hash budget", func() bool {
		r = redeem(t, in, token, newPass)
		return r.status != http.StatusServiceUnavailable
	})
	wantStatus(t, "redeem", r, 200)
	// Logins that started before the reset finish within a few rounds;
	// stop after the old password has been refused for a while.
	var refused atomic.Int32
	pollUntil(t, "the old password to be refused", func() bool {
		if login(t, in, bossEmail, bossPass).status == 401 {
			refused.Add(1)
		}
		return refused.Load() >= 3
	})
	stop.Store(true)
	wg.Wait()

	for i, tok := range tokens {
		if a := call(t, "GET", in.proxy+"/api/admin/features", tok, "", ""); a.status != 401 {
			t.Errorf("token %d of %d from a login with the old password: got %d after the reset, want 401", i+1, len(tokens), a.status)
		}
	}
	fresh := loginToken(t, in, bossEmail, newPass)
	wantStatus(t, "a login with the new password", call(t, "GET", in.proxy+adminOnly, fresh, "", ""), 200)
}

// TestRevokeEtcd: with etcd, a change made through one replica takes
// effect on the other within the session cache bound (5s): a demoted
// admin's token gets 403 there, a deleted user's token 401.
func TestRevokeEtcd(t *testing.T) {
	t.Parallel()
	s := newEtcdSetup(t, 1)
	a, b := s.replica(t, ""), s.replica(t, "")
	admin := loginToken(t, a, adminEmail, adminPass)
	wantStatus(t, "create boss", call(t, "POST", a.proxy+adminOnly, admin, "application/json",
		`{"email":"`+bossEmail+`","roles":["admin"],"password":"`+bossPass+`"}`), 201)
	boss := loginToken(t, a, bossEmail, bossPass)
	wantStatus(t, "boss on replica b", call(t, "GET", b.proxy+adminOnly, boss, "", ""), 200)

	wantStatus(t, "demote boss through a", call(t, "PUT", a.proxy+adminOnly+"/"+bossEmail, admin, "application/json", `{"roles":["viewer"]}`), 200)
	call(t, "GET", a.proxy+adminOnly, boss, "", "").wantErr(t, 403, "NoAccessError", "") // at once where it was made
	pollUntil(t, "the demotion to reach replica b", func() bool {
		return call(t, "GET", b.proxy+adminOnly, boss, "", "").status == 403
	})

	wantStatus(t, "delete boss through a", call(t, "DELETE", a.proxy+adminOnly+"/"+bossEmail, admin, "", ""), 204)
	call(t, "GET", a.proxy+"/api/admin/features", boss, "", "").wantErr(t, 401, "AuthenticationRequired", "")
	pollUntil(t, "the deletion to reach replica b", func() bool {
		return call(t, "GET", b.proxy+"/api/admin/features", boss, "", "").status == 401
	})
}

// sessionCookie signs in on the login page form of the latch at proxyURL
// and returns the session cookie as a Cookie header value.
func sessionCookie(tb testing.TB, proxyURL, email, pw string) string {
	tb.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(proxyURL+"/.latch/login", url.Values{"email": {email}, "password": {pw}, "rd": {"/"}})
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "latch_session" && ck.Value != "" {
			return ck.Name + "=" + ck.Value
		}
	}
	tb.Fatalf("login form %s: %d without a session cookie", email, resp.StatusCode)
	return ""
}

// TestBrowserSessionsAcrossReplicas: a session started on one replica
// works on the other (the record is in etcd), and logout and a demotion
// through one end it on the other within the shared cache's bound.
func TestBrowserSessionsAcrossReplicas(t *testing.T) {
	t.Parallel()
	s := newEtcdSetup(t, 1)
	a, b := s.replica(t, ""), s.replica(t, "")
	admin := loginToken(t, a, adminEmail, adminPass)
	wantStatus(t, "create boss", call(t, "POST", a.proxy+adminOnly, admin, "application/json",
		`{"email":"`+bossEmail+`","roles":["admin"],"password":"`+bossPass+`"}`), 201)

	first := sessionCookie(t, a.proxy, bossEmail, bossPass)
	if got := send(t, "GET", b.proxy+adminOnly, "", http.Header{"Cookie": {first}}, ""); got != 200 {
		t.Fatalf("a's session on replica b: got %d, want 200", got)
	}
	// Logout through a: gone on a at once, on b within the bound.
	req, _ := http.NewRequest("POST", a.proxy+"/.latch/logout", nil)
	req.Header.Set("Cookie", first)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("logout: got %d, want 204", resp.StatusCode)
	}
	if got := send(t, "GET", a.proxy+adminOnly, "", http.Header{"Cookie": {first}}, ""); got != 401 {
		t.Errorf("after logout on a: got %d, want 401", got)
	}
	pollUntil(t, "the logout to reach replica b", func() bool {
		return send(t, "GET", b.proxy+adminOnly, "", http.Header{"Cookie": {first}}, "") == 401
	})

	// A role change through a ends the user's sessions everywhere.
	second := sessionCookie(t, b.proxy, bossEmail, bossPass)
	if got := send(t, "GET", a.proxy+adminOnly, "", http.Header{"Cookie": {second}}, ""); got != 200 {
		t.Fatalf("b's session on replica a: got %d, want 200", got)
	}
	wantStatus(t, "demote boss through a", call(t, "PUT", a.proxy+adminOnly+"/"+bossEmail, admin, "application/json", `{"roles":["viewer"]}`), 200)
	if got := send(t, "GET", a.proxy+"/api/admin/features", "", http.Header{"Cookie": {second}}, ""); got != 401 {
		t.Errorf("after the demotion, on a: got %d, want 401 (the session ended)", got)
	}
	pollUntil(t, "the end of the session to reach replica b", func() bool {
		return send(t, "GET", b.proxy+"/api/admin/features", "", http.Header{"Cookie": {second}}, "") == 401
	})
}
