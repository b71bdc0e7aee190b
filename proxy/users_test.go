package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch"
)

// memStore is a hand-written Users: users by their folded email, as the
// real stores keep them, and reset tokens by value. When err is set every
// method fails with it.
type memStore struct {
	mu        sync.Mutex
	users     map[string]latch.User
	passwords map[string]string
	tokens    map[string]*memToken
	rateLimit time.Duration // > 0: IssueResetToken refuses with it
	err       error
	gets      int
	onGet     func() // called by GetUser after it read, outside the lock
	gen       uint64
	n         int
	browser   map[string]latch.BrowserSession
}

func (s *memStore) CreateBrowserSession(ctx context.Context, key string, b latch.BrowserSession) error {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return err
	}
	if _, ok := s.users[latch.FoldASCII(b.Email)]; !ok {
		return latch.ErrUserNotFound
	}
	if s.browser == nil {
		s.browser = map[string]latch.BrowserSession{}
	}
	s.browser[key] = b
	return nil
}

func (s *memStore) BrowserSession(ctx context.Context, key string) (latch.BrowserSession, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return latch.BrowserSession{}, err
	}
	b, ok := s.browser[key]
	if !ok {
		return latch.BrowserSession{}, latch.ErrSessionNotFound
	}
	return b, nil
}

func (s *memStore) TouchBrowserSession(ctx context.Context, key string, at time.Time) error {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return err
	}
	b, ok := s.browser[key]
	if !ok {
		return latch.ErrSessionNotFound
	}
	b.LastSeen = at
	s.browser[key] = b
	return nil
}

func (s *memStore) DeleteBrowserSession(ctx context.Context, key string) error {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return err
	}
	delete(s.browser, key)
	return nil
}

// endSessions ends email's browser sessions, as the real stores do with
// every change to the user. The lock is held.
func (s *memStore) endSessions(email string) {
	for k, b := range s.browser {
		if b.Email == email {
			delete(s.browser, k)
		}
	}
}

type memToken struct {
	email   string
	expires time.Time
	used    bool
}

func newMemStore() *memStore {
	return &memStore{users: map[string]latch.User{}, passwords: map[string]string{}, tokens: map[string]*memToken{}}
}

var memNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// begin locks the store and returns its error, if set.
func (s *memStore) begin() error {
	s.mu.Lock()
	return s.err
}

func (s *memStore) nextGen() uint64 { s.gen += 7; return s.gen }

func (s *memStore) IssueResetToken(ctx context.Context, email string) (string, time.Time, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return "", time.Time{}, err
	}
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return "", time.Time{}, err
	}
	if _, ok := s.users[key]; !ok {
		return "", time.Time{}, latch.ErrUserNotFound
	}
	if s.rateLimit > 0 {
		return "", time.Time{}, &latch.RateLimitError{RetryAfter: s.rateLimit}
	}
	s.n++
	tok := fmt.Sprintf("tok-%d", s.n)
	s.tokens[tok] = &memToken{email: key, expires: memNow.Add(24 * time.Hour)}
	return tok, memNow.Add(24 * time.Hour), nil
}

func (s *memStore) token(tok string) (*memToken, error) {
	t, ok := s.tokens[tok]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: unknown", latch.ErrInvalidToken)
	case t.used:
		return nil, latch.ErrUsedToken
	}
	return t, nil
}

func (s *memStore) ValidateResetToken(ctx context.Context, tok string) (string, time.Time, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return "", time.Time{}, err
	}
	t, err := s.token(tok)
	if err != nil {
		return "", time.Time{}, err
	}
	return t.email, t.expires, nil
}

func (s *memStore) RedeemResetToken(ctx context.Context, tok, pw string) (string, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return "", err
	}
	t, err := s.token(tok)
	if err != nil {
		return "", err
	}
	t.used = true
	u := s.users[t.email]
	u.HasPassword, u.PasswordChanged, u.Generation = true, memNow, s.nextGen()
	s.users[t.email], s.passwords[t.email] = u, pw
	s.endSessions(t.email)
	return t.email, nil
}

func (s *memStore) VerifyPassword(ctx context.Context, email, pw string) (latch.User, bool, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return latch.User{}, false, err
	}
	key, _ := latch.NormalizeEmail(email)
	u, ok := s.users[key]
	if !ok || pw == "" || s.passwords[key] != pw {
		return latch.User{}, false, nil
	}
	return u, true, nil
}

