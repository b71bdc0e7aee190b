package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/policy"
	"github.com/latch-dev/latch/proxy"
	"github.com/latch-dev/latch/proxy/authn"
	"github.com/latch-dev/latch/resetstore"
	"github.com/prometheus/client_golang/prometheus"
)

// wire opens the policy, the authenticator and the store the config names,
// joins them to the proxy options, and registers their checks, loops and
// closers on a.
func (a *app) wire(opts *proxy.Options) error {
	cfg := a.cfg
	engine, err := openPolicy(cfg, a.log, a.reg)
	if err != nil {
		return err
	}
	opts.Decider = decider{engine}
	a.checks = append(a.checks, proxy.Check{Name: "policy", Err: func() error {
		if engine.Rules() == 0 {
			return errors.New("no policy rules loaded")
		}
		return nil
	}})
	a.loops = append(a.loops, func(ctx context.Context) {
		if err := engine.Watch(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("policy watch stopped; SIGHUP and restarts still reload", "error", err)
		}
	})
	a.reload = func() { _ = engine.Reload() }

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	auth, err := openAuth(cfg, a.log, a.reg)
	if err != nil {
		return err
	}
	opts.Tokens = auth
	opts.TokenTTL = cfg.Auth.JWT.TTL.D()
	a.checks = append(a.checks, proxy.Check{Name: "jwks", Err: auth.Ready})
	a.loops = append(a.loops, auth.Run)

	st, err := openStore(cfg, a.log, a.reg)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, st.Close)
	if err := writePID(cfg.DataDir); err != nil {
		a.log.Warn("could not write the pid file", "error", err)
	} else {
		a.closers = append(a.closers, func() error { return removePID(cfg.DataDir) })
	}
	// bbolt: this process makes every change, so entries never go stale.
	// A shared backend: re-read after 5s (another replica may change a
	// user), and ride out an outage on entries up to 5m old.
	var ttl, staleMax time.Duration
	if cfg.Store.Backend != "bbolt" {
		ttl, staleMax = 5*time.Second, 5*time.Minute
	}
	users := store{s: st, onPasswordChange: auth.Invalidate, sessions: newSessionCache(100_000, ttl, staleMax, time.Now)}
	opts.Store = users
	opts.Authenticator = authenticator{a: auth}
	opts.ResetURL = cfg.Reset.URL
	opts.Login = proxy.LoginLimits{MaxConcurrent: cfg.Login.MaxConcurrent,
		PerSecond:  cfg.Login.MaxPerSecond,
		PerAccount: cfg.Login.PerAccountPerMinute, PerAddress: cfg.Login.PerAddressPerMinute}
	a.checks = append(a.checks, proxy.Check{Name: "store", Err: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return st.Ping(ctx)
	}})
	a.loops = append(a.loops, func(ctx context.Context) { st.RunSweeper(ctx, cfg.Reset.SweepInterval.D()) })
	return nil
}

func policyOptions(cfg *config.Config) policy.Options {
	return policy.Options{
		ModelPath:    cfg.Policy.Model,
		RulesPath:    cfg.Policy.Rules,
		TestsPath:    cfg.Policy.Tests,
		MaxRuleDrop:  cfg.Policy.MaxRuleDrop,
		PollInterval: pollInterval(cfg.Policy.PollInterval.D()),
		// policy.settle 0 applies a change at once; policy.Options takes a
		// negative for that (its zero is the 1s default).
		Settle: pollInterval(cfg.Policy.Settle.D()),
	}
}

// pollInterval maps a config duration whose 0 means "off" to the policy
// package's convention, where 0 is the default and a negative is off.
func pollInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// resetMinInterval maps the config's reset.min_interval 0 (no limit) to
// the stores' negative value.
func resetMinInterval(cfg *config.Config) time.Duration {
	if d := cfg.Reset.MinInterval.D(); d != 0 {
		return d
	}
	return -1
}

func openPolicy(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*policy.Engine, error) {
	o := policyOptions(cfg)
	o.Logger = log
	o.Registerer = reg
	return policy.Open(o)
}

