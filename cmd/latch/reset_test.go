package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latch-dev/latch/resetstore"
)

const (
	adminEmail = "admin@example.com"
	adminPass  = "Adm1n-Passw0rd!"
	viewEmail  = "viewer@example.com"
	viewPass   = "V1ewer-Passw0rd!"
	userEmail  = "alice@example.com"
	resetRoute = "/api/admin/user-admin/reset-password"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// seededLatch starts latch with an admin, a viewer and alice (no password)
// in its store.
func seededLatch(t *testing.T, extra string) *instance {
	t.Helper()
	dir := t.TempDir()
	st, err := resetstore.Open(filepath.Join(dir, "data", "latch.db"), resetstore.Options{})
	if err != nil {
		os.MkdirAll(filepath.Join(dir, "data"), 0o700)
		st, err = resetstore.Open(filepath.Join(dir, "data", "latch.db"), resetstore.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, u := range []struct {
		email, pw string
		roles     []string
	}{{adminEmail, adminPass, []string{"admin"}}, {viewEmail, viewPass, []string{"viewer"}}, {userEmail, "", nil}} {
		if _, err := st.AddUser(ctx, u.email, u.roles, u.pw); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	up := echoUpstream(t)
	return startLatchIn(t, dir, baseConfig(t, up.URL, extra))
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t *testing.T, method, url, token, contentType, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	json.Unmarshal(raw, &a.body)
	return a
}

func login(t *testing.T, in *instance, email, pw string) answer {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": pw})
	return call(t, "POST", in.proxy+"/.latch/login", "", "application/json", string(b))
}

func loginToken(t *testing.T, in *instance, email, pw string) string {
	t.Helper()
	a := login(t, in, email, pw)
	tok, _ := a.body["token"].(string)
	if a.status != 200 || tok == "" {
		t.Fatalf("login %s: got %d %s", email, a.status, a.raw)
	}
	return tok
}

// wantErr checks an error answer in the API page's shape.
func (a answer) wantErr(t *testing.T, status int, name, msgHas string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status: got %d, want %d (%s)", a.status, status, a.raw)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	if id, _ := a.body["id"].(string); !uuidV4.MatchString(id) {
		t.Errorf("id: got %v, want a UUID v4", a.body["id"])
	}
	if a.body["name"] != name {
		t.Errorf("name: got %v, want %s", a.body["name"], name)
	}
	if m, _ := a.body["message"].(string); !strings.Contains(m, msgHas) {
		t.Errorf("message: got %q, want it to hold %q", m, msgHas)
	}
}

func TestResetRouteAnswers(t *testing.T) {
	t.Parallel()
	in := seededLatch(t, "")
	admin := loginToken(t, in, adminEmail, adminPass)
	viewer := loginToken(t, in, viewEmail, viewPass)
	url := in.proxy + resetRoute
	const schema = "The request payload you provided doesn't conform to the schema."
	tests := []struct {
		name, token, ctype, body string
		status                   int
		errName, msgHas          string
	}{
		{"401 anonymous", "", "application/json", `{"id":"alice@example.com"}`, 401, "AuthenticationRequired", "Try logging in at /.latch/login."},
		{"401 before 400", "", "application/json", `{"id":`, 401, "AuthenticationRequired", ""},
		{"401 before 415", "", "text/plain", `x`, 401, "AuthenticationRequired", ""},
		{"401 bad token", "not.a.jwt", "application/json", `{"id":"alice@example.com"}`, 401, "AuthenticationRequired", ""},
		{"403 viewer", viewer, "application/json", `{"id":"alice@example.com"}`, 403, "NoAccessError", `You need the "ADMIN" permission to perform this action.`},
		{"403 before 415", viewer, "text/plain", `x`, 403, "NoAccessError", ""},
		{"415 text/plain", admin, "text/plain", `{"id":"alice@example.com"}`, 415, "ContentTypeError", "application/json"},
		{"415 no content type", admin, "", `{"id":"alice@example.com"}`, 415, "ContentTypeError", ""},
		{"415 before 400", admin, "text/plain", `{`, 415, "ContentTypeError", ""},
		{"400 malformed", admin, "application/json", `{"id":`, 400, "ValidationError", schema},
		{"400 array", admin, "application/json", `[]`, 400, "ValidationError", "should be object. You sent an array."},
		{"400 empty body", admin, "application/json", ``, 400, "ValidationError", "empty"},
		{"400 id missing", admin, "application/json", `{}`, 400, "ValidationError", "required property 'id'"},
		{"400 id number", admin, "application/json", `{"id":123}`, 400, "ValidationError", "The .id property should be string. You sent 123."},
		{"400 id empty", admin, "application/json", `{"id":""}`, 400, "ValidationError", "must not be empty"},
		{"400 id not email", admin, "application/json", `{"id":"alice"}`, 400, "ValidationError", "must be an email address"},
		{"400 extra property", admin, "application/json", `{"id":"alice@example.com","admin":true}`, 400, "ValidationError", `additional property "admin"`},
		{"400 duplicate id", admin, "application/json", `{"id":"nobody@example.com","id":"alice@example.com"}`, 400, "ValidationError", "more than once"},
		{"400 trailing data", admin, "application/json", `{"id":"alice@example.com"} {}`, 400, "ValidationError", "more than one"},
		{"413 too large", admin, "application/json", `{"id":"` + strings.Repeat("a", 70<<10) + `@example.com"}`, 413, "PayloadTooLargeError", "limit"},
		{"404 unknown user", admin, "application/json", `{"id":"nobody@example.com"}`, 404, "NotFoundError", "nobody@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, "POST", url, tt.token, tt.ctype, tt.body)
			a.wantErr(t, tt.status, tt.errName, tt.msgHas)
			if tt.status == 400 {
				d, _ := a.body["details"].([]any)
				if len(d) == 0 {
					t.Errorf("details: got none, want the schema problem")
				}
			}
		})
	}

	// 200, then 429 for the same user within reset.min_interval.
	a := call(t, "POST", url, admin, "application/json; charset=utf-8", `{"id":"Alice@Example.com"}`)
	if a.status != 200 || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("200: got %d %s", a.status, a.raw)
	}
	link, _ := a.body["resetPasswordUrl"].(string)
	if !regexp.MustCompile(`^http://127\.0\.0\.1:0/\.latch/reset-password\?token=[A-Za-z0-9_-]{43}$`).MatchString(link) {
		t.Errorf("resetPasswordUrl: got %q", link)
	}
	if len(a.body) != 1 {
		t.Errorf("200 body: got %v, want only resetPasswordUrl", a.body)
	}
	b := call(t, "POST", url, admin, "application/json", `{"id":"alice@example.com"}`)
	b.wantErr(t, 429, "RateLimitError", "You can only send one new reset password email per minute, per user. Please try again later.")
	if ra := b.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After: got %q", ra)
	}
	// The token never reaches the logs.
	token := link[strings.Index(link, "token=")+6:]
	if strings.Contains(in.logs.String(), token) {
		t.Error("the reset token appears in latch's logs")
	}
}