func (s *memStore) ListUsers(ctx context.Context) ([]latch.User, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return nil, err
	}
	var out []latch.User
	for _, k := range slices.Sorted(maps.Keys(s.users)) {
		out = append(out, s.users[k])
	}
	return out, nil
}

func (s *memStore) GetUser(ctx context.Context, email string) (latch.User, error) {
	s.mu.Lock()
	s.gets++
	u, err := s.getLocked(email)
	hook := s.onGet
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return u, err
}

func (s *memStore) getLocked(email string) (latch.User, error) {
	if s.err != nil {
		return latch.User{}, s.err
	}
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return latch.User{}, err
	}
	u, ok := s.users[key]
	if !ok {
		return latch.User{}, latch.ErrUserNotFound
	}
	u.Roles = slices.Clone(u.Roles)
	return u, nil
}

func (s *memStore) AddUser(ctx context.Context, email string, roles []string, pw string) (latch.User, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return latch.User{}, err
	}
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return latch.User{}, err
	}
	if _, ok := s.users[key]; ok {
		return latch.User{}, latch.ErrUserExists
	}
	u := latch.User{Email: key, Roles: slices.Clone(roles), HasPassword: pw != "", Created: memNow, Generation: s.nextGen()}
	if pw != "" {
		u.PasswordChanged = memNow
	}
	s.users[key], s.passwords[key] = u, pw
	return u, nil
}

func (s *memStore) SetRoles(ctx context.Context, email string, roles []string) (latch.User, error) {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return latch.User{}, err
	}
	u, err := s.getLocked(email)
	if err != nil {
		return latch.User{}, err
	}
	u.Roles = slices.Clone(roles)
	s.users[u.Email] = u
	s.endSessions(u.Email)
	return u, nil
}

func (s *memStore) DeleteUser(ctx context.Context, email string) error {
	defer s.mu.Unlock()
	if err := s.begin(); err != nil {
		return err
	}
	u, err := s.getLocked(email)
	if err != nil {
		return err
	}
	delete(s.users, u.Email)
	s.endSessions(u.Email)
	return nil
}

// add stores a user with roles and no password.
func (s *memStore) add(email string, roles ...string) latch.User {
	u, err := s.AddUser(context.Background(), email, roles, "")
	if err != nil {
		panic(err)
	}
	return u
}

// issue returns a live reset token for email.
func (s *memStore) issue(email string) string {
	tok, _, err := s.IssueResetToken(context.Background(), email)
	if err != nil {
		panic(err)
	}
	return tok
}

// setRoles changes roles behind any cache's back (another replica).
func (s *memStore) setRoles(email string, roles ...string) {
	if _, err := s.SetRoles(context.Background(), email, roles); err != nil {
		panic(err)
	}
}

func (s *memStore) fail(err error) { s.mu.Lock(); s.err = err; s.mu.Unlock() }
func (s *memStore) reads() int     { s.mu.Lock(); defer s.mu.Unlock(); return s.gets }

// routeLog collects a Logger's output, safe for concurrent use.
type routeLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *routeLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *routeLog) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

// routeFront serves a Handler with st behind latch's routes (through a
// SessionCache), its logs in the returned buffer. Route answers never
// reach the upstream.
type routeFront struct {
	*httptest.Server
	up  *recording
	log *routeLog
}

const (
	adminAuth  = "Bearer root@example.com:admin"
	viewerAuth = "Bearer vic@example.com:viewer"
	resetPage  = "https://app.example.com/reset-password"
	maxBody    = 512
)

func newRouteFront(t *testing.T, st *memStore) *routeFront {
	t.Helper()
	up := newRecording(t)
	lb := &routeLog{}
	front := newFront(t, up.srv.URL, func(o *Options) {
		o.Store = NewSessionCache(st, SessionCacheOptions{})
		// The store's failures are the routes' to answer here, not the
		// session check's (which answers 503 for them itself).
		o.Sessions = fakeSessions{}
		o.ResetURL = resetPage
		o.MaxBodyBytes = maxBody
		o.Logger = slog.New(slog.NewJSONHandler(lb, nil))
	})
	t.Cleanup(func() {
		if n := up.count(); n != 0 {
			t.Errorf("the upstream got %d requests, want latch to answer its routes itself", n)
		}
	})
	return &routeFront{Server: front, up: up, log: lb}
}

