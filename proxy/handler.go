package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Denial is why a credential was refused: Reason is a short word from a
// bounded set (for logs and metrics), Message is safe to show the client.
type Denial struct {
	Reason  string
	Message string
}

// Authenticator finds out who sent a request from its headers. A refused
// credential is a Denial, not an error; err means something broke, and the
// request is then refused too (fail closed).
type Authenticator interface {
	Authenticate(ctx context.Context, h http.Header) (Identity, *Denial, error)
}

// Decision is the policy's answer for one request.
type Decision struct {
	Allow bool
	// Rule is the deciding rule, for the decision log; nil when none matched.
	Rule []string
	// Permission, on a deny, names the permission the rules attach to the
	// route ("ADMIN"); Pattern names the route pattern otherwise. Either may
	// be empty.
	Permission string
	Pattern    string
	// Method and Path are the method and reading the deciding answer was
	// about: the first denied or failed, or the last asked when all are
	// allowed. Method names the denied method in the 403 message.
	Method, Path string
}

// Decider decides whether the subjects may use every method the upstream
// might run (see methods) on every reading of the canonical path
// (Target.Readings); the request is allowed only if every pair is. The
// rule, and counting the request as one decision, are the Decider's (in
// latch, policy.Engine.DecideAll). An error means it could not decide; the
// request is then denied.
type Decider interface {
	Decide(sub string, roles []string, methods, readings []string) (Decision, error)
}