func TestResetFullLoop(t *testing.T) {
	t.Parallel()
	in := seededLatch(t, "")
	admin := loginToken(t, in, adminEmail, adminPass)
	viewerBefore := loginToken(t, in, viewEmail, viewPass)

	a := call(t, "POST", in.proxy+resetRoute, admin, "application/json", `{"id":"viewer@example.com"}`)
	if a.status != 200 {
		t.Fatalf("issue: %d %s", a.status, a.raw)
	}
	link := a.body["resetPasswordUrl"].(string)
	token := link[strings.Index(link, "token=")+6:]

	v := call(t, "GET", in.proxy+"/.latch/reset/validate?token="+token, "", "", "")
	if v.status != 200 || v.body["email"] != viewEmail || v.body["expiresAt"] == nil {
		t.Fatalf("validate: %d %s", v.status, v.raw)
	}
	call(t, "GET", in.proxy+"/.latch/reset/validate?token=nope", "", "", "").wantErr(t, 401, "InvalidTokenError", "Token was not valid")

	// Password rules: all failures in details, the first as message.
	weak := call(t, "POST", in.proxy+"/.latch/reset/redeem", "", "application/json", `{"token":"`+token+`","password":"aaa"}`)
	weak.wantErr(t, 400, "OwaspValidationError", "at least 10 characters")
	if d, _ := weak.body["details"].([]any); len(d) < 4 {
		t.Errorf("details: got %v, want every failure", weak.body["details"])
	}
	call(t, "POST", in.proxy+"/.latch/reset/redeem", "", "application/json", `{"token":"`+token+`","password":""}`).
		wantErr(t, 400, "PasswordUndefinedError", "Password cannot be empty or undefined")

	const newPass = "N3w-Secret-Pass!"
	ok := call(t, "POST", in.proxy+"/.latch/reset/redeem", "", "application/json", `{"token":"`+token+`","password":"`+newPass+`"}`)
	if ok.status != 200 {
		t.Fatalf("redeem: %d %s", ok.status, ok.raw)
	}
	call(t, "POST", in.proxy+"/.latch/reset/redeem", "", "application/json", `{"token":"`+token+`","password":"`+newPass+`x"}`).
		wantErr(t, 403, "UsedTokenError", "")
	call(t, "GET", in.proxy+"/.latch/reset/validate?token="+token, "", "", "").wantErr(t, 403, "UsedTokenError", "")

	login(t, in, viewEmail, viewPass).wantErr(t, 401, "PasswordMismatch", "")
	login(t, in, "ghost@example.com", viewPass).wantErr(t, 401, "PasswordMismatch", "")
	after := loginToken(t, in, viewEmail, newPass)

	// The token from before the reset is refused; the new one works.
	call(t, "GET", in.proxy+"/api/admin/features", viewerBefore, "", "").wantErr(t, 401, "AuthenticationRequired", "password change")
	if r := call(t, "GET", in.proxy+"/api/admin/features", after, "", ""); r.status != 200 || r.body["user"] != viewEmail {
		t.Errorf("new token: got %d %s", r.status, r.raw)
	}
}