// signingKeyPath is the configured key, or <data_dir>/signing.key, which
// latch creates (Ed25519, mode 0600) the first time it needs it.
func signingKeyPath(cfg *config.Config) (string, error) {
	if cfg.Auth.SigningKeyFile != "" {
		if _, err := os.Stat(cfg.Auth.SigningKeyFile); err != nil {
			return "", fmt.Errorf("auth.signing_key_file: %w", err)
		}
		return cfg.Auth.SigningKeyFile, nil
	}
	p := filepath.Join(cfg.DataDir, "signing.key")
	if err := ensureEd25519Key(p); err != nil {
		return "", fmt.Errorf("signing key %s: %w", p, err)
	}
	return p, nil
}

func authOptions(cfg *config.Config) (authn.Options, error) {
	key, err := signingKeyPath(cfg)
	if err != nil {
		return authn.Options{}, err
	}
	j := cfg.Auth.JWT
	return authn.Options{
		SigningKeyFile: key,
		PublicKeyFiles: j.PublicKeyFiles,
		JWKSURL:        j.JWKSURL,
		JWKSRefresh:    j.JWKSRefresh.D(),
		Issuer:         j.Issuer,
		Audience:       j.Audience,
		Leeway:         j.Leeway.D(),
		SubjectClaim:   j.SubjectClaim,
		RolesClaim:     j.RolesClaim,
		APITokensFile:  cfg.Auth.APITokensFile,
		HTTPClient:     &http.Client{Timeout: 10 * time.Second},
	}, nil
}

func openAuth(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*authn.Authenticator, error) {
	o, err := authOptions(cfg)
	if err != nil {
		return nil, err
	}
	o.Logger = log
	o.Registerer = reg
	return authn.New(o)
}

// backend is what latch needs from a user and token store. The bbolt
// store (resetstore.Store) provides it; other backends return the same
// resetstore errors.
type backend interface {
	AddUser(ctx context.Context, email string, roles []string, password string) (latch.User, error)
	GetUser(ctx context.Context, email string) (latch.User, error)
	ListUsers(ctx context.Context) ([]latch.User, error)
	DeleteUser(ctx context.Context, email string) error
	SetRoles(ctx context.Context, email string, roles []string) (latch.User, error)
	VerifyPassword(ctx context.Context, email, password string) (latch.User, bool, error)
	IssueResetToken(ctx context.Context, email string) (string, time.Time, error)
	ValidateResetToken(ctx context.Context, token string) (string, time.Time, error)
	RedeemResetToken(ctx context.Context, token, newPassword string) (string, error)
	Ping(ctx context.Context) error
	RunSweeper(ctx context.Context, every time.Duration)
	Close() error
}

