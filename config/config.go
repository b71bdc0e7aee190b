package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file. The zero value is not useful:
// start from Default or Load.
type Config struct {
	// Listen is the proxy's address. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// AdminListen serves /healthz, /readyz and /metrics, never proxied
	// traffic. Default 127.0.0.1:9091.
	AdminListen string `yaml:"admin_listen"`
	// AdminPprof serves Go's profiler at /debug/pprof/ on admin_listen.
	// Default false; turn it on only where the admin port is private.
	AdminPprof bool `yaml:"admin_pprof"`
	// Upstream is the backend every request latch does not answer itself is
	// forwarded to. Required; http or https.
	Upstream string `yaml:"upstream"`
	// DataDir holds the bbolt store (latch.db). Default ./data.
	DataDir string `yaml:"data_dir"`
	// PublicURL is the externally visible base of latch, used in links
	// latch builds. Default http://<listen>. With https, the session
	// cookie is __Host-latch_session (Secure).
	PublicURL string `yaml:"public_url"`
	// Namespace is the path prefix under which latch serves its own pages
	// and APIs (login, logout, me, reset page, JWKS, user management), as
	// oauth2-proxy uses /oauth2/. Nothing under it reaches the upstream.
	// Default /.latch.
	Namespace string `yaml:"namespace"`

	// UpstreamTimeout bounds the wait for the upstream's response headers
	// (504 when it passes). Default 30s. Streaming bodies are not limited.
	UpstreamTimeout Duration `yaml:"upstream_timeout"`
	// DialTimeout bounds connecting to the upstream (502 when it passes).
	// Default 5s.
	DialTimeout Duration `yaml:"dial_timeout"`
	// IdleTimeout closes idle keep-alive connections, both client-side and
	// upstream-side. Default 90s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// ReadHeaderTimeout bounds reading a client's request headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ShutdownGrace is how long in-flight requests may run after SIGTERM.
	// Default 15s.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// MaxHeaderBytes caps a request's header size. Default 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes caps bodies of the routes latch answers itself (413
	// beyond it). Proxied bodies stream and are not limited. Default 65536.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxIdleConnsPerHost sizes the upstream keep-alive pool. Default 256.
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`

	Policy  Policy  `yaml:"policy"`
	Auth    Auth    `yaml:"auth"`
	Reset   Reset   `yaml:"reset"`
	Login   Login   `yaml:"login"`
	Session Session `yaml:"session"`
	Store   Store   `yaml:"store"`
	Log     Log     `yaml:"log"`
}

// Policy configures the Casbin files and which paths need authorization.
type Policy struct {
	// Model is the Casbin model file. Default policies/model.conf.
	Model string `yaml:"model"`
	// Rules is the Casbin policy CSV. Default policies/policy.csv.
	Rules string `yaml:"rules"`
	// Tests is an optional known-answer file every reload must pass.
	// Empty means none.
	Tests string `yaml:"tests"`
	// Protect lists path prefixes that need an authenticated, authorized
	// caller, matched without regard to case. Default ["/api/admin/"].
	Protect []string `yaml:"protect"`
	// MaxRuleDrop rejects a reload that loses more than this fraction of
	// the rules at once (a truncated file). Default 0.5.
	MaxRuleDrop float64 `yaml:"max_rule_drop"`
	// PollInterval re-reads the files as a fallback to file watching.
	// Default 30s; 0 disables polling.
	PollInterval Duration `yaml:"poll_interval"`
	// Settle guards against applying a half-written file: a changed
	// policy file is applied only when two reads this far apart are
	// equal. Writers should rename a complete file over the old one.
	// Default 1s; 0 applies a change as soon as it is read.
	Settle Duration `yaml:"settle"`
}

// Auth configures how latch finds out who is calling.
type Auth struct {
	// SigningKeyFile is latch's own key: an Ed25519 private key in PEM or a
	// file holding an HMAC secret of at least 32 bytes. latch signs login
	// tokens and `latch token` output with it. Default: none (then login
	// and `latch token` are unavailable).
	SigningKeyFile string `yaml:"signing_key_file"`
	// APITokensFile lists SHA-256 hashes of static API tokens. Optional.
	APITokensFile string `yaml:"api_tokens_file"`
	// Handoff says what the upstream receives for an authenticated
	// request, per path prefix: each entry is "<prefix> <mode>", the
	// longest matching prefix wins, and other paths use mode headers.
	// Modes: headers (remove the credential latch consumed, set the
	// identity headers), jwt (the same, plus Authorization: Bearer with a
	// short-lived JWT latch signs for the upstream; its key is at
	// <namespace>/jwks.json) and passthrough (Authorization as sent). In
	// every mode a credential latch did not recognise is forwarded
	// untouched, and latch's session cookie never is. It replaces
	// strip_authorization. Default: none (headers everywhere).
	Handoff    []string   `yaml:"handoff"`
	HandoffJWT HandoffJWT `yaml:"handoff_jwt"`
	// UserHeader carries the authenticated subject upstream. Default
	// X-Latch-User.
	UserHeader string `yaml:"user_header"`
	// RolesHeader carries the caller's roles upstream, comma-separated.
	// Default X-Latch-Roles.
	RolesHeader string `yaml:"roles_header"`
	JWT         JWT    `yaml:"jwt"`
}

// HandoffJWT configures the tokens of handoff mode jwt.
type HandoffJWT struct {
	// Audience is the tokens' aud. Default "upstream".
	Audience string `yaml:"audience"`
	// TTL is their lifetime; latch reuses one for half of it. Default 5m.
	TTL Duration `yaml:"ttl"`
}

// JWT configures token verification.
type JWT struct {
	// PublicKeyFiles are extra RSA, EC or Ed25519 public keys in PEM.
	PublicKeyFiles []string `yaml:"public_key_files"`
	// JWKSURL is fetched for keys by kid. Empty means none.
	JWKSURL string `yaml:"jwks_url"`
	// JWKSRefresh is the JWKS refresh period. Default 5m.
	JWKSRefresh Duration `yaml:"jwks_refresh"`
	// Issuer is required in every token's iss when set. Default "latch".
	Issuer string `yaml:"issuer"`
	// Audience is required in every token's aud when set. Default "latch".
	Audience string `yaml:"audience"`
	// Leeway is the accepted clock skew. Default 30s.
	Leeway Duration `yaml:"leeway"`
	// SubjectClaim names the claim holding the caller. Default "email",
	// falling back to "sub".
	SubjectClaim string `yaml:"subject_claim"`
	// RolesClaim names the claim holding an array of role names. Default
	// "roles".
	RolesClaim string `yaml:"roles_claim"`
	// TTL is the lifetime of tokens latch issues at login. Default 1h.
	TTL Duration `yaml:"ttl"`
}

// Reset configures the reset-password flow.
type Reset struct {
	// URL is the page reset links point at; the token is appended as
	// ?token=. Default <public_url><namespace>/reset-password.
	URL string `yaml:"url"`
	// TTL is how long a reset token lives. Default 24h.
	TTL Duration `yaml:"ttl"`
	// MinInterval is the least time between two links for one user.
	// Default 1m.
	MinInterval Duration `yaml:"min_interval"`
	// SweepInterval is how often expired tokens are removed. Default 10m.
	SweepInterval Duration `yaml:"sweep_interval"`
}

// Session configures browser sessions: the cookie latch sets when a
// user signs in on its login page.
type Session struct {
	// IdleTimeout ends a session unused for this long. Default 12h.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// AbsoluteTimeout ends a session this long after sign-in, however
	// used. Default 168h (7 days).
	AbsoluteTimeout Duration `yaml:"absolute_timeout"`
}

// Login configures the login route, <namespace>/login.
type Login struct {
	// MaxConcurrent bounds concurrent password hashes; beyond it login
	// answers 503 at once. Default 0: half the CPUs, at least 1.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxPerSecond budgets password hashes for the whole process (burst
	// twice that); beyond it login answers 503 at once, so a login flood
	// cannot starve proxied traffic. Default 0: one per CPU per second
	// (an argon2id hash costs tens of milliseconds of CPU).
	MaxPerSecond float64 `yaml:"max_per_second"`
	// PerAccountPerMinute and PerAddressPerMinute limit attempts (429).
	// Defaults 10 and 30.
	PerAccountPerMinute int `yaml:"per_account_per_minute"`
	PerAddressPerMinute int `yaml:"per_address_per_minute"`
}

// Store configures the user and token store.
type Store struct {
	// Backend is "bbolt" (the default: one file in data_dir, one process)
	// or "etcd" (shared by several latch replicas).
	Backend string `yaml:"backend"`
	// LockTimeout bounds waiting for the bbolt file's lock. Default 2s.
	LockTimeout Duration `yaml:"lock_timeout"`
	Etcd        Etcd     `yaml:"etcd"`
}

// Etcd configures the etcd backend (store.backend: etcd).
type Etcd struct {
	// Endpoints are the etcd members' client URLs. Required for etcd.
	Endpoints []string `yaml:"endpoints"`
	// Prefix starts every key latch writes. Default "/latch/".
	Prefix string `yaml:"prefix"`
	// DialTimeout bounds connecting to a member. Default 5s.
	DialTimeout Duration `yaml:"dial_timeout"`
	// RequestTimeout bounds each request; beyond it reset and login answer
	// 503. Default 5s.
	RequestTimeout Duration `yaml:"request_timeout"`
	// Username and PasswordFile enable etcd authentication. Empty: none.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// CAFile, CertFile and KeyFile enable TLS (client certificate when
	// CertFile and KeyFile are set). Empty: plain TCP.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Log configures log/slog output.
type Log struct {
	// Format is json (default) or text.
	Format string `yaml:"format"`
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
}

// Duration is a time.Duration written as "30s" in YAML and env values.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration like \"30s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like \"30s\"", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Default returns the configuration with every default filled in. Upstream
// is empty: it has no sensible default.
func Default() *Config {
	return &Config{
		Listen:              "127.0.0.1:8080",
		AdminListen:         "127.0.0.1:9091",
		DataDir:             "data",
		Namespace:           "/.latch",
		UpstreamTimeout:     Duration(30 * time.Second),
		DialTimeout:         Duration(5 * time.Second),
		IdleTimeout:         Duration(90 * time.Second),
		ReadHeaderTimeout:   Duration(10 * time.Second),
		ShutdownGrace:       Duration(15 * time.Second),
		MaxHeaderBytes:      64 << 10,
		MaxBodyBytes:        64 << 10,
		MaxIdleConnsPerHost: 256,
		Policy: Policy{
			Model:        "policies/model.conf",
			Rules:        "policies/policy.csv",
			Protect:      []string{"/api/admin/"},
			MaxRuleDrop:  0.5,
			PollInterval: Duration(30 * time.Second),
			Settle:       Duration(time.Second),
		},
		Auth: Auth{
			UserHeader:  "X-Latch-User",
			RolesHeader: "X-Latch-Roles",
			JWT: JWT{
				JWKSRefresh:  Duration(5 * time.Minute),
				Issuer:       "latch",
				Audience:     "latch",
				Leeway:       Duration(30 * time.Second),
				SubjectClaim: "email",
				RolesClaim:   "roles",
				TTL:          Duration(time.Hour),
			},
			HandoffJWT: HandoffJWT{Audience: "upstream", TTL: Duration(5 * time.Minute)},
		},
		Session: Session{IdleTimeout: Duration(12 * time.Hour), AbsoluteTimeout: Duration(168 * time.Hour)},
		Reset: Reset{
			TTL:           Duration(24 * time.Hour),
			MinInterval:   Duration(time.Minute),
			SweepInterval: Duration(10 * time.Minute),
		},
		Login: Login{PerAccountPerMinute: 10, PerAddressPerMinute: 30},
		Store: Store{Backend: "bbolt", LockTimeout: Duration(2 * time.Second), Etcd: Etcd{
			Prefix: "/latch/", DialTimeout: Duration(5 * time.Second), RequestTimeout: Duration(5 * time.Second)}},
		Log: Log{Format: "json", Level: "info"},
	}
}

// Load reads the file at path, applies env overrides from env (os.Environ
// form, "KEY=value"), resolves relative paths against the file's directory,
// fills derived defaults and validates. The error names each bad field.
func Load(path string, env []string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	c, err := Parse(f, env)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.resolvePaths(abs)
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a config from r strictly, then applies env overrides and
// derived defaults. It does not validate or resolve paths.
func Parse(r io.Reader, env []string) (*Config, error) {
	c := Default()
	if err := decode(r, c); err != nil {
		return nil, err
	}
	if err := applyEnv(c, env); err != nil {
		return nil, err
	}
	c.fillDerived()
	return c, nil
}

func (c *Config) fillDerived() {
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Listen
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.Namespace != "/" {
		c.Namespace = strings.TrimRight(c.Namespace, "/")
	}
	if c.Reset.URL == "" {
		c.Reset.URL = c.PublicURL + c.Namespace + "/reset-password"
	}
}

// resolvePaths makes every relative file path absolute against dir.
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{&c.DataDir, &c.Policy.Model, &c.Policy.Rules, &c.Policy.Tests,
		&c.Auth.SigningKeyFile, &c.Auth.APITokensFile, &c.Store.Etcd.PasswordFile,
		&c.Store.Etcd.CAFile, &c.Store.Etcd.CertFile, &c.Store.Etcd.KeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i, p := range c.Auth.JWT.PublicKeyFiles {
		if p != "" && !filepath.IsAbs(p) {
			c.Auth.JWT.PublicKeyFiles[i] = filepath.Join(dir, p)
		}
	}
}

// StorePath is the bbolt file inside DataDir.
func (c *Config) StorePath() string { return filepath.Join(c.DataDir, "latch.db") }