// call sends a request: auth is the Authorization value ("" for none),
// ctype the Content-Type ("" for none).
func (f *routeFront) call(t *testing.T, method, path, auth, ctype, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, f.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// routeCase is one request to latch's own routes and the answer wanted.
type routeCase struct {
	name, method, path, auth, ctype, body string
	setup                                 func(*memStore) // before the request
	status                                int
	errName                               string // for an error answer
	retryAfter                            string // the Retry-After wanted, if any
	check                                 func(t *testing.T, st *memStore, resp *http.Response, body []byte)
}

const storeCause = "open /var/lib/latch/latch.db: input/output error"

var (
	errStoreDown  = fmt.Errorf("etcd: context deadline exceeded: %w", latch.ErrUnavailable)
	errStoreFault = errors.New(storeCause)
)

// run sends each case to a fresh front and store (holding ada, a viewer,
// and anyone the case's setup adds) and checks the answer. Error answers
// are checked for the API page's shape, the Retry-After wanted, and, for
// 5xx, that the store's cause is logged against the error id and never
// sent.
func runRouteCases(t *testing.T, tests []routeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newMemStore()
			st.add("ada@example.com", "viewer")
			if tt.setup != nil {
				tt.setup(st)
			}
			f := newRouteFront(t, st)
			resp := f.call(t, tt.method, tt.path, tt.auth, tt.ctype, tt.body)
			if got := resp.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After: got %q, want %q", got, tt.retryAfter)
			}
			if tt.errName != "" {
				body := wantError(t, resp, tt.status, tt.errName)
				if tt.status >= http.StatusInternalServerError {
					wantCauseLogged(t, f.log, body, st.err)
				}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status: got %d, want %d (body %s)", resp.StatusCode, tt.status, b)
			}
			if tt.check != nil {
				tt.check(t, st, resp, b)
			}
		})
	}
}