// openStore opens the backend the config names.
func openStore(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (backend, error) {
	switch cfg.Store.Backend {
	case "bbolt":
		return openBolt(cfg, log, reg)
	case "etcd":
		return openEtcd(cfg, log, reg)
	}
	return nil, fmt.Errorf("store.backend: %q is not a known backend", cfg.Store.Backend)
}

func openBolt(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (backend, error) {
	s, err := resetstore.Open(cfg.StorePath(), resetstore.Options{
		Timeout:     cfg.Store.LockTimeout.D(),
		TokenTTL:    cfg.Reset.TTL.D(),
		MinInterval: resetMinInterval(cfg),
		Logger:      log,
		Registerer:  reg,
	})
	if errors.Is(err, resetstore.ErrLocked) {
		return nil, fmt.Errorf("%w%s", err, holder(cfg.DataDir))
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// authenticator adapts authn to the proxy: a Reason becomes a Denial. The
// proxy checks JWTs against the store itself (proxy.ResolveSession).
type authenticator struct {
	a *authn.Authenticator
}

func (x authenticator) Authenticate(ctx context.Context, h http.Header) (proxy.Identity, *proxy.Denial, error) {
	id, reason, err := x.a.Authenticate(ctx, h)
	if err != nil {
		return proxy.Identity{}, nil, err
	}
	if reason != "" {
		return proxy.Identity{}, &proxy.Denial{Reason: string(reason), Message: reason.Message()}, nil
	}
	return proxy.Identity{Subject: id.Subject, Roles: id.Roles, Kind: id.Kind, IssuedAt: id.IssuedAt,
		Bound: id.Bound, Generation: id.Generation}, nil, nil
}

// store adapts resetstore to the proxy: its users and errors become the
// proxy's.
type store struct {
	s                backend
	onPasswordChange func(email string)
	// sessions caches Session (see sessionCache).
	sessions *sessionCache
}

// changed drops what is cached about email after a write to that user
// (password, roles, creation, deletion), so this process sees it at once.
func (s store) changed(email string) {
	s.sessions.drop(strings.ToLower(email))
	if s.onPasswordChange != nil {
		s.onPasswordChange(email)
	}
}

func user(u latch.User) proxy.User {
	return proxy.User{Email: u.Email, Roles: u.Roles, HasPassword: u.HasPassword, Created: u.Created,
		PasswordChanged: u.PasswordChanged, Generation: u.Generation}
}

func storeErr(err error) error {
	var rl *latch.RateLimitError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, latch.ErrUserNotFound):
		return proxy.ErrUserNotFound
	case errors.Is(err, latch.ErrUserExists):
		return proxy.ErrUserExists
	case errors.Is(err, latch.ErrInvalidToken):
		return proxy.ErrInvalidToken
	case errors.Is(err, latch.ErrUsedToken):
		return proxy.ErrUsedToken
	case errors.Is(err, latch.ErrInvalidEmail):
		return proxy.ErrUserNotFound
	case errors.As(err, &rl):
		return &proxy.RateLimited{RetryAfter: rl.RetryAfter}
	case errors.Is(err, resetstore.ErrClosed) || errors.Is(err, latch.ErrUnavailable):
		return fmt.Errorf("%w: %v", proxy.ErrUnavailable, err)
	}
	return err
}

// Session reads the subject's session state, through the cache. A subject
// that is no stored user (or not an email) is Found false.
func (s store) Session(ctx context.Context, email string) (proxy.Session, error) {
	key := strings.ToLower(email)
	cached, fresh, usable := s.sessions.get(key)
	if fresh {
		return cached, nil
	}
	v := s.sessions.version()
	u, err := s.s.GetUser(ctx, email)
	var sess proxy.Session
	switch {
	case errors.Is(err, latch.ErrUserNotFound) || errors.Is(err, latch.ErrInvalidEmail):
	case errors.Is(err, latch.ErrUnavailable) && usable:
		return cached, nil // the last known answer, within staleMax
	case err != nil:
		return proxy.Session{}, storeErr(err)
	default:
		sess = proxy.Session{Found: true, Generation: u.Generation, PasswordChanged: u.PasswordChanged, Roles: u.Roles}
	}
	s.sessions.put(key, sess, v)
	return sess, nil
}

func (s store) IssueResetToken(ctx context.Context, email string) (string, time.Time, error) {
	t, exp, err := s.s.IssueResetToken(ctx, email)
	return t, exp, storeErr(err)
}

func (s store) ValidateResetToken(ctx context.Context, token string) (string, time.Time, error) {
	e, exp, err := s.s.ValidateResetToken(ctx, token)
	return e, exp, storeErr(err)
}

func (s store) RedeemResetToken(ctx context.Context, token, pw string) (string, error) {
	e, err := s.s.RedeemResetToken(ctx, token, pw)
	if err == nil {
		s.changed(e)
	}
	return e, storeErr(err)
}

func (s store) VerifyPassword(ctx context.Context, email, pw string) (proxy.User, bool, error) {
	u, ok, err := s.s.VerifyPassword(ctx, email, pw)
	return user(u), ok, storeErr(err)
}

func (s store) ListUsers(ctx context.Context) ([]proxy.User, error) {
	us, err := s.s.ListUsers(ctx)
	out := make([]proxy.User, len(us))
	for i, u := range us {
		out[i] = user(u)
	}
	return out, storeErr(err)
}

func (s store) GetUser(ctx context.Context, email string) (proxy.User, error) {
	u, err := s.s.GetUser(ctx, email)
	return user(u), storeErr(err)
}

func (s store) AddUser(ctx context.Context, email string, roles []string, pw string) (proxy.User, error) {
	u, err := s.s.AddUser(ctx, email, roles, pw)
	s.changed(email)
	return user(u), storeErr(err)
}

func (s store) SetRoles(ctx context.Context, email string, roles []string) (proxy.User, error) {
	u, err := s.s.SetRoles(ctx, email, roles)
	s.changed(email)
	return user(u), storeErr(err)
}

func (s store) DeleteUser(ctx context.Context, email string) error {
	err := s.s.DeleteUser(ctx, email)
	s.changed(email)
	return storeErr(err)
}
