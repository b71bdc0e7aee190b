package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults applied by New to zero-valued Options fields.
const (
	DefaultJWKSRefresh     = 5 * time.Minute
	DefaultLeeway          = 30 * time.Second
	DefaultSubjectClaim    = "email"
	DefaultRolesClaim      = "roles"
	DefaultAPITokensReload = 5 * time.Second
	// DefaultIssuer and DefaultAudience are what Mint writes when
	// Options.Issuer or Options.Audience is empty.
	DefaultIssuer   = "latch"
	DefaultAudience = "latch"
)

// Options configures an Authenticator. At least one source of credentials
// (SigningKeyFile, PublicKeyFiles, JWKSURL or APITokensFile) must be set.
type Options struct {
	// SigningKeyFile is latch's own key: an Ed25519 private key in PKCS#8 PEM
	// (tokens are signed with EdDSA) or a file whose content, with surrounding
	// whitespace removed, is an HMAC secret of at least 32 bytes (HS256).
	// Empty means Mint returns ErrNoSigningKey and no own tokens verify.
	SigningKeyFile string
	// PublicKeyFiles are PEM files of RSA, ECDSA or Ed25519 public keys
	// (PKIX, PKCS#1 or certificates) whose tokens are accepted. Nil means none.
	PublicKeyFiles []string
	// JWKSURL is fetched by Run for verification keys. Empty means no JWKS.
	JWKSURL string
	// JWKSRefresh is how often the JWKS is re-fetched. Zero means
	// DefaultJWKSRefresh. An unknown kid also triggers an early refresh, at
	// most once a minute.
	JWKSRefresh time.Duration
	// Issuer is the required iss claim. Empty means iss is not checked
	// (Mint then writes DefaultIssuer).
	Issuer string
	// Audience must be among the aud claim's values. Empty means aud is not
	// checked (Mint then writes DefaultAudience).
	Audience string
	// Leeway is the clock skew allowed on exp and nbf. Zero means DefaultLeeway.
	Leeway time.Duration
	// SubjectClaim names the claim holding the subject; when it is absent
	// or empty, "sub" is used. Empty means DefaultSubjectClaim.
	SubjectClaim string
	// RolesClaim names the claim holding the roles, an array of strings.
	// Empty means DefaultRolesClaim.
	RolesClaim string
	// APITokensFile is the static API tokens file (format in the package
	// documentation). Empty means API tokens are not accepted.
	APITokensFile string
	// APITokensReload is how often Run checks APITokensFile for changes.
	// Zero means DefaultAPITokensReload.
	APITokensReload time.Duration
	// HTTPClient fetches the JWKS. Nil means a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives operational messages; tokens are never logged.
	// Nil means logs are discarded.
	Logger *slog.Logger
	// Registerer receives the metrics. Nil means metrics are not registered.
	Registerer prometheus.Registerer
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Identity is an authenticated caller.
type Identity struct {
	Subject   string
	Roles     []string  // nil when the credential carries none
	Kind      string    // KindJWT or KindAPIToken
	IssuedAt  time.Time // zero when unknown (API tokens, JWTs without iat)
	ExpiresAt time.Time // zero for API tokens, which do not expire
	// Own is true for a JWT signed with latch's own key (Options.SigningKeyFile).
	Own bool
	// Bound is true for a login token: an Own JWT carrying the gen claim
	// (see MintSession). Generation is that claim's value; both are zero
	// otherwise (a gen claim in another issuer's token is ignored).
	Bound      bool
	Generation uint64
}

// Identity kinds.
const (
	KindJWT      = "jwt"
	KindAPIToken = "api_token"
)

// ErrNoSigningKey is returned by Mint, MintSession, MintUpstream and JWKS
// when Options.SigningKeyFile is empty.
var ErrNoSigningKey = errors.New("authn: no signing key configured")

// errNotReady is returned by Ready and, wrapped, by Authenticate when a
// token needs the JWKS and none has been fetched yet.
var errNotReady = errors.New("authn: JWKS has not been fetched yet")

// Authenticator verifies credentials. Create it with New and start Run to keep
// the JWKS and API tokens file fresh; its methods are safe for concurrent use.
type Authenticator struct {
	opts    Options // with defaults applied
	log     *slog.Logger
	now     func() time.Time
	client  *http.Client
	metrics *metrics
	parser  *jwt.Parser

	signing *signingKey // nil without SigningKeyFile
	static  []verifyKey // own key and public key files

	jwks   atomic.Pointer[jwksKeys]
	tokens atomic.Pointer[tokenTable] // nil without APITokensFile
	cache  *tokenCache

	upstream *upstreamCache // tokens MintUpstream signed

	refreshMu sync.Mutex
	inflight  *flight   // the JWKS fetch in progress, if any
	lastEarly time.Time // when the last early (unknown kid) refresh started

	tokensMu   sync.Mutex
	tokensHash [32]byte // SHA-256 of the API tokens file last loaded
}

// New loads the configured keys and API tokens file. It does not fetch the
// JWKS; Run does. An unreadable or invalid file is an error naming it.
func New(opts Options) (*Authenticator, error) {
	if opts.SigningKeyFile == "" && len(opts.PublicKeyFiles) == 0 && opts.JWKSURL == "" && opts.APITokensFile == "" {
		return nil, errors.New("authn: no credential source configured (signing key, public key files, JWKS URL or API tokens file)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"JWKSRefresh", opts.JWKSRefresh}, {"Leeway", opts.Leeway}, {"APITokensReload", opts.APITokensReload}} {
		if d.v < 0 {
			return nil, fmt.Errorf("authn: %s is negative (%v)", d.name, d.v)
		}
	}
	if opts.JWKSURL != "" {
		u, err := url.Parse(opts.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("authn: JWKSURL %q is not an http(s) URL", opts.JWKSURL)
		}
	}
	if opts.JWKSRefresh == 0 {
		opts.JWKSRefresh = DefaultJWKSRefresh
	}
	if opts.Leeway == 0 {
		opts.Leeway = DefaultLeeway
	}
	if opts.SubjectClaim == "" {
		opts.SubjectClaim = DefaultSubjectClaim
	}
	if opts.RolesClaim == "" {
		opts.RolesClaim = DefaultRolesClaim
	}
	if opts.APITokensReload == 0 {
		opts.APITokensReload = DefaultAPITokensReload
	}
	a := &Authenticator{
		opts:   opts,
		log:    opts.Logger,
		now:    opts.Now,
		client: opts.HTTPClient,
		cache:  newTokenCache(maxCachedTokens),

		upstream: newUpstreamCache(maxUpstreamTokens),
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.client == nil {
		a.client = &http.Client{Timeout: jwksFetchTimeout}
	}

	if opts.SigningKeyFile != "" {
		sk, err := loadSigningKey(opts.SigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("authn: %w", err)
		}
		warnIfExposed(a.log, opts.SigningKeyFile)
		a.signing = sk
		a.static = append(a.static, sk.verify)
	}
	for _, path := range opts.PublicKeyFiles {
		keys, err := loadPublicKeys(path)
		if err != nil {
			return nil, fmt.Errorf("authn: %w", err)
		}
		a.static = append(a.static, keys...)
	}
	if opts.APITokensFile != "" {
		if _, err := a.reloadAPITokens(); err != nil {
			return nil, fmt.Errorf("authn: %w", err)
		}
	}
	a.jwks.Store(&jwksKeys{})

	a.parser = jwt.NewParser(a.parserOptions()...)

	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	a.metrics = m
	return a, nil
}

// parserOptions derives golang-jwt's options from the configuration. The
// accepted algorithms are those any configured key could verify: the JWKS
// may hold any asymmetric key type, but HS256 needs latch's own secret.
func (a *Authenticator) parserOptions() []jwt.ParserOption {
	algs := map[string]bool{}
	for _, k := range a.static {
		for _, alg := range k.algs {
			algs[alg] = true
		}
	}
	if a.opts.JWKSURL != "" {
		for _, alg := range asymmetricAlgs {
			algs[alg] = true
		}
	}
	methods := make([]string, 0, len(algs))
	for alg := range algs {
		methods = append(methods, alg)
	}
	po := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		// An iat in the future (beyond the leeway) is refused: such a
		// token would outlive the password changes of its subject.
		jwt.WithIssuedAt(),
		jwt.WithLeeway(a.opts.Leeway),
		jwt.WithTimeFunc(a.now),
	}
	if a.opts.Issuer != "" {
		po = append(po, jwt.WithIssuer(a.opts.Issuer))
	}
	if a.opts.Audience != "" {
		po = append(po, jwt.WithAudience(a.opts.Audience))
	}
	return po
}

var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Authenticate checks the credential in h's Authorization header.
//
// It returns an Identity and an empty Reason when the credential is good, a
// non-empty Reason when it is denied (a denial is not an error), and a
// non-nil error when the answer cannot be known, for example because the
// token needs the JWKS and it has never been fetched; callers must fail
// closed. ctx bounds any JWKS fetch the request waits for.
func (a *Authenticator) Authenticate(ctx context.Context, h http.Header) (Identity, Reason, error) {
	id, reason, err := a.authenticate(ctx, h)
	switch {
	case err != nil:
		a.log.LogAttrs(ctx, slog.LevelWarn, "authentication failed", slog.String("error", err.Error()))
		a.metrics.observe(resultError, "")
		return Identity{}, "", err
	case reason != "":
		a.log.LogAttrs(ctx, slog.LevelDebug, "credential denied", slog.String("reason", string(reason)))
		a.metrics.observe(resultFailure, reason)
		return Identity{}, reason, nil
	}
	a.metrics.observe(resultSuccess, "")
	return id, "", nil
}

func (a *Authenticator) authenticate(ctx context.Context, h http.Header) (Identity, Reason, error) {
	token, reason := credential(h)
	if reason != "" {
		return Identity{}, reason, nil
	}
	// A token verified before is found by its hash, before any other work:
	// the cache holds only JWTs that passed verification, unexpired. The
	// same hash keys the API tokens table.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token))) // read only: no copy of the token
	if id, ok := a.cache.get(sum, a.now()); ok {
		return id, "", nil
	}
	if looksLikeJWT(token) {
		return a.verifyJWT(ctx, token, sum)
	}
	if t := a.tokens.Load(); t != nil {
		id, reason := t.lookup(sum)
		return id, reason, nil
	}
	return Identity{}, ReasonMalformed, nil
}

// Ready returns nil once the JWKS has been fetched at least once, or at once
// when no JWKS is configured.
func (a *Authenticator) Ready() error {
	if a.opts.JWKSURL == "" || a.jwks.Load().fetched {
		return nil
	}
	return errNotReady
}

// Run keeps the JWKS and the API tokens file fresh until ctx is done. It
// fetches the JWKS immediately, then every Options.JWKSRefresh (sooner after a
// failure), and checks the API tokens file every Options.APITokensReload.
// A JWKS fetch in flight when ctx ends finishes in the background, bounded by
// its own 10s timeout.
func (a *Authenticator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if a.opts.JWKSURL != "" {
		wg.Go(func() { a.runJWKS(ctx) })
	}
	if a.opts.APITokensFile != "" {
		wg.Go(func() { a.runAPITokens(ctx) })
	}
	wg.Wait()
}
