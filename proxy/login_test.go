package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeStore knows users whose password is "Right-Passw0rd!", all of
// generation 42.
type fakeStore struct {
	Store // the routes under test call only VerifyPassword and Session
	mu    sync.Mutex
	calls int
}

func (f *fakeStore) VerifyPassword(ctx context.Context, email, pw string) (latch.User, bool, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	return latch.User{Email: email, Roles: []string{"viewer"}, Generation: 42}, pw == "Right-Passw0rd!", nil
}

func (f *fakeStore) Session(ctx context.Context, email string) (Session, error) {
	return Session{}, nil
}

// fakeMinter's tokens name the subject and the generation.
type fakeMinter struct{}

func (fakeMinter) MintSession(sub string, roles []string, gen uint64, ttl time.Duration) (string, time.Time, error) {
	return fmt.Sprintf("token-for-%s-gen-%d", sub, gen), time.Unix(2000000000, 0), nil
}

func TestLoginHashBudget(t *testing.T) {
	up := newRecording(t)
	store := &fakeStore{}
	reg := prometheus.NewRegistry()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	front := newFront(t, up.srv.URL, func(o *Options) {
		o.Store, o.Tokens, o.ResetURL, o.Registerer = store, fakeMinter{}, "http://x/reset-password", reg
		o.Now = func() time.Time { return now }
		o.Login = LoginLimits{PerSecond: 1, Burst: 3, PerAccount: 1000, PerAddress: 1000}
	})
	login := func(pw string) *http.Response {
		resp, err := testClient.Post(front.URL+"/.latch/login", "application/json",
			strings.NewReader(`{"email":"a@example.com","password":"`+pw+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := range 3 {
		resp := login("Right-Passw0rd!")
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("login %d within the burst: got %d, want 200", i+1, resp.StatusCode)
		}
	}
	// The budget is spent: further attempts are refused without hashing.
	for range 5 {
		wantError(t, login("Right-Passw0rd!"), 503, NameUnavailable)
	}
	if store.calls != 3 {
		t.Errorf("password checks: got %d, want 3 (refusals must not hash)", store.calls)
	}
	now = now.Add(time.Second) // one more hash earned
	wantError(t, login("wrong"), 401, NamePasswordMismatch)
	want := `
# HELP latch_login_attempts_total Login attempts, on the login API and the login page, by result (success, failure, rate_limited, busy, invalid, error).
# TYPE latch_login_attempts_total counter
latch_login_attempts_total{result="busy"} 5
latch_login_attempts_total{result="error"} 0
latch_login_attempts_total{result="failure"} 1
latch_login_attempts_total{result="invalid"} 0
latch_login_attempts_total{result="rate_limited"} 0
latch_login_attempts_total{result="success"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "latch_login_attempts_total"); err != nil {
		t.Error(err)
	}
}

// TestLoginTokenCarriesGenerationReadWithHash (issue 12, finding 8): the
// login token is minted with the Generation VerifyPassword read with the
// hash, not one read afterwards.
func TestLoginTokenCarriesGenerationReadWithHash(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	front := newFront(t, up.srv.URL, func(o *Options) {
		o.Store, o.Tokens, o.ResetURL = &fakeStore{}, fakeMinter{}, "http://x/reset-password"
		o.Login = LoginLimits{PerSecond: 100}
	})
	resp, err := testClient.Post(front.URL+"/.latch/login", "application/json",
		strings.NewReader(`{"email":"a@example.com","password":"Right-Passw0rd!"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 || body["token"] != "token-for-a@example.com-gen-42" {
		t.Errorf("login: got %d %v, want the token of generation 42", resp.StatusCode, body)
	}
}

// TestLoginGuardMadeUpKeys (issue 12, finding 10): made-up accounts, from
// one address or from many, never wipe the counters of a locked account
// or a busy address; the table stays bounded and, when full, refuses new
// keys rather than forgetting old ones.
func TestLoginGuardMadeUpKeys(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	g := newLoginGuard(LoginLimits{PerAccount: 3, PerAddress: 5}, func() time.Time { return now })
	g.maxKeys = 200
	// The victim's account is locked by attempts from several addresses,
	// and a busy address uses up its limit.
	for i := range 4 {
		g.allow("victim@x.y", fmt.Sprintf("10.0.0.%d", i))
	}
	for i := range 6 {
		g.allow(fmt.Sprintf("busy%d@x.y", i), "10.9.9.9")
	}
	wantLocked := func(when string) {
		t.Helper()
		if ok, _ := g.allow("victim@x.y", "10.0.1.1"); ok {
			t.Errorf("%s: the locked account was allowed", when)
		}
		if ok, _ := g.allow("other@x.y", "10.9.9.9"); ok {
			t.Errorf("%s: the busy address was allowed", when)
		}
	}
	wantLocked("before the flood")
	// One address makes up 10,000 accounts.
	for i := range 10_000 {
		g.allow(fmt.Sprintf("made-up-%d@x.y", i), "10.6.6.6")
	}
	wantLocked("after a flood from one address")
	if n := len(g.counts); n > 20 {
		t.Errorf("one address's flood left %d keys, want only its first few accounts", n)
	}
	// Many addresses make up an account each: the table fills.
	for i := range 10_000 {
		g.allow(fmt.Sprintf("made-up-%d@x.y", i), fmt.Sprintf("10.%d.%d.%d", 100+i/65536, i/256%256, i%256))
	}
	wantLocked("after a flood from many addresses")
	if n := len(g.counts); n > g.maxKeys {
		t.Errorf("counters: %d keys, want at most %d", n, g.maxKeys)
	}
	// Full: a newcomer is not counted, but not locked out either (the
	// hash budget bounds what gets through), and the counters in the
	// table still hold.
	if ok, _ := g.allow("new@x.y", "10.200.0.1"); !ok {
		t.Error("a new key in a full table was refused: a flood of made-up keys would lock everyone out")
	}
	wantLocked("with the table full")
	now = now.Add(time.Minute)
	if ok, _ := g.allow("victim@x.y", "10.0.1.1"); !ok {
		t.Error("next minute: the account is still refused")
	}
}

// TestClientAddrIPv6Prefix: an IPv6 client is limited by its /64.
func TestClientAddrIPv6Prefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"10.1.2.3:4567":                  "10.1.2.3",
		"[2001:db8:1:2:aaaa::1]:443":     "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:1:2:3]:8443": "2001:db8:1:2::/64",
		"[::ffff:10.1.2.3]:80":           "::ffff:10.1.2.3",
		"no-port":                        "no-port",
	} {
		if got := clientAddr(&http.Request{RemoteAddr: in}); got != want {
			t.Errorf("clientAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// redeemStore is a Store with one live reset token, "live-token". Its
// RedeemResetToken stands for the hash: every call that passes the token
// check counts as one and waits for gate (hashing takes a while) before
// its transaction uses the token.
type redeemStore struct {
	Store
	mu      sync.Mutex
	used    bool
	redeems int
	gate    chan struct{}
}

func (s *redeemStore) Session(ctx context.Context, email string) (Session, error) {
	return Session{}, nil
}

func (s *redeemStore) ValidateResetToken(ctx context.Context, token string) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case token != "live-token":
		return "", time.Time{}, latch.ErrInvalidToken
	case s.used:
		return "", time.Time{}, latch.ErrUsedToken
	}
	return "a@example.com", time.Unix(2000000000, 0), nil
}

func (s *redeemStore) RedeemResetToken(ctx context.Context, token, pw string) (string, error) {
	if _, _, err := s.ValidateResetToken(ctx, token); err != nil {
		return "", err // the store's own check before hashing
	}
	s.mu.Lock()
	s.redeems++
	s.mu.Unlock()
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used {
		return "", latch.ErrUsedToken
	}
	s.used = true
	return "a@example.com", nil
}

func (s *redeemStore) hashes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.redeems
}

func postRedeem(t *testing.T, url, token string) int {
	t.Helper()
	resp, err := testClient.Post(url+"/.latch/reset/redeem", "application/json",
		strings.NewReader(`{"token":"`+token+`","password":"N3w-Sunrise-Pass!"}`))
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRedeemOneHashPerToken (issue 12, finding 11): 48 concurrent
// redemptions of one token hash once; one wins, the others get 403.
func TestRedeemOneHashPerToken(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	st := &redeemStore{gate: make(chan struct{})}
	var h *Handler
	front := newFront(t, up.srv.URL, func(o *Options) {
		o.Store, o.Tokens, o.ResetURL = st, fakeMinter{}, "http://x/reset-password"
		o.Login = LoginLimits{PerSecond: 1000, Burst: 1000, MaxConcurrent: 64}
	})
	h = front.Config.Handler.(*Handler)
	var open sync.Once
	release := func() { open.Do(func() { close(st.gate) }) }
	defer release() // also when the test fails below
	const n = 48
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { codes <- postRedeem(t, front.URL, "live-token") })
	}
	// Release the first redemption once the other 47 wait for it (fixed
	// code), or have reached the store themselves (the code before).
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.login.redeemMu.Lock()
		waiting := h.login.waiting
		h.login.redeemMu.Unlock()
		if waiting == n-1 || st.hashes() == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d redemptions wait and %d reached the store", waiting, st.hashes())
		}
		time.Sleep(time.Millisecond)
	}
	release()
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[200] != 1 || count[403] != n-1 {
		t.Errorf("answers: %v, want one 200 and %d 403", count, n-1)
	}
	if got := st.hashes(); got != 1 {
		t.Errorf("%d redemptions reached the hash, want 1", got)
	}
}

