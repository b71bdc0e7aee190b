package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/policy"
	"github.com/latch-dev/latch/proxy"
	"github.com/latch-dev/latch/resetstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func cmdServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags("serve", "serve --config FILE", e.stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if done, err := parse(fs, args); done {
		return err
	}
	if *path == "" {
		fmt.Fprintln(e.stderr, "latch serve: --config is required")
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*path, e.environ)
	if err != nil {
		return oneLine(err)
	}
	return oneLine(serve(ctx, e, cfg, func(proxyAddr, adminAddr string) {
		printListening(e.stdout, cfg.Log.Format, "http://"+proxyAddr, "http://"+adminAddr)
	}))
}

// printListening prints on stdout where latch listens, for scripts and
// tests: in text format "proxy listening on URL" and "admin listening on
// URL"; in JSON, where every line latch prints is JSON, one object each,
// {"time":…,"level":"INFO","msg":"proxy listening","url":URL}.
func printListening(w io.Writer, format, proxyURL, adminURL string) {
	if format == "text" {
		fmt.Fprintf(w, "proxy listening on %s\nadmin listening on %s\n", proxyURL, adminURL)
		return
	}
	log := slog.New(slog.NewJSONHandler(w, nil))
	log.Info("proxy listening", "url", proxyURL)
	log.Info("admin listening", "url", adminURL)
}

// oneLine makes a multi-line error (errors.Join) one line, "; " between
// the parts: a failed start prints exactly one line.
func oneLine(err error) error {
	if err == nil || !strings.Contains(err.Error(), "\n") {
		return err
	}
	return lineError{err}
}

type lineError struct{ err error }

func (e lineError) Error() string { return strings.ReplaceAll(e.err.Error(), "\n", "; ") }
func (e lineError) Unwrap() error { return e.err }

// app is everything serve builds from a config, before it listens.
type app struct {
	cfg     *config.Config
	log     *slog.Logger
	reg     *prometheus.Registry
	handler http.Handler
	checks  []proxy.Check
	// loops run in the background until shutdown (file watchers, sweepers).
	loops []func(context.Context)
	// reload runs on SIGHUP.
	reload func()
	// closers run after the servers stopped, last one first.
	closers []func() error
}

func (a *app) close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	return errors.Join(errs...)
}

// build opens and wires every part the config names. On error it closes
// what it opened.
func build(cfg *config.Config, log *slog.Logger, accessLog io.Writer) (_ *app, err error) {
	a := &app{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			_ = a.close()
		}
	}()
	a.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	)
	upstream, err := url.Parse(cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	opts := proxy.Options{
		Upstream: upstream,
		Transport: proxy.NewTransport(proxy.TransportOptions{
			DialTimeout:           cfg.DialTimeout.D(),
			ResponseHeaderTimeout: cfg.UpstreamTimeout.D(),
			IdleConnTimeout:       cfg.IdleTimeout.D(),
			MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		}),
		Protect:         cfg.Policy.Protect,
		UserHeader:      cfg.Auth.UserHeader,
		RolesHeader:     cfg.Auth.RolesHeader,
		Namespace:       cfg.Namespace,
		SecureCookie:    isHTTPS(cfg.PublicURL),
		SessionIdle:     cfg.Session.IdleTimeout.D(),
		SessionAbsolute: cfg.Session.AbsoluteTimeout.D(),
		HandoffAudience: cfg.Auth.HandoffJWT.Audience,
		HandoffTTL:      cfg.Auth.HandoffJWT.TTL.D(),
		MaxBodyBytes:    cfg.MaxBodyBytes,
		Logger:          log,
		AccessLog:       accessLog,
		Registerer:      a.reg,
	}
	if opts.Handoff, err = proxy.ParseHandoff(cfg.Auth.Handoff); err != nil {
		return nil, err
	}
	if err := a.wire(&opts); err != nil {
		return nil, err
	}
	h, err := proxy.New(opts)
	if err != nil {
		return nil, err
	}
	a.handler = h
	return a, nil
}

func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "latch_build_info",
		Help:        "Always 1; the labels say which latch this is.",
		ConstLabels: prometheus.Labels{"version": version(), "goversion": goVersion()},
	})
	g.Set(1)
	return g
}

// serve runs latch until ctx is done, then shuts down gracefully. When
// listening is not nil it receives the bound addresses (tests use port 0).
// Its steps: logs, start (ports, checks, build), servers, loops, serving,
// stop.
func serve(ctx context.Context, e *env, cfg *config.Config, listening func(proxyAddr, adminAddr string)) error {
	out, flushLogs := logOutput(e.stderr)
	defer flushLogs()
	held := &heldWriter{w: out}
	log, accessLog, err := newLogger(cfg.Log, held)
	if err != nil {
		return err
	}
	a, proxyLn, adminLn, err := start(cfg, log, accessLog)
	// A failed start prints only its error (the logs too at level debug);
	// a good one prints the logs it held.
	held.open(err == nil || cfg.Log.Level == "debug")
	if err != nil {
		return err
	}
	defer func() { _ = a.close() }()

	srv := newServers(a)
	stopLoops := a.runLoops(e.sighup)
	errc := srv.serve(proxyLn, adminLn)
	log.Info("latch serving", "listen", proxyLn.Addr().String(), "admin_listen", adminLn.Addr().String(),
		"upstream", cfg.Upstream, "version", version())
	if listening != nil {
		listening(proxyLn.Addr().String(), adminLn.Addr().String())
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	return a.stop(srv, stopLoops, serveErr)
}

// servers are latch's two HTTP servers: the proxy port's and the admin
// port's.
type servers struct{ proxy, admin *http.Server }

func newServers(a *app) servers {
	cfg := a.cfg
	errLog := slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)
	return servers{
		proxy: &http.Server{
			Handler:           a.handler,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout.D(),
			IdleTimeout:       cfg.IdleTimeout.D(),
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          errLog,
		},
		admin: &http.Server{
			Handler:           proxy.Admin(a.checks, a.reg, proxy.AdminOptions{Pprof: cfg.AdminPprof}),
			ReadHeaderTimeout: cfg.ReadHeaderTimeout.D(),
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			ErrorLog:          errLog,
		},
	}
}