func TestRedeemRaceOneWinner(t *testing.T) {
	// Not parallel: its 50 concurrent hashes hold both cores.
	in := seededLatch(t, "")
	admin := loginToken(t, in, adminEmail, adminPass)
	a := call(t, "POST", in.proxy+resetRoute, admin, "application/json", `{"id":"alice@example.com"}`)
	link := a.body["resetPasswordUrl"].(string)
	token := link[strings.Index(link, "token=")+6:]
	var wins, used atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			<-start
			body, _ := json.Marshal(map[string]string{"token": token, "password": "Race-Pass-" + string(rune('A'+i%26)) + "1!x"})
			resp, err := http.Post(in.proxy+"/.latch/reset/redeem", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				wins.Add(1)
			case 403:
				used.Add(1)
			default:
				t.Errorf("redeem: got %d", resp.StatusCode)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || used.Load() != 49 {
		t.Errorf("50 redeemers: got %d wins and %d used, want 1 and 49", wins.Load(), used.Load())
	}
}

func TestUsersAPI(t *testing.T) {
	t.Parallel()
	in := seededLatch(t, "")
	admin := loginToken(t, in, adminEmail, adminPass)
	viewer := loginToken(t, in, viewEmail, viewPass)
	base := in.proxy + "/.latch/users"

	call(t, "GET", base, viewer, "", "").wantErr(t, 403, "NoAccessError", "ADMIN")
	call(t, "GET", base, "", "", "").wantErr(t, 401, "AuthenticationRequired", "")
	list := call(t, "GET", base, admin, "", "")
	if list.status != 200 || strings.Contains(strings.ToLower(list.raw), "hash") || strings.Contains(list.raw, "argon") {
		t.Fatalf("list: %d %s", list.status, list.raw)
	}
	if users, _ := list.body["users"].([]any); len(users) != 3 {
		t.Errorf("list: got %d users, want 3", len(users))
	}
	c := call(t, "POST", base, admin, "application/json", `{"email":"Bob@Example.com","roles":["editor"]}`)
	if c.status != 201 || c.header.Get("Location") != "/.latch/users/bob@example.com" {
		t.Fatalf("create: %d %s %v", c.status, c.raw, c.header)
	}
	call(t, "POST", base, admin, "application/json", `{"email":"bob@example.com"}`).wantErr(t, 409, "NameExistsError", "")
	call(t, "POST", base, admin, "application/json", `{"email":"carol@example.com","roles":["Admin!"]}`).wantErr(t, 400, "ValidationError", "not a role name")
	call(t, "POST", base, admin, "application/json", `{"email":"carol@example.com","password":"weak"}`).wantErr(t, 400, "OwaspValidationError", "")
	call(t, "POST", base, admin, "text/plain", `{}`).wantErr(t, 415, "ContentTypeError", "")
	if g := call(t, "GET", base+"/bob@example.com", admin, "", ""); g.status != 200 || g.body["email"] != "bob@example.com" || g.body["hasPassword"] != false {
		t.Errorf("get: %d %s", g.status, g.raw)
	}
	if p := call(t, "PUT", base+"/bob@example.com", admin, "application/json", `{"roles":["viewer","editor"]}`); p.status != 200 {
		t.Errorf("put: %d %s", p.status, p.raw)
	}
	if d := call(t, "DELETE", base+"/bob@example.com", admin, "", ""); d.status != 204 {
		t.Errorf("delete: %d %s", d.status, d.raw)
	}
	call(t, "GET", base+"/bob@example.com", admin, "", "").wantErr(t, 404, "NotFoundError", "bob@example.com")
	call(t, "DELETE", base+"/bob@example.com", admin, "", "").wantErr(t, 404, "NotFoundError", "")
}

func TestCLIWhileServing(t *testing.T) {
	t.Parallel()
	in := seededLatch(t, "")
	cfg := filepath.Join(in.dir, "latch.yaml")
	var out syncBuffer
	err := run(context.Background(), []string{"users", "list", "--config", cfg}, nil, nil, &out, &out)
	if err == nil {
		t.Fatal("users list while serving: got nil error")
	}
	for _, want := range []string{"in use by another process", "pid", "/.latch/users"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// latch token output is accepted by the running latch (the store is
	// held, so the token is not tied to a stored user: --allow-unknown;
	// its warning goes to stderr).
	out = syncBuffer{}
	var stderr syncBuffer
	if err := run(context.Background(), []string{"token", "--config", cfg, "--sub", "ops@example.com", "--role", "admin", "--allow-unknown", "--ttl", "5m"}, nil, nil, &out, &stderr); err != nil {
		t.Fatalf("token: %v\n%s", err, stderr.String())
	}
	tok := strings.TrimSpace(out.String())
	if r := call(t, "GET", in.proxy+"/api/admin/features", tok, "", ""); r.status != 200 || r.body["user"] != "ops@example.com" || r.body["roles"] != "admin" {
		t.Errorf("minted token: got %d %s", r.status, r.raw)
	}
}

func TestUsersCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "latch.yaml")
	os.WriteFile(cfg, []byte(baseConfig(t, "http://127.0.0.1:1", "")), 0o600)
	runCLI := func(stdin string, args ...string) (string, error) {
		var out syncBuffer
		err := run(context.Background(), args, nil, strings.NewReader(stdin), &out, &out)
		return out.String(), err
	}
	if out, err := runCLI("Str0ng-Passw0rd!\n", "users", "add", "--config", cfg, "--email", "Ops@Example.com", "--role", "admin", "--password-stdin"); err != nil || !strings.Contains(out, "added ops@example.com") {
		t.Fatalf("add: %v %s", err, out)
	}
	if _, err := runCLI("weak\n", "users", "add", "--config", cfg, "--email", "w@example.com", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "at least 10 characters") {
		t.Errorf("add weak password: got %v", err)
	}
	out, err := runCLI("", "users", "add", "--config", cfg, "--email", "new@example.com", "--reset-link")
	if err != nil || !regexp.MustCompile(`reset-password\?token=[A-Za-z0-9_-]{43}`).MatchString(out) {
		t.Errorf("add --reset-link: %v %s", err, out)
	}
	if out, err := runCLI("", "users", "set-roles", "--config", cfg, "--email", "new@example.com", "--role", "viewer"); err != nil || !strings.Contains(out, "viewer") {
		t.Errorf("set-roles: %v %s", err, out)
	}
	out, err = runCLI("", "users", "list", "--config", cfg)
	if err != nil || !strings.Contains(out, "ops@example.com") || !strings.Contains(out, "new@example.com") || strings.Contains(out, "argon") {
		t.Errorf("list: %v %s", err, out)
	}
	if out, err := runCLI("", "users", "delete", "--config", cfg, "--email", "new@example.com"); err != nil || !strings.Contains(out, "deleted") {
		t.Errorf("delete: %v %s", err, out)
	}
	if _, err := runCLI("", "users", "delete", "--config", cfg, "--email", "new@example.com"); err == nil {
		t.Error("delete twice: got nil error")
	}
}