// Options configures a Handler. Zero fields take the defaults noted.
type Options struct {
	// Upstream receives every request latch does not answer itself. Required.
	Upstream *url.URL
	// Transport carries forwarded requests; nil means NewTransport with its
	// defaults.
	Transport http.RoundTripper
	// Protect lists path prefixes needing authorization, ASCII letters
	// compared without regard to case; nil means ["/api/admin/"]. With a
	// Store, latch's own privileged routes are added (ProtectedPrefixes),
	// whatever the list says.
	Protect []string
	// Authenticator is consulted on every request carrying a credential and
	// required on protected ones; nil refuses every protected request.
	Authenticator Authenticator
	// Decider authorizes protected requests; nil denies them all.
	Decider Decider
	// Sessions, when set, rejects a JWT issued before the subject's last
	// password change. A Store is used when Sessions is nil.
	Sessions Sessions
	// Store, when set, makes latch answer the seed route and its own
	// login, session, user and reset routes (see routes.go).
	Store Store
	// Namespace is the path prefix of latch's own routes; "" means
	// DefaultNamespace (/.latch). Nothing below it is forwarded.
	Namespace string
	// SecureCookie marks the session cookie Secure and names it
	// __Host-latch_session: set it when the public URL is https.
	SecureCookie bool
	// SessionIdle and SessionAbsolute end browser sessions unused for
	// SessionIdle, or SessionAbsolute after sign-in; zero takes
	// DefaultSessionIdle and DefaultSessionAbsolute.
	SessionIdle, SessionAbsolute time.Duration
	// Handoff picks, by path prefix, what the upstream receives for an
	// authenticated request (see HandoffMode); other paths use
	// HandoffHeaders.
	Handoff []HandoffRoute
	// UpstreamTokens mints the tokens of HandoffJWT, with audience
	// HandoffAudience and lifetime HandoffTTL (zero = 5m). Required when
	// a route uses HandoffJWT.
	UpstreamTokens  UpstreamMinter
	HandoffAudience string
	HandoffTTL      time.Duration
	// JWKS, when set, is served at <ns>/jwks.json: the key set upstreams
	// verify HandoffJWT tokens with.
	JWKS []byte
	// Tokens mints login tokens; nil makes login answer 503.
	Tokens Minter
	// TokenTTL is the lifetime of login tokens; zero = 1h.
	TokenTTL time.Duration
	// ResetURL is the page reset links point at. Required with Store.
	ResetURL string
	// UserHeader and RolesHeader carry the identity upstream; defaults
	// X-Latch-User and X-Latch-Roles.
	UserHeader, RolesHeader string
	// BodyIdleTimeout ends a forwarded request whose body sends nothing
	// for this long, so a trickled body cannot hold an upstream connection
	// for ever; zero = 30s, negative = no limit.
	BodyIdleTimeout time.Duration
	// MaxBodyBytes caps bodies of routes latch answers itself; zero = 64 KiB.
	MaxBodyBytes int64
	// Login bounds the login route; zero fields take LoginLimits' defaults.
	Login LoginLimits
	// Logger receives access, decision and error lines; nil discards.
	Logger *slog.Logger
	// AccessLog, when set, receives the access lines (one JSON object per
	// request, the keys slog's JSONHandler would write, at level INFO or
	// ERROR) in one Write each, instead of Logger; latch encodes them
	// itself, which costs a fraction of slog's generic path. It must be
	// safe for concurrent use, and is meant to be Logger's own writer when
	// Logger writes JSON at level info or below.
	AccessLog io.Writer
	// Registerer receives latch_http_* and latch_upstream_* metrics; nil
	// registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler is latch's proxy-port front. Build it with New.
type Handler struct {
	opts          Options
	log           *slog.Logger
	now           func() time.Time
	fwd           http.Handler
	local         *http.ServeMux
	metrics       *metrics
	login         *loginGuard
	ids           *requestIDs
	lines         *lineWriter     // nil: access lines go to log
	resetURL      *url.URL        // Options.ResetURL parsed; nil without a Store
	localPrefixes []string        // literal prefixes of the local routes' patterns
	openRoutes    map[string]bool // patterns of local routes never protected
	strip         []string        // request headers removed before anything reads them
	ns            string          // the namespace, lower-case, no trailing '/'
	cookie        string          // the session cookie's name
	cop           *http.CrossOriginProtection
	resetHTML     []byte // resetPageHTML with the namespace's paths
}

// New builds the handler.
func New(o Options) (*Handler, error) {
	if o.Upstream == nil || o.Upstream.Host == "" {
		return nil, errors.New("proxy: Options.Upstream is required")
	}
	if o.Protect == nil {
		o.Protect = []string{"/api/admin/"}
	}
	if o.UserHeader == "" {
		o.UserHeader = "X-Latch-User"
	}
	if o.RolesHeader == "" {
		o.RolesHeader = "X-Latch-Roles"
	}
	o.UserHeader = http.CanonicalHeaderKey(o.UserHeader)
	o.RolesHeader = http.CanonicalHeaderKey(o.RolesHeader)
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 64 << 10
	}
	var resetURL *url.URL
	if o.Store != nil {
		if o.ResetURL == "" {
			return nil, errors.New("proxy: Options.ResetURL is required with a Store")
		}
		var err error
		if resetURL, err = url.Parse(o.ResetURL); err != nil {
			return nil, fmt.Errorf("proxy: Options.ResetURL: %w", err)
		}
	}
	ns := cleanNamespace(o.Namespace)
	if !validNamespace(ns) {
		return nil, fmt.Errorf("proxy: Options.Namespace %q is not a path prefix like /.latch", o.Namespace)
	}
	if o.Store != nil {
		o.Protect = ProtectedPrefixes(o.Protect, ns)
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = DefaultSessionIdle
	}
	if o.SessionAbsolute <= 0 {
		o.SessionAbsolute = DefaultSessionAbsolute
	}
	if o.HandoffTTL <= 0 {
		o.HandoffTTL = 5 * time.Minute
	}
	if o.HandoffAudience == "" {
		o.HandoffAudience = "upstream"
	}
	handoff, err := sortHandoff(o.Handoff, o.UpstreamTokens != nil)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	o.Handoff = handoff
	if o.BodyIdleTimeout == 0 {
		o.BodyIdleTimeout = 30 * time.Second
	}
	if o.Sessions == nil && o.Store != nil {
		o.Sessions = o.Store
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	h := &Handler{opts: o, log: o.Logger, now: o.Now, metrics: m, ids: newRequestIDs(), resetURL: resetURL,
		ns: ns, cookie: cookieName, cop: http.NewCrossOriginProtection(),
		resetHTML: bytes.ReplaceAll(resetPageHTML, []byte(DefaultNamespace+"/"), []byte(ns+"/"))}
	if o.SecureCookie {
		h.cookie = hostCookieName
	}
	if o.AccessLog != nil {
		h.lines = newLineWriter(o.AccessLog)
	}
	rt := o.Transport
	if rt == nil {
		rt = NewTransport(TransportOptions{})
	}
	h.fwd = h.forwarder(o.Upstream, &timedTransport{rt: rt, m: m})
	h.local = http.NewServeMux()
	h.openRoutes = map[string]bool{}
	h.login = newLoginGuard(o.Login, o.Now)
	h.strip = append([]string{o.UserHeader, o.RolesHeader}, rewriteHeaders...)
	h.routes()
	return h, nil
}

// reqState is what the chain learns about one request.
type reqState struct {
	requestID   string
	class       string // route class: proxy, protected, reset, auth, local
	path        string // canonical path, unescaped (URL.Path)
	escaped     string // canonical path, escaped (URL.RawPath and the decision)
	identity    *Identity
	upstream    time.Duration
	upstreamErr string
	decision    string // allow, deny or error; "" when no policy check ran
	// closeUpstream forwards the request on a connection that is not
	// reused (see noBodyMethod).
	closeUpstream bool
	// handoff is what the upstream gets for the identity; consumedAuthz
	// is true when the identity came from Authorization (which modes
	// headers and jwt then remove); upstreamToken is mode jwt's token.
	handoff       HandoffMode
	consumedAuthz bool
	upstreamToken string
	rule          []string // the deciding rule
	errorID       string   // the id of the error body latch answered with
	errorName     string
	cause         error // why, for the log only

	// methods, once computed (see methodsOf): the cross-origin check of
	// a session cookie and the policy check both need them.
	methods    []string // nil until computed
	methodsErr *Error

	// Storage for rec, identity and methods, so a request allocates one
	// reqState rather than four objects.
	rec   recorder
	id    Identity
	msBuf [2]string
}

// methodsOf is methods(r), computed once per request: a form body is read
// once, and the result shared by the cross-origin and policy checks.
func (st *reqState) methodsOf(r *http.Request) ([]string, *Error) {
	if st.methods == nil && st.methodsErr == nil {
		st.methods, st.methodsErr = methods(r, st.msBuf[:0])
	}
	return st.methods, st.methodsErr
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// ServeHTTP runs the chain, in this order:
//
//  1. recover: a panic becomes a 500 in the error shape;
//  2. request id: keep a valid client X-Request-Id or make one;
//  3. access log and metrics, around everything below;
//  4. canonical path: refuse ambiguous paths with 400;
//  5. strip client-sent identity headers, whatever their case or '_';
//  6. authenticate: required on protected paths, optional elsewhere
//     (an invalid credential there is treated as anonymous);
//  7. authorize protected paths with the Decider;
//  8. answer latch's own routes, or forward upstream.
//
// latch_http_requests_in_flight counts the request from before 1 until
// after 3 has logged it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.metrics.inFlight.Inc()
	defer h.metrics.inFlight.Dec() // deferred first: runs even when a panic goes on up
	start := h.now()
	st := &reqState{class: "proxy", requestID: r.Header.Get("X-Request-Id")}
	if !validRequestID(st.requestID) {
		st.requestID = h.ids.next()
	}
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	st.rec.ResponseWriter = w
	rec := &st.rec
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			if !rec.wrote {
				answerError(rec, r, &Error{Status: http.StatusInternalServerError, Name: NameInternal,
					Message: "latch could not handle this request."}, fmt.Errorf("panic: %v", p))
			}
		}
		h.finish(r, st, rec, start)
	}()
	h.serve(rec, r, st)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, st *reqState) {
	if e := checkMethod(r.Method); e != nil {
		st.class = "local"
		answerError(w, r, e, errors.New("refused method "+strconv.Quote(r.Method)))
		return
	}
	t, err := Resolve(r.URL.EscapedPath(), h.opts.Protect)
	if err != nil {
		st.class = "local"
		answerError(w, r, &Error{Status: http.StatusBadRequest, Name: NameBadData,
			Message: "The request path was refused: " + err.Error() + "."}, err)
		return
	}
	st.escaped, st.path = t.Escaped, t.Path
	stripIdentityHeaders(r.Header, h.strip)
	if hasBody(r) && h.opts.BodyIdleTimeout > 0 {
		// Every body, latch's own routes' and the override scan's included.
		ib := newIdleBody(w, r.Body, h.opts.BodyIdleTimeout)
		defer ib.stop()
		r.Body = ib
	}

	local, class, openRoute := h.localRoute(r, &t)
	isProtected := t.Protected && !openRoute
	// A path under latch's namespace that no route of latch's matches is
	// answered here (after the checks, when protected), never forwarded.
	miss := class == "" && h.inNamespace(t.Key)
	switch {
	case class != "":
		st.class = class
	case miss:
		st.class = "local"
	case isProtected:
		st.class = "protected"
	}
	if miss && !isProtected {
		answerError(w, r, h.namespaceMiss(r, t.Key), nil)
		return
	}

	if !h.authenticate(w, r, st, &t, isProtected) {
		return
	}
	if isProtected {
		ms, e := st.methodsOf(r)
		if e != nil {
			answerError(w, r, e, errors.New("refused method override"))
			return
		}
		if !h.authorize(w, r, st, ms, t.Readings) {
			return
		}
	}
	if local != nil {
		h.local.ServeHTTP(w, local)
		return
	}
	if miss {
		answerError(w, r, h.namespaceMiss(r, t.Key), nil)
		return
	}
	if hasBody(r) && noBodyMethod(r.Method) {
		st.closeUpstream = true
	}
	if st.identity != nil {
		st.handoff = h.handoffMode(&t)
		// A token only when it is sent: an Authorization latch did not
		// consume stays in its place (see HandoffJWT).
		if st.handoff == HandoffJWT && (st.consumedAuthz || len(r.Header["Authorization"]) == 0) {
			tok, _, err := h.opts.UpstreamTokens.MintUpstream(st.identity.Subject, st.identity.Roles, h.opts.HandoffAudience, h.opts.HandoffTTL)
			if err != nil {
				answerError(w, r, &Error{Status: http.StatusInternalServerError, Name: NameInternal,
					Message: "latch could not issue the upstream's token."}, err)
				return
			}
			st.upstreamToken = tok
		}
	}
	h.fwd.ServeHTTP(w, r)
}

