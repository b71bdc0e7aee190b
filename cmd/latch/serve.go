package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/proxy"
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
		return err
	}
	return serve(ctx, e, cfg, func(proxyAddr, adminAddr string) {
		fmt.Fprintf(e.stdout, "proxy listening on http://%s\nadmin listening on http://%s\n", proxyAddr, adminAddr)
	})
}

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

// build opens and wires every part the config names.
func build(cfg *config.Config, log *slog.Logger, accessLog io.Writer) (a *app, err error) {
	a = &app{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
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
		Protect:            cfg.Policy.Protect,
		UserHeader:         cfg.Auth.UserHeader,
		RolesHeader:        cfg.Auth.RolesHeader,
		StripAuthorization: cfg.Auth.StripAuthorization,
		MaxBodyBytes:       cfg.MaxBodyBytes,
		Logger:             log,
		AccessLog:          accessLog,
		Registerer:         a.reg,
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
func serve(ctx context.Context, e *env, cfg *config.Config, listening func(proxyAddr, adminAddr string)) error {
	logOut := e.stderr
	var lw *logWriter
	if f, ok := e.stderr.(*os.File); ok { // a real file: batch the writes
		lw = newLogWriter(f)
		logOut = lw
		logCtx, stopLog := context.WithCancel(context.Background())
		flushed := make(chan struct{})
		go func() { lw.run(logCtx); close(flushed) }()
		defer func() { stopLog(); <-flushed }()
	} else {
		logOut = &syncWriter{w: logOut}
	}
	log, accessLog, err := newLogger(cfg.Log, logOut)
	if err != nil {
		return err
	}
	a, err := build(cfg, log, accessLog)
	if err != nil {
		return err
	}
	defer func() { _ = a.close() }()

	proxyLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		proxyLn.Close()
		return fmt.Errorf("admin_listen: %w", err)
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	proxySrv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout.D(),
		IdleTimeout:       cfg.IdleTimeout.D(),
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          errLog,
	}
	adminSrv := &http.Server{
		Handler:           proxy.Admin(a.checks, a.reg, proxy.AdminOptions{Pprof: cfg.AdminPprof}),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout.D(),
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          errLog,
	}

	loopCtx, stopLoops := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	for _, loop := range a.loops {
		loops.Go(func() { loop(loopCtx) })
	}
	if a.reload != nil && e.sighup != nil {
		loops.Go(func() {
			for {
				select {
				case <-loopCtx.Done():
					return
				case <-e.sighup:
					log.Info("SIGHUP: reloading")
					a.reload()
				}
			}
		})
	}

	errc := make(chan error, 2)
	go func() { errc <- proxySrv.Serve(proxyLn) }()
	go func() { errc <- adminSrv.Serve(adminLn) }()
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
	log.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace.D())
	defer cancel()
	err = errors.Join(proxySrv.Shutdown(shutCtx), adminSrv.Shutdown(shutCtx))
	stopLoops()
	loops.Wait()
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
	log.Info("stopped")
	return nil
}

// newLogger builds latch's logger on w, which must be safe for concurrent
// use. accessLog is w when the access lines may bypass slog (JSON at level
// info or below: see proxy.Options.AccessLog), else nil.
func newLogger(c config.Log, w io.Writer) (log *slog.Logger, accessLog io.Writer, err error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	o := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, o)), nil, nil
	}
	if level <= slog.LevelInfo {
		accessLog = w
	}
	return slog.New(slog.NewJSONHandler(w, o)), accessLog, nil
}
