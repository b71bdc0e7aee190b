// Command latchprof runs latch's proxy port in-process under runtime/pprof,
// so the benchmark can show where a forwarded request's CPU goes. latch
// itself has no profiling endpoint.
//
// It builds the handler from the same config file and the same packages as
// `latch serve` (cmd/latch/wire.go): policy.Open, authn.New, resetstore.Open
// and proxy.New, joined by adapters that copy wire.go's. The admin port,
// watchers and sweepers are left out; they are not on the request path.
// Override data_dir and listen with LATCH_DATA_DIR / LATCH_LISTEN when a
// latch is running on the same config.
//
// The CPU profile starts on SIGUSR1 and is written to --cpuprofile on
// SIGTERM or SIGINT, after which latchprof exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/policy"
	"github.com/latch-dev/latch/proxy"
	"github.com/latch-dev/latch/proxy/authn"
	"github.com/latch-dev/latch/resetstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func main() {
	cfgPath := flag.String("config", "", "latch configuration file")
	out := flag.String("cpuprofile", "cpu.prof", "where to write the CPU profile")
	allowAll := flag.Bool("allow-all", false, "what-if: replace the policy's decision by a constant allow (to see latch's cost without Decide)")
	flag.Parse()
	if err := run(*cfgPath, *out, *allowAll); err != nil {
		fmt.Fprintln(os.Stderr, "latchprof:", err)
		os.Exit(1)
	}
}

func run(cfgPath, out string, allowAll bool) error {
	cfg, err := config.Load(cfgPath, os.Environ())
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return err
	}
	o := &slog.HandlerOptions{Level: level}
	log := slog.New(slog.NewJSONHandler(os.Stderr, o))
	if cfg.Log.Format == "text" {
		log = slog.New(slog.NewTextHandler(os.Stderr, o))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	engine, err := policy.Open(policy.Options{ModelPath: cfg.Policy.Model, RulesPath: cfg.Policy.Rules,
		TestsPath: cfg.Policy.Tests, MaxRuleDrop: cfg.Policy.MaxRuleDrop, PollInterval: -1,
		Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	j := cfg.Auth.JWT
	auth, err := authn.New(authn.Options{SigningKeyFile: cfg.Auth.SigningKeyFile, PublicKeyFiles: j.PublicKeyFiles,
		Issuer: j.Issuer, Audience: j.Audience, Leeway: j.Leeway.D(), SubjectClaim: j.SubjectClaim,
		RolesClaim: j.RolesClaim, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	minInterval := cfg.Reset.MinInterval.D()
	if minInterval == 0 {
		minInterval = -1
	}
	st, err := resetstore.Open(cfg.StorePath(), resetstore.Options{Timeout: cfg.Store.LockTimeout.D(),
		TokenTTL: cfg.Reset.TTL.D(), MinInterval: minInterval, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	defer st.Close()
	var dec proxy.Decider = decider{engine}
	if allowAll {
		dec = allow{}
	}
	up, err := url.Parse(cfg.Upstream)
	if err != nil {
		return err
	}
	h, err := proxy.New(proxy.Options{
		Upstream: up,
		Transport: proxy.NewTransport(proxy.TransportOptions{DialTimeout: cfg.DialTimeout.D(),
			ResponseHeaderTimeout: cfg.UpstreamTimeout.D(), IdleConnTimeout: cfg.IdleTimeout.D(),
			MaxIdleConnsPerHost: cfg.MaxIdleConnsPerHost}),
		Protect: cfg.Policy.Protect, UserHeader: cfg.Auth.UserHeader, RolesHeader: cfg.Auth.RolesHeader,
		StripAuthorization: cfg.Auth.StripAuthorization, MaxBodyBytes: cfg.MaxBodyBytes,
		Logger: log, Registerer: reg,
		Decider: dec, Authenticator: authenticator{auth}, Tokens: auth,
		TokenTTL: j.TTL.D(), Store: store{st}, ResetURL: cfg.Reset.URL,
		Login: proxy.LoginLimits{MaxConcurrent: cfg.Login.MaxConcurrent,
			PerAccount: cfg.Login.PerAccountPerMinute, PerAddress: cfg.Login.PerAddressPerMinute},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: cfg.ReadHeaderTimeout.D(), IdleTimeout: cfg.IdleTimeout.D(),
		MaxHeaderBytes: cfg.MaxHeaderBytes}
	go func() { _ = srv.Serve(ln) }()
	fmt.Println(ln.Addr().String())

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	var f *os.File
	for s := range sig {
		if s == syscall.SIGUSR1 {
			if f != nil {
				continue
			}
			if f, err = os.Create(out); err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			continue
		}
		break
	}
	if f != nil {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// The adapters below copy cmd/latch/wire.go's.

type decider struct{ e *policy.Engine }

func (d decider) Decide(sub string, roles []string, method, path string) (proxy.Decision, error) {
	r, err := d.e.Decide(sub, roles, method, path)
	return proxy.Decision{Allow: r.Allow, Rule: r.Rule, Permission: r.Permission, Pattern: r.Pattern}, err
}

// allow is the what-if decider: every request allowed, at no cost.
type allow struct{}

func (allow) Decide(string, []string, string, string) (proxy.Decision, error) {
	return proxy.Decision{Allow: true, Rule: []string{"what-if", "allow"}}, nil
}

type authenticator struct{ a *authn.Authenticator }

func (x authenticator) Authenticate(ctx context.Context, h http.Header) (proxy.Identity, *proxy.Denial, error) {
	id, reason, err := x.a.Authenticate(ctx, h)
	if err != nil {
		return proxy.Identity{}, nil, err
	}
	if reason != "" {
		return proxy.Identity{}, &proxy.Denial{Reason: string(reason), Message: reason.Message()}, nil
	}
	return proxy.Identity{Subject: id.Subject, Roles: id.Roles, Kind: id.Kind, IssuedAt: id.IssuedAt}, nil, nil
}

type store struct{ s *resetstore.Store }

func user(u resetstore.User) proxy.User {
	return proxy.User{Email: u.Email, Roles: u.Roles, HasPassword: u.HasPassword, Created: u.Created, PasswordChanged: u.PasswordChanged}
}

func storeErr(err error) error {
	var rl *resetstore.RateLimitError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, resetstore.ErrUserNotFound), errors.Is(err, resetstore.ErrInvalidEmail):
		return proxy.ErrUserNotFound
	case errors.Is(err, resetstore.ErrUserExists):
		return proxy.ErrUserExists
	case errors.Is(err, resetstore.ErrInvalidToken):
		return proxy.ErrInvalidToken
	case errors.Is(err, resetstore.ErrUsedToken):
		return proxy.ErrUsedToken
	case errors.As(err, &rl):
		return &proxy.RateLimited{RetryAfter: rl.RetryAfter}
	}
	return err
}

func (s store) PasswordChanged(ctx context.Context, email string) (time.Time, error) {
	u, err := s.s.GetUser(ctx, email)
	if errors.Is(err, resetstore.ErrUserNotFound) || errors.Is(err, resetstore.ErrInvalidEmail) {
		return time.Time{}, nil
	}
	return u.PasswordChanged, storeErr(err)
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
	return user(u), storeErr(err)
}

func (s store) SetRoles(ctx context.Context, email string, roles []string) (proxy.User, error) {
	u, err := s.s.SetRoles(ctx, email, roles)
	return user(u), storeErr(err)
}

func (s store) DeleteUser(ctx context.Context, email string) error {
	return storeErr(s.s.DeleteUser(ctx, email))
}
