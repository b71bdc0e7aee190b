package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeStore knows users whose password is "Right-Passw0rd!".
type fakeStore struct {
	Store // the routes under test call only VerifyPassword and PasswordChanged
	mu    sync.Mutex
	calls int
}

func (f *fakeStore) VerifyPassword(ctx context.Context, email, pw string) (User, bool, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	return User{Email: email, Roles: []string{"viewer"}}, pw == "Right-Passw0rd!", nil
}

func (f *fakeStore) PasswordChanged(ctx context.Context, email string) (time.Time, error) {
	return time.Time{}, nil
}

type fakeMinter struct{}

func (fakeMinter) Mint(sub string, roles []string, ttl time.Duration) (string, time.Time, error) {
	return "token-for-" + sub, time.Unix(2000000000, 0), nil
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
		resp, err := http.Post(front.URL+"/auth/simple/login", "application/json",
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
# HELP latch_login_attempts_total POST /auth/simple/login attempts by result (success, failure, rate_limited, busy, invalid, error).
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