// authenticate sets st.identity from the request's credential: its
// Authorization header if latch recognises it, else latch's session
// cookie. It answers and returns false when a protected request has no
// valid credential: a browser loading a page is sent to the login page,
// anything else gets 401. On an open route an invalid credential is
// treated as anonymous, and the request goes on.
//
// A session cookie on an unsafe method must pass the cross-origin check
// (net/http.CrossOriginProtection): on a protected route it is refused
// with 403 otherwise, elsewhere it is ignored. Bearer tokens are exempt: a
// browser never sends them by itself.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, st *reqState, t *Target, required bool) bool {
	hasAuthz := len(r.Header["Authorization"]) > 0
	secret := h.sessionSecret(r.Header)
	if !hasAuthz && secret == "" {
		if required {
			h.refuse(w, r, t, nil)
		}
		return !required
	}
	var denial *Denial
	var failed error
	if hasAuthz {
		id, d, err := h.bearer(r)
		switch {
		case err != nil:
			failed = err
		case d != nil:
			denial = d
		default:
			st.id, st.identity, st.consumedAuthz = id, &st.id, true
			return true
		}
	}
	// Only a credential latch does not recognise leaves the cookie to
	// decide. One it recognised and refused (expired, revoked, a bad
	// signature), or could not check, decides the request as it would
	// without a cookie: a session must not carry someone else's refused
	// credential through.
	if secret != "" && failed == nil && (denial == nil || unrecognised(denial.Reason)) {
		if err := h.crossOrigin(r, st); err != nil {
			if !required {
				return true
			}
			answerError(w, r, errCrossOrigin, err)
			return false
		}
		id, d, err := h.authenticateSession(r.Context(), secret)
		switch {
		case err != nil:
			failed = err
		case d != nil:
			if denial == nil {
				denial = d
			}
		default:
			st.id, st.identity = id, &st.id
			return true
		}
	}
	if !required {
		if denial != nil {
			h.log.Debug("invalid credential on an open route; continuing as anonymous",
				"reason", denial.Reason, "request_id", requestIDFrom(r.Context()))
		}
		return true
	}
	if failed != nil {
		answerError(w, r, &Error{Status: http.StatusServiceUnavailable, Name: NameUnavailable,
			Message: "latch cannot verify credentials right now; try again later."}, failed)
		return false
	}
	h.refuse(w, r, t, denial)
	return false
}

