package proxy

import (
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LoginLimits bounds POST /auth/simple/login. Zero fields take the defaults
// noted.
type LoginLimits struct {
	// MaxConcurrent password checks; beyond it login answers 503 at once.
	// Default half the CPUs, at least 1.
	MaxConcurrent int
	// PerSecond and Burst budget password hashes for the whole process
	// (argon2id costs tens of milliseconds of CPU each); beyond the budget
	// login answers 503 at once, so a flood cannot take the CPU from
	// proxied traffic. Defaults: one per CPU per second (under a tenth of
	// the machine), and a burst of twice that.
	PerSecond float64
	Burst     int
	// PerAccount and PerAddress attempts per minute; beyond them 429.
	// Defaults 10 and 30.
	PerAccount, PerAddress int
}

// loginGuard holds the login route's concurrency slots and its per-minute
// attempt counters (fixed windows, bounded in size).
type loginGuard struct {
	slots      chan struct{}
	hashes     *rate.Limiter
	perAccount int
	perAddress int
	now        func() time.Time

	mu      sync.Mutex
	window  time.Time
	counts  map[string]int
	maxKeys int
}

func newLoginGuard(l LoginLimits, now func() time.Time) *loginGuard {
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if l.PerSecond <= 0 {
		l.PerSecond = float64(runtime.GOMAXPROCS(0))
	}
	if l.Burst <= 0 {
		l.Burst = max(1, int(2*l.PerSecond))
	}
	if l.PerAccount <= 0 {
		l.PerAccount = 10
	}
	if l.PerAddress <= 0 {
		l.PerAddress = 30
	}
	return &loginGuard{slots: make(chan struct{}, l.MaxConcurrent), hashes: rate.NewLimiter(rate.Limit(l.PerSecond), l.Burst), perAccount: l.PerAccount,
		perAddress: l.PerAddress, now: now, counts: map[string]int{}, maxKeys: 100_000}
}

// allow counts one attempt for the account and the address and reports
// whether both are within their limits, and when the window ends.
func (g *loginGuard) allow(account, addr string) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if now.Sub(g.window) >= time.Minute || len(g.counts) >= g.maxKeys {
		g.window = now.Truncate(time.Minute)
		clear(g.counts)
	}
	ka, kd := "a:"+account, "d:"+addr
	g.counts[ka]++
	g.counts[kd]++
	retry := g.window.Add(time.Minute).Sub(now)
	return g.counts[ka] <= g.perAccount && g.counts[kd] <= g.perAddress, retry
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var errLoginBusy = &Error{Status: http.StatusServiceUnavailable, Name: NameUnavailable,
	Message: "Too many logins right now. Please try again shortly.", RetryAfter: time.Second}

var errBadLogin = &Error{Status: http.StatusUnauthorized, Name: NamePasswordMismatch, Message: "Wrong password, try again."}

// loginRoute answers POST /auth/simple/login {email, password} with a JWT.
// An unknown user and a wrong password get the same answer, after the same
// password-hash work (the store hashes against a dummy for unknown users).
func (h *Handler) loginRoute(w http.ResponseWriter, r *http.Request) {
	result := "error"
	defer func() { h.metrics.logins.WithLabelValues(result).Inc() }()
	// Under a flood the hash budget is spent: refuse before even reading
	// the body, so the flood costs as little as possible.
	if h.login.hashes.TokensAt(h.now()) < 1 {
		result = "busy"
		writeError(w, r, h.log, errLoginBusy, nil)
		return
	}
	b, e := h.readObject(w, r, []field{{name: "email", required: true, email: true}, {name: "password", required: true}})
	if e != nil {
		result = "invalid"
		writeError(w, r, h.log, e, nil)
		return
	}
	if h.opts.Tokens == nil {
		writeError(w, r, h.log, &Error{Status: http.StatusServiceUnavailable, Name: NameUnavailable,
			Message: "Login is not available: latch has no signing key."}, nil)
		return
	}
	email := strings.ToLower(b.strs["email"])
	if ok, retry := h.login.allow(email, clientAddr(r)); !ok {
		result = "rate_limited"
		writeError(w, r, h.log, &Error{Status: http.StatusTooManyRequests, Name: NameRateLimit,
			Message: "Too many login attempts. Please try again later.", RetryAfter: retry}, nil)
		return
	}
	if !h.login.hashes.AllowN(h.now(), 1) {
		result = "busy"
		writeError(w, r, h.log, errLoginBusy, nil)
		return
	}
	select {
	case h.login.slots <- struct{}{}:
		defer func() { <-h.login.slots }()
	default:
		result = "busy"
		writeError(w, r, h.log, &Error{Status: http.StatusServiceUnavailable, Name: NameUnavailable,
			Message: "Too many logins at once. Please try again shortly.", RetryAfter: time.Second}, nil)
		return
	}
	u, ok, err := h.opts.Store.VerifyPassword(r.Context(), email, b.strs["password"])
	if err != nil {
		h.storeFailure(w, r, err)
		return
	}
	if !ok {
		result = "failure"
		h.log.Info("login failed", "request_id", requestIDFrom(r.Context()))
		writeError(w, r, h.log, errBadLogin, nil)
		return
	}
	token, exp, err := h.opts.Tokens.Mint(u.Email, u.Roles, h.opts.TokenTTL)
	if err != nil {
		writeError(w, r, h.log, &Error{Status: 500, Name: NameInternal, Message: "latch could not issue a token."}, err)
		return
	}
	result = "success"
	h.log.Info("login", "subject", u.Email, "request_id", requestIDFrom(r.Context()))
	writeJSON(w, http.StatusOK, map[string]string{"token": token, "expiresAt": exp.UTC().Format(time.RFC3339)})
}
