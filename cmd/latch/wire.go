package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

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
	a.checks = append(a.checks, proxy.Check{Name: "policy", Err: func(context.Context) error {
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

	auth, err := openAuth(cfg, a.log, a.reg)
	if err != nil {
		return err
	}
	opts.Tokens = auth
	opts.TokenTTL = cfg.Auth.JWT.TTL.D()
	if err := handoffKeys(opts, auth); err != nil {
		return err
	}
	a.checks = append(a.checks, proxy.Check{Name: "jwks", Err: func(context.Context) error { return auth.Ready() }})
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
	// bbolt: this process makes every change, so cached sessions are exact;
	// etcd: other replicas change users too (see proxy.SessionCacheOptions).
	opts.Store = proxy.NewSessionCache(st, proxy.SessionCacheOptions{
		Shared:   cfg.Store.Backend != "bbolt",
		OnChange: auth.Invalidate,
	})
	opts.Authenticator = authenticator{a: auth}
	opts.ResetURL = cfg.Reset.URL
	opts.Login = proxy.LoginLimits{MaxConcurrent: cfg.Login.MaxConcurrent,
		PerSecond:  cfg.Login.MaxPerSecond,
		PerAccount: cfg.Login.PerAccountPerMinute, PerAddress: cfg.Login.PerAddressPerMinute}
	a.checks = append(a.checks, proxy.Check{Name: "store", Err: func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return st.Ping(ctx)
	}})
	a.loops = append(a.loops, func(ctx context.Context) { st.RunSweeper(ctx, cfg.Reset.SweepInterval.D()) })
	return nil
}

// handoffKeys gives the proxy latch's key set to publish and, when a
// route hands off in mode jwt, the minter of its tokens: which needs an
// Ed25519 key, since the upstream verifies with the public half.
func handoffKeys(opts *proxy.Options, auth *authn.Authenticator) error {
	if auth.CanPublish() {
		jwks, err := auth.JWKS()
		if err != nil {
			return err
		}
		opts.JWKS = jwks
	}
	for _, r := range opts.Handoff {
		if r.Mode != proxy.HandoffJWT {
			continue
		}
		if !auth.CanPublish() {
			return errors.New("auth.handoff: mode jwt needs an Ed25519 signing key (auth.signing_key_file holds an HMAC secret)")
		}
		opts.UpstreamTokens = auth
	}
	return nil
}

func policyOptions(cfg *config.Config) policy.Options {
	return policy.Options{
		ModelPath:    cfg.Policy.Model,
		RulesPath:    cfg.Policy.Rules,
		TestsPath:    cfg.Policy.Tests,
		MaxRuleDrop:  cfg.Policy.MaxRuleDrop,
		PollInterval: zeroIsOff(cfg.Policy.PollInterval.D()),
		// policy.settle 0 applies a change at once.
		Settle: zeroIsOff(cfg.Policy.Settle.D()),
	}
}

// zeroIsOff maps a config duration whose 0 means "off" to the policy
// package's convention, where 0 is the default and a negative is off.
func zeroIsOff(d time.Duration) time.Duration {
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
// ensureSigningKey creates.
func signingKeyPath(cfg *config.Config) string {
	if cfg.Auth.SigningKeyFile != "" {
		return cfg.Auth.SigningKeyFile
	}
	return filepath.Join(cfg.DataDir, "signing.key")
}

// authOptions maps the config to authn.Options. It creates nothing: a
// command that signs with the default key calls ensureSigningKey first.
func authOptions(cfg *config.Config) (authn.Options, error) {
	if f := cfg.Auth.SigningKeyFile; f != "" {
		if _, err := os.Stat(f); err != nil {
			return authn.Options{}, fmt.Errorf("auth.signing_key_file: %w", err)
		}
	}
	j := cfg.Auth.JWT
	return authn.Options{
		SigningKeyFile: signingKeyPath(cfg),
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

// openAuth builds the authenticator; when it fails because of the signing
// key, the error says what is wrong with the key and what to do.
func openAuth(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*authn.Authenticator, error) {
	o, err := authOptions(cfg)
	if err != nil {
		return nil, explainSigningKey(cfg, err)
	}
	o.Logger = log
	o.Registerer = reg
	a, err := authn.New(o)
	if err != nil {
		return nil, explainSigningKey(cfg, err)
	}
	return a, nil
}

// openMinter loads the signing key for a command that mints tokens
// (token, demo), first creating the default key, and the data dir it
// lives in, if need be. No JWKS is fetched.
func openMinter(cfg *config.Config) (*authn.Authenticator, error) {
	if cfg.Auth.SigningKeyFile == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data_dir: %w", err)
		}
	}
	if err := ensureSigningKey(cfg); err != nil {
		return nil, explainSigningKey(cfg, err)
	}
	o, err := authOptions(cfg)
	if err != nil {
		return nil, explainSigningKey(cfg, err)
	}
	o.JWKSURL = ""
	a, err := authn.New(o)
	if err != nil {
		return nil, explainSigningKey(cfg, err)
	}
	return a, nil
}

// backend is a store as latch opens it: what the proxy's routes use, and
// what serve checks, runs and closes. resetstore.Store and etcdstore.Store
// provide it.
type backend interface {
	proxy.Users
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