// wantCauseLogged checks that an error answer's body says nothing of the
// store's error and that the log holds it (if any) with the answer's id.
func wantCauseLogged(t *testing.T, lb *routeLog, body map[string]any, cause error) {
	t.Helper()
	sent, _ := json.Marshal(body)
	for _, leak := range []string{"/var/lib", "input/output", "etcd", "deadline"} {
		if bytes.Contains(sent, []byte(leak)) {
			t.Errorf("the body leaks the cause (%q): %s", leak, sent)
		}
	}
	if cause == nil {
		return
	}
	id, _ := body["id"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs := lb.String()
		if strings.Contains(logs, id) && strings.Contains(logs, cause.Error()) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the log does not hold error id %s with the cause %q:\n%s", id, cause, logs)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func failWith(err error) func(*memStore) { return func(s *memStore) { s.fail(err) } }

func decodeUser(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var u map[string]any
	if err := json.Unmarshal(b, &u); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return u
}

const usersPath = "/.latch/users"

// TestUserRoutes covers every answer of the user-admin routes: POST and GET
// /.latch/users, and GET, PUT and DELETE /.latch/users/{id}.
func TestUserRoutes(t *testing.T) {
	t.Parallel()
	const js = "application/json"
	long := `{"email":"a@example.com","roles":["` + strings.Repeat("x", maxBody) + `"]}`
	tooMany := `{"email":"a@example.com","roles":["r"` + strings.Repeat(`,"r"`, 32) + `]}`
	tests := []routeCase{
		// GET /.latch/users
		{name: "list", method: "GET", path: usersPath, auth: adminAuth, status: http.StatusOK,
			check: func(t *testing.T, _ *memStore, _ *http.Response, b []byte) {
				var got struct{ Users []map[string]any }
				if err := json.Unmarshal(b, &got); err != nil || len(got.Users) != 1 || got.Users[0]["email"] != "ada@example.com" {
					t.Fatalf("body %s (%v), want ada's user alone", b, err)
				}
				for _, k := range []string{"Generation", "gen", "password", "passwordHash", "hash"} {
					if _, ok := got.Users[0][k]; ok {
						t.Errorf("a user shows %q: %s", k, b)
					}
				}
			}},
		{name: "list empty is an array", method: "GET", path: usersPath, auth: adminAuth, status: http.StatusOK,
			setup: func(s *memStore) { s.DeleteUser(context.Background(), "ada@example.com") },
			check: func(t *testing.T, _ *memStore, _ *http.Response, b []byte) {
				if strings.TrimSpace(string(b)) != `{"users":[]}` {
					t.Errorf("body %s, want {\"users\":[]}", b)
				}
			}},
		{name: "list by a viewer", method: "GET", path: usersPath, auth: viewerAuth, status: http.StatusOK},
		{name: "list without credentials", method: "GET", path: usersPath, status: http.StatusUnauthorized, errName: NameAuthRequired},
		{name: "list, store down", method: "GET", path: usersPath, auth: adminAuth, setup: failWith(errStoreDown),
			status: http.StatusServiceUnavailable, errName: NameUnavailable, retryAfter: "5"},
		{name: "list, store fault", method: "GET", path: usersPath, auth: adminAuth, setup: failWith(errStoreFault),
			status: http.StatusInternalServerError, errName: NameInternal},

		// POST /.latch/users
		{name: "create", method: "POST", path: usersPath, auth: adminAuth, ctype: js,
			body: `{"email":"Bob@Example.com","roles":["viewer","ops"],"password":"Str0ng-Passw0rd"}`, status: http.StatusCreated,
			check: func(t *testing.T, st *memStore, resp *http.Response, b []byte) {
				if loc := resp.Header.Get("Location"); loc != usersPath+"/bob@example.com" {
					t.Errorf("Location: got %q", loc)
				}
				u := decodeUser(t, b)
				if u["email"] != "bob@example.com" || u["hasPassword"] != true || fmt.Sprint(u["roles"]) != "[viewer ops]" {
					t.Errorf("body %s", b)
				}
				if _, ok, _ := st.VerifyPassword(context.Background(), "bob@example.com", "Str0ng-Passw0rd"); !ok {
					t.Error("the store did not get the password")
				}
			}},
		{name: "create without password or roles", method: "POST", path: usersPath, auth: adminAuth, ctype: js,
			body: `{"email":"bob@example.com"}`, status: http.StatusCreated,
			check: func(t *testing.T, _ *memStore, _ *http.Response, b []byte) {
				if u := decodeUser(t, b); u["hasPassword"] != false {
					t.Errorf("body %s, want hasPassword false", b)
				}
			}},
		{name: "create taken", method: "POST", path: usersPath, auth: adminAuth, ctype: js,
			body: `{"email":"ADA@example.com"}`, status: http.StatusConflict, errName: NameConflict},
		{name: "create without credentials", method: "POST", path: usersPath, ctype: "text/plain", body: "x",
			status: http.StatusUnauthorized, errName: NameAuthRequired},
		{name: "create by a viewer", method: "POST", path: usersPath, auth: viewerAuth, ctype: "text/plain", body: "x",
			status: http.StatusForbidden, errName: NameNoAccess},
		{name: "create as text", method: "POST", path: usersPath, auth: adminAuth, ctype: "text/plain",
			body: `{"email":"bob@example.com"}`, status: http.StatusUnsupportedMediaType, errName: NameContentType},
		{name: "create without a content type", method: "POST", path: usersPath, auth: adminAuth,
			body: `{"email":"bob@example.com"}`, status: http.StatusUnsupportedMediaType, errName: NameContentType},
		{name: "create too large", method: "POST", path: usersPath, auth: adminAuth, ctype: js, body: long,
			status: http.StatusRequestEntityTooLarge, errName: NamePayloadTooLarge},
		{name: "create, store down", method: "POST", path: usersPath, auth: adminAuth, ctype: js, body: `{"email":"bob@example.com"}`,
			setup: failWith(errStoreDown), status: http.StatusServiceUnavailable, errName: NameUnavailable, retryAfter: "5"},
		{name: "create, store fault", method: "POST", path: usersPath, auth: adminAuth, ctype: js, body: `{"email":"bob@example.com"}`,
			setup: failWith(errStoreFault), status: http.StatusInternalServerError, errName: NameInternal},

		// GET, PUT, DELETE /.latch/users/{id}
		{name: "get", method: "GET", path: usersPath + "/Ada@Example.com", auth: adminAuth, status: http.StatusOK,
			check: func(t *testing.T, _ *memStore, _ *http.Response, b []byte) {
				if u := decodeUser(t, b); u["email"] != "ada@example.com" || fmt.Sprint(u["roles"]) != "[viewer]" {
					t.Errorf("body %s", b)
				}
			}},
		{name: "get unknown", method: "GET", path: usersPath + "/bob@example.com", auth: adminAuth,
			status: http.StatusNotFound, errName: NameNotFound},
		{name: "get no email", method: "GET", path: usersPath + "/bob", auth: adminAuth,
			status: http.StatusNotFound, errName: NameNotFound},
		{name: "get, store down", method: "GET", path: usersPath + "/ada@example.com", auth: adminAuth, setup: failWith(errStoreDown),
			status: http.StatusServiceUnavailable, errName: NameUnavailable, retryAfter: "5"},
		{name: "put", method: "PUT", path: usersPath + "/ada@example.com", auth: adminAuth, ctype: js,
			body: `{"roles":["admin"]}`, status: http.StatusOK,
			check: func(t *testing.T, st *memStore, _ *http.Response, b []byte) {
				u, _ := st.GetUser(context.Background(), "ada@example.com")
				if got := decodeUser(t, b); fmt.Sprint(got["roles"]) != "[admin]" || !slices.Equal(u.Roles, []string{"admin"}) {
					t.Errorf("body %s, stored roles %v; want [admin]", b, u.Roles)
				}
			}},
		{name: "put no roles", method: "PUT", path: usersPath + "/ada@example.com", auth: adminAuth, ctype: js,
			body: `{}`, status: http.StatusBadRequest, errName: NameValidation},
		{name: "put unknown", method: "PUT", path: usersPath + "/bob@example.com", auth: adminAuth, ctype: js,
			body: `{"roles":[]}`, status: http.StatusNotFound, errName: NameNotFound},
		{name: "put by a viewer", method: "PUT", path: usersPath + "/ada@example.com", auth: viewerAuth, ctype: js,
			body: `{"roles":["admin"]}`, status: http.StatusForbidden, errName: NameNoAccess},
		{name: "put as text", method: "PUT", path: usersPath + "/ada@example.com", auth: adminAuth, ctype: "text/plain",
			body: `{"roles":[]}`, status: http.StatusUnsupportedMediaType, errName: NameContentType},
		{name: "delete", method: "DELETE", path: usersPath + "/ada@example.com", auth: adminAuth, status: http.StatusNoContent,
			check: func(t *testing.T, st *memStore, _ *http.Response, b []byte) {
				if _, err := st.GetUser(context.Background(), "ada@example.com"); !errors.Is(err, latch.ErrUserNotFound) || len(b) != 0 {
					t.Errorf("after delete: %v, body %q; want the user gone, no body", err, b)
				}
			}},
		{name: "delete unknown", method: "DELETE", path: usersPath + "/bob@example.com", auth: adminAuth,
			status: http.StatusNotFound, errName: NameNotFound},
		{name: "delete by a viewer", method: "DELETE", path: usersPath + "/ada@example.com", auth: viewerAuth,
			status: http.StatusForbidden, errName: NameNoAccess},
		{name: "delete without credentials", method: "DELETE", path: usersPath + "/ada@example.com",
			status: http.StatusUnauthorized, errName: NameAuthRequired},
		{name: "delete, store fault", method: "DELETE", path: usersPath + "/ada@example.com", auth: adminAuth, setup: failWith(errStoreFault),
			status: http.StatusInternalServerError, errName: NameInternal},
	}
	// Each kind of invalid body is a 400 of its own name.
	for _, v := range []struct{ name, body, errName string }{
		{"not JSON", `{"email":`, NameValidation},
		{"not an object", `["bob@example.com"]`, NameValidation},
		{"empty", ``, NameValidation},
		{"two values", `{"email":"bob@example.com"} {}`, NameValidation},
		{"no email", `{"roles":[]}`, NameValidation},
		{"email not a string", `{"email":123}`, NameValidation},
		{"email empty", `{"email":""}`, NameValidation},
		{"email not an address", `{"email":"bob"}`, NameValidation},
		{"email with a name", `{"email":"Bob <bob@example.com>"}`, NameValidation},
		{"email no user can have", `{"email":"bob\u00a0b@example.com"}`, NameValidation},
		{"extra property", `{"email":"bob@example.com","admin":true}`, NameValidation},
		{"duplicate property", `{"email":"bob@example.com","email":"eve@example.com"}`, NameValidation},
		{"roles not an array", `{"email":"bob@example.com","roles":"admin"}`, NameValidation},
		{"roles not strings", `{"email":"bob@example.com","roles":[1]}`, NameValidation},
		{"role not a role name", `{"email":"bob@example.com","roles":["Admin"]}`, NameValidation},
		{"too many roles", tooMany, NameValidation},
		{"password not a string", `{"email":"bob@example.com","password":1}`, NameValidation},
		{"password empty", `{"email":"bob@example.com","password":""}`, NamePasswordUndef},
		{"password weak", `{"email":"bob@example.com","password":"password"}`, NameOwasp},
	} {
		tests = append(tests, routeCase{name: "create, " + v.name, method: "POST", path: usersPath, auth: adminAuth,
			ctype: js, body: v.body, status: http.StatusBadRequest, errName: v.errName,
			check: nil})
	}
	runRouteCases(t, tests)
}