// unrecognised reports whether a denial's reason means latch did not
// recognise the credential at all (not its format, not in its tokens
// file), rather than refusing one it knows.
func unrecognised(reason string) bool {
	switch reason {
	case "missing", "empty", "malformed", "unknown_token":
		return true
	}
	return false
}

// crossOrigin is the cross-origin check of a request authenticated by the
// session cookie: net/http.CrossOriginProtection on its method and, for a
// safe method, on any method an override names (a GET with
// ?_method=DELETE is checked as the DELETE the upstream may run).
func (h *Handler) crossOrigin(r *http.Request, st *reqState) error {
	if err := h.cop.Check(r); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return nil // checked as what it is
	}
	ms, e := st.methodsOf(r)
	unsafe := e != nil // an override latch refuses: check as unsafe
	for _, m := range ms {
		if m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions {
			unsafe = true
		}
	}
	if !unsafe {
		return nil
	}
	r2 := *r
	r2.Method = http.MethodPost
	return h.cop.Check(&r2)
}

// bearer checks the Authorization header with the Authenticator and, for
// a JWT, against the stored user (ResolveSession).
func (h *Handler) bearer(r *http.Request) (Identity, *Denial, error) {
	if h.opts.Authenticator == nil {
		// Nothing to check it with: latch recognises no bearer credential.
		return Identity{}, &Denial{Reason: "missing"}, nil
	}
	id, denial, err := h.opts.Authenticator.Authenticate(r.Context(), r.Header)
	if err == nil && denial == nil && h.opts.Sessions != nil && id.Kind == "jwt" {
		id, denial, err = ResolveSession(r.Context(), h.opts.Sessions, id)
	}
	return id, denial, err
}

