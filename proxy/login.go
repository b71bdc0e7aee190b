package proxy

import (
	"context"
	"crypto/sha256"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/latch-dev/latch"
	"golang.org/x/time/rate"
)

// LoginLimits bounds POST <ns>/login (the API and the login page). Zero fields take the defaults
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

// loginGuard holds the password-hash budget (concurrency slots and a rate
// limiter) shared by login and reset redemption, the login route's
// per-minute attempt counters (fixed windows, bounded in size), and the
// redemptions in flight.
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

	// redeeming holds a channel per reset token (by SHA-256) being
	// redeemed, closed when that redemption ends; waiting counts the
	// redemptions waiting for one (for tests).
	redeemMu  sync.Mutex
	redeeming map[[sha256.Size]byte]chan struct{}
	waiting   int
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
		perAddress: l.PerAddress, now: now, counts: map[string]int{}, maxKeys: 100_000,
		redeeming: map[[sha256.Size]byte]chan struct{}{}}
}

// allow counts one attempt for the account and the address and reports
// whether both are within their limits, and when the window ends.
//
// Counters are only ever cleared when the window ends, never to make room,
// so made-up keys cannot wipe the counters of real accounts or busy
// addresses. The address is counted first, and an attempt from an address
// over its limit adds no account key, so one address cannot fill the table.
// When the table is full (many addresses at once), an attempt that would
// need a new key is refused (fail closed) until the window ends; keys
// already in the table go on counting.
func (g *loginGuard) allow(account, addr string) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if now.Sub(g.window) >= time.Minute {
		g.window = now.Truncate(time.Minute)
		clear(g.counts)
	}
	retry := g.window.Add(time.Minute).Sub(now)
	kd := "d:" + addr
	if g.count(kd) > g.perAddress {
		return false, retry // a busy address adds no account counters
	}
	ka := "a:" + account
	return g.count(ka) <= g.perAccount, retry
}

// count adds one to key's counter and returns it. When key is new and the
// table is full it counts nothing and returns 0: existing counters are
// never evicted, and a table filled by made-up keys locks nobody out (the
// hash budget still bounds the attempts it lets through).
func (g *loginGuard) count(key string) int {
	if _, ok := g.counts[key]; !ok && len(g.counts) >= g.maxKeys {
		return 0
	}
	g.counts[key]++
	return g.counts[key]
}

// hashSlot takes one password hash from the budget and a concurrency slot
// for it. When either is spent it takes nothing and returns the 503 to
// answer (for a login; other routes may word it their way). release frees
// the slot.
func (g *loginGuard) hashSlot() (release func(), busy *Error) {
	if !g.hashes.AllowN(g.now(), 1) {
		return nil, errLoginBusy
	}
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil
	default:
		return nil, errLoginCrowded
	}
}

// claimToken waits until no other redemption of token is in flight in this
// process and marks one as in flight; release ends it. Redemptions of one
// token so run one after another: the first sets the password, and the
// store refuses the others (used) before they hash anything. It returns
// ctx's error if ctx ends first.
func (g *loginGuard) claimToken(ctx context.Context, token string) (release func(), err error) {
	k := sha256.Sum256([]byte(token))
	for {
		g.redeemMu.Lock()
		busy, ok := g.redeeming[k]
		if !ok {
			done := make(chan struct{})
			g.redeeming[k] = done
			g.redeemMu.Unlock()
			return func() {
				g.redeemMu.Lock()
				delete(g.redeeming, k)
				g.redeemMu.Unlock()
				close(done)
			}, nil
		}
		g.waiting++
		g.redeemMu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
		}
		g.redeemMu.Lock()
		g.waiting--
		g.redeemMu.Unlock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// clientAddr is the key of the request's address for the per-address
// limit: the IP, or for IPv6 its /64, which one client usually holds whole.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return host
}

var errLoginBusy = &Error{Status: http.StatusServiceUnavailable, Name: NameUnavailable,
	Message: "Too many logins right now. Please try again shortly.", RetryAfter: time.Second}