// TestRedeemHashBudget (issue 12, finding 11): redemption hashes come out
// of the login budget: once logins spent it, a redemption answers 503
// without hashing; an invalid token is refused without spending it.
func TestRedeemHashBudget(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	st := &redeemStore{Store: &fakeStore{}, gate: make(chan struct{})}
	close(st.gate)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	front := newFront(t, up.srv.URL, func(o *Options) {
		o.Store, o.Tokens, o.ResetURL = st, fakeMinter{}, "http://x/reset-password"
		o.Now = func() time.Time { return now }
		o.Login = LoginLimits{PerSecond: 1, Burst: 1, PerAccount: 100, PerAddress: 100}
	})
	// An unknown token: 401, and the budget is still there.
	if c := postRedeem(t, front.URL, "unknown-token"); c != 401 {
		t.Errorf("unknown token: got %d, want 401", c)
	}
	resp, err := testClient.Post(front.URL+"/.latch/login", "application/json",
		strings.NewReader(`{"email":"a@example.com","password":"wrong"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("login with the budget's one hash: got %d, want 401", resp.StatusCode)
	}
	if c := postRedeem(t, front.URL, "live-token"); c != 503 {
		t.Errorf("redemption with the budget spent: got %d, want 503", c)
	}
	if got := st.hashes(); got != 0 {
		t.Errorf("redemptions hashed: %d, want 0", got)
	}
	now = now.Add(time.Second)
	if c := postRedeem(t, front.URL, "live-token"); c != 200 {
		t.Errorf("redemption a second later: got %d, want 200", c)
	}
}

// sessionAuth returns one Bound identity: ada, generation 7, roles as
// given in the bearer token ("Bearer ada@x.y:admin").
type sessionAuth struct{ bound bool }

func (a sessionAuth) Authenticate(ctx context.Context, h http.Header) (Identity, *Denial, error) {
	id, d, err := fakeAuth{}.Authenticate(ctx, h)
	id.Bound, id.Generation = a.bound, 7
	return id, d, err
}

// fakeSessions answers from a map of stored users.
type fakeSessions map[string]Session

func (f fakeSessions) Session(ctx context.Context, email string) (Session, error) {
	return f[email], nil
}

// TestSessionCheck (issue 12, finding 3): a login token is refused when its
// user is gone or its generation differs; it must act with the stored
// roles; other JWTs keep the password-change check.
func TestSessionCheck(t *testing.T) {
	t.Parallel()
	up := newRecording(t)
	sessions := fakeSessions{
		"ada@x.y":     {Found: true, Generation: 7, Roles: []string{"admin"}},
		"demoted@x.y": {Found: true, Generation: 7, Roles: []string{"viewer"}},
		"reset@x.y":   {Found: true, Generation: 8, Roles: []string{"admin"}},
		"changed@x.y": {Found: true, Generation: 7, PasswordChanged: time.Unix(2000, 0)},
	}
	tests := []struct {
		name, auth string
		bound      bool
		status     int
	}{
		{"login token, same generation and roles", "ada@x.y:admin", true, 200},
		{"login token of a deleted user", "gone@x.y:admin", true, 401},
		{"login token of an older generation", "reset@x.y:admin", true, 401},
		{"login token still carrying the old roles acts with the stored ones", "demoted@x.y:admin", true, 403},
		{"login token carrying the stored roles", "demoted@x.y:viewer", true, 403},
		{"other JWT of a user not stored", "gone@x.y:admin", false, 200},
		{"other JWT issued before the password change", "changed@x.y:admin", false, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front := newFront(t, up.srv.URL, func(o *Options) {
				o.Authenticator, o.Sessions = sessionAuth{bound: tt.bound}, sessions
			})
			// POST: the fake policy allows it to admin, not to viewer.
			resp := do(t, "POST", front.URL+"/api/admin/features", http.Header{"Authorization": {"Bearer " + tt.auth}})
			if tt.status != 200 {
				name := NameAuthRequired
				if tt.status == 403 {
					name = NameNoAccess
				}
				wantError(t, resp, tt.status, name)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("got %d, want 200", resp.StatusCode)
			}
		})
	}
}

// TestResolveSession: a login token gets the stored roles; the generation
// and the user's presence decide.
func TestResolveSession(t *testing.T) {
	t.Parallel()
	s := fakeSessions{"ada@x.y": {Found: true, Generation: 7, Roles: []string{"viewer"}}}
	id := Identity{Subject: "ada@x.y", Roles: []string{"admin"}, Kind: "jwt", Bound: true, Generation: 7}
	got, d, err := ResolveSession(context.Background(), s, id)
	if err != nil || d != nil || !slices.Equal(got.Roles, []string{"viewer"}) {
		t.Errorf("same generation: got %+v, %v, %v; want the stored roles", got, d, err)
	}
	id.Generation = 8
	if _, d, _ := ResolveSession(context.Background(), s, id); d == nil || d.Reason != "revoked" {
		t.Errorf("other generation: got %v, want revoked", d)
	}
	id.Subject, id.Generation = "gone@x.y", 0
	if _, d, _ := ResolveSession(context.Background(), s, id); d == nil || d.Reason != "revoked" {
		t.Errorf("no such user (generation 0): got %v, want revoked", d)
	}
	api := Identity{Subject: "gone@x.y", Kind: "api_token", Roles: []string{"admin"}}
	if got, d, err := ResolveSession(context.Background(), s, api); err != nil || d != nil || !slices.Equal(got.Roles, api.Roles) {
		t.Errorf("API token: got %+v, %v, %v; want it unchanged", got, d, err)
	}
}