// refuse answers a protected request that has no valid credential: a
// browser loading a page goes to the login page (when latch has one), and
// anything else gets 401 naming it.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, t *Target, denial *Denial) {
	if h.opts.Store != nil && navigation(r) {
		h.redirectToLogin(w, r, t)
		return
	}
	msg, cause := msgNoCredential, errors.New("no credential")
	if denial != nil {
		cause = errors.New("credential refused: " + denial.Reason)
		if denial.Reason != "missing" {
			msg = denial.Message
		}
	}
	answerError(w, r, h.authRequired(msg), cause)
}

// authorize decides a protected request with the Decider, logs the
// decision and answers 403 unless it is allowed. A nil Decider or an error
// denies.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, st *reqState, methods, readings []string) bool {
	id := st.identity
	if id == nil {
		// Protected routes always authenticate first; this is a guard.
		answerError(w, r, h.authRequired(msgNoCredential), nil)
		return false
	}
	d, err := Decision{}, errNoPolicy
	if h.opts.Decider != nil {
		d, err = h.opts.Decider.Decide(id.Subject, id.Roles, methods, readings)
	}
	decision := "allow"
	switch {
	case err != nil:
		decision = "error"
		// The answer of a failed decision is not trusted beyond its rule.
		d = Decision{Rule: d.Rule, Method: d.Method, Path: d.Path}
	case !d.Allow:
		decision = "deny"
	}
	// The decision goes on the request's access line (see finish): one line
	// per request, with subject, roles, method, path, decision and rule.
	st.decision, st.rule = decision, d.Rule
	if decision == "allow" {
		return true
	}
	answerError(w, r, &Error{Status: http.StatusForbidden, Name: NameNoAccess,
		Message: d.Message(st.escaped)}, err)
	return false
}

var errNoPolicy = errors.New("no policy configured")

// Message is the client's 403 message for a denial of d.Method on the
// canonical path: the permission the rules name, or else the method and
// route pattern. It never lists the caller's roles or the rules, and names
// the path the client sent, not the reading that was denied.
func (d Decision) Message(path string) string {
	switch {
	case d.Permission != "":
		return fmt.Sprintf("You need the %q permission to perform this action.", d.Permission)
	case d.Pattern != "":
		return fmt.Sprintf("You need permission to %s %s.", d.Method, d.Pattern)
	}
	return fmt.Sprintf("You need permission to %s %s.", d.Method, path)
}