// serve serves both ports in the background; the channel receives the
// error that ends either.
func (s servers) serve(proxyLn, adminLn net.Listener) <-chan error {
	errc := make(chan error, 2)
	go func() { errc <- s.proxy.Serve(proxyLn) }()
	go func() { errc <- s.admin.Serve(adminLn) }()
	return errc
}

// shutdown stops both, letting requests in flight finish within grace.
func (s servers) shutdown(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return errors.Join(s.proxy.Shutdown(ctx), s.admin.Shutdown(ctx))
}

// runLoops starts a's loops in the background and, when sighup is not
// nil, a reload on each SIGHUP. stop ends them and waits for them.
func (a *app) runLoops(sighup <-chan os.Signal) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	for _, loop := range a.loops {
		loops.Go(func() { loop(ctx) })
	}
	if a.reload != nil && sighup != nil {
		loops.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-sighup:
					a.log.Info("SIGHUP: reloading")
					a.reload()
				}
			}
		})
	}
	return func() { cancel(); loops.Wait() }
}

// stop shuts latch down in order: the servers (within shutdown_grace),
// the loops, then what build opened. serveErr is the error that ended
// serving, if any.
func (a *app) stop(srv servers, stopLoops func(), serveErr error) error {
	a.log.Info("shutting down", "grace", a.cfg.ShutdownGrace.D())
	err := srv.shutdown(a.cfg.ShutdownGrace.D())
	stopLoops()
	if cerr := a.close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	a.closers = nil
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return errors.Join(serveErr, err)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	a.log.Info("stopped")
	return nil
}

// start takes the ports, checks the data dir and the signing key, and
// builds the app. Its errors name the config key at fault and say what to
// do, in one line each.
func start(cfg *config.Config, log *slog.Logger, accessLog io.Writer) (*app, net.Listener, net.Listener, error) {
	proxyLn, err := listen("listen", cfg.Listen)
	if err != nil {
		return nil, nil, nil, err
	}
	adminLn, err := listen("admin_listen", cfg.AdminListen)
	if err != nil {
		proxyLn.Close()
		return nil, nil, nil, err
	}
	a, err := prepare(cfg, log, accessLog)
	if err != nil {
		proxyLn.Close()
		adminLn.Close()
		return nil, nil, nil, err
	}
	return a, proxyLn, adminLn, nil
}

// prepare checks the data dir, creates the default signing key if need
// be, then builds the app. The signing key is read once, by build; a key
// that does not load is explained then (explainSigningKey).
func prepare(cfg *config.Config, log *slog.Logger, accessLog io.Writer) (*app, error) {
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := checkStoreFile(cfg); err != nil {
		return nil, err
	}
	if err := ensureSigningKey(cfg); err != nil {
		return nil, explainSigningKey(cfg, err)
	}
	a, err := build(cfg, log, accessLog)
	if err != nil {
		return nil, explainStart(cfg, err)
	}
	return a, nil
}

// listen listens on addr, the value of the config key key.
func listen(key, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("%s: %s is already in use by another program (or another latch); stop it, or choose another address with %s (%s)",
			key, addr, key, config.EnvName(key))
	}
	return nil, fmt.Errorf("%s: cannot listen on %s: %s; fix %s (%s)", key, addr, reason(err), key, config.EnvName(key))
}

// explainStart puts an error from build in the user's terms: which key,
// what is wrong, what to do.
func explainStart(cfg *config.Config, err error) error {
	var fe *policy.FileError
	switch {
	case errors.As(err, &fe):
		key, what := "policy", "policy file"
		switch fe.Path {
		case cfg.Policy.Model:
			key, what = "policy.model", "Casbin model file"
		case cfg.Policy.Rules:
			key, what = "policy.rules", "Casbin policy file"
		case cfg.Policy.Tests:
			key, what = "policy.tests", "known-answer file"
		}
		if fe.Line == 0 {
			if _, serr := os.Stat(fe.Path); errors.Is(serr, fs.ErrNotExist) {
				return fmt.Errorf("%s: %s does not exist; create it, or point %s (%s) at your %s",
					key, fe.Path, key, config.EnvName(key), what)
			} else if serr != nil {
				return fmt.Errorf("%s: cannot read %s: %s; make it a file readable by %s", key, fe.Path, reason(serr), whoAmI())
			}
		}
		return fmt.Errorf("%s: %s; fix the file (latch check --config FILE lists every problem)", key, fe)
	case errors.Is(err, resetstore.ErrLocked):
		who := "another process"
		if pid := holderPID(cfg.DataDir); pid != "" {
			who = "another latch (pid " + pid + ")"
		}
		return fmt.Errorf("data_dir: %s is in use by %s; stop it, or give this latch its own data_dir (LATCH_DATA_DIR)", cfg.DataDir, who)
	}
	return err
}

// isHTTPS reports whether u's scheme is https, in any case (url.Parse
// lower-cases it).
func isHTTPS(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Scheme == "https"
}