var errLoginCrowded = &Error{Status: http.StatusServiceUnavailable, Name: NameUnavailable,
	Message: "Too many logins at once. Please try again shortly.", RetryAfter: time.Second}

var errBadLogin = &Error{Status: http.StatusUnauthorized, Name: NamePasswordMismatch, Message: "Wrong password, try again."}

var errNoSigningKey = &Error{Status: http.StatusServiceUnavailable, Name: NameUnavailable,
	Message: "Login is not available: latch has no signing key."}

var errMint = &Error{Status: http.StatusInternalServerError, Name: NameInternal, Message: "latch could not issue a token."}

// loginRoute answers POST <ns>/login. A form post (the login page's,
// application/x-www-form-urlencoded) starts a browser session: a cookie,
// then 303 to the page it came for. Anything else is the login API: a JSON
// body {email, password} answered with a JWT. Both take the same limits,
// and an unknown user and a wrong password get the same answer, after the
// same password-hash work (the store hashes against a dummy for unknown
// users).
func (h *Handler) loginRoute(w http.ResponseWriter, r *http.Request) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		return h.loginForm(w, r)
	}
	result := "error"
	defer func() { h.metrics.logins.WithLabelValues(result).Inc() }()
	// Under a flood the hash budget is spent: refuse before even reading
	// the body, so the flood costs as little as possible.
	if h.login.hashes.TokensAt(h.now()) < 1 {
		result = "busy"
		return errLoginBusy
	}
	b, e := h.readObject(w, r, []field{{name: "email", required: true, email: true}, {name: "password", required: true}})
	if e != nil {
		result = "invalid"
		return e
	}
	if h.opts.Tokens == nil {
		return errNoSigningKey
	}
	u, res, err := h.checkLogin(r, b.strs["email"], b.strs["password"])
	result = res
	if err != nil {
		return err
	}
	token, exp, err := h.opts.Tokens.MintSession(u.Email, u.Roles, u.Generation, h.opts.TokenTTL)
	if err != nil {
		result = "error"
		return withCause(errMint, err)
	}
	h.loggedIn(r, u)
	writeJSON(w, http.StatusOK, map[string]string{"token": token, "expiresAt": exp.UTC().Format(time.RFC3339)})
	return nil
}

// checkLogin runs a login's checks, in order: the attempt counters (429),
// the password-hash budget (503), then the password. It returns the user
// as read with the hash (its Generation included: what the login is tied
// to, so a password set while the slow check runs ends it) and the
// metric's result.
func (h *Handler) checkLogin(r *http.Request, email, password string) (latch.User, string, error) {
	email = latch.FoldASCII(email)
	if ok, retry := h.login.allow(email, clientAddr(r)); !ok {
		return latch.User{}, "rate_limited", &Error{Status: http.StatusTooManyRequests, Name: NameRateLimit,
			Message: "Too many login attempts. Please try again later.", RetryAfter: retry}
	}
	release, busy := h.login.hashSlot()
	if busy != nil {
		return latch.User{}, "busy", busy
	}
	defer release()
	u, ok, err := h.opts.Store.VerifyPassword(r.Context(), email, password)
	if err != nil {
		return latch.User{}, "error", err
	}
	if !ok {
		h.log.Info("login failed", "request_id", requestIDFrom(r.Context()))
		return latch.User{}, "failure", errBadLogin
	}
	return u, "success", nil
}

// loggedIn notes a login on the request's access line (it names who logged
// in, as it names the caller of a request that carried a credential) and
// in the log.
func (h *Handler) loggedIn(r *http.Request, u latch.User) {
	if st := stateFrom(r.Context()); st != nil {
		st.id = Identity{Subject: u.Email, Roles: u.Roles}
		st.identity = &st.id
	}
	h.log.Info("login", "subject", u.Email, "request_id", requestIDFrom(r.Context()))
}
