package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/resetstore/etcdstore"
	"github.com/prometheus/client_golang/prometheus"
)

// openEtcd opens the etcd backend (store.backend: etcd) and waits up to
// store.etcd.dial_timeout for an answer: a latch that cannot reach etcd
// when it starts is misconfigured more often than not, so it stops with
// the endpoints it tried. Once running, an outage only makes the routes
// that need the store answer 503 until etcd is back.
func openEtcd(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (backend, error) {
	o, err := etcdOptions(cfg)
	if err != nil {
		return nil, err
	}
	o.Logger = log
	o.Registerer = reg
	s, err := etcdstore.Open(o)
	if err != nil {
		// Not `return etcdstore.Open(o)`: a nil *Store in a backend is
		// not a nil backend.
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, etcdUnreachable(cfg)
		}
		return nil, fmt.Errorf("store.etcd: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Store.Etcd.DialTimeout.D())
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		if errors.Is(err, latch.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			return nil, etcdUnreachable(cfg)
		}
		return nil, fmt.Errorf("store.etcd: etcd at %s refused latch: %v; check store.etcd.username, password_file and the TLS files",
			strings.Join(cfg.Store.Etcd.Endpoints, ", "), err)
	}
	return s, nil
}

func etcdUnreachable(cfg *config.Config) error {
	e := cfg.Store.Etcd
	return fmt.Errorf("store.etcd.endpoints: no etcd member answered at %s within store.etcd.request_timeout (%s) plus store.etcd.dial_timeout (%s); start etcd, or fix store.etcd.endpoints (LATCH_STORE_ETCD_ENDPOINTS) and its TLS settings",
		strings.Join(e.Endpoints, ", "), e.RequestTimeout, e.DialTimeout)
}

// etcdOptions maps the config to etcdstore.Options, reading the password
// and TLS files.
func etcdOptions(cfg *config.Config) (etcdstore.Options, error) {
	e := cfg.Store.Etcd
	o := etcdstore.Options{
		Endpoints:      e.Endpoints,
		Prefix:         e.Prefix,
		DialTimeout:    e.DialTimeout.D(),
		RequestTimeout: e.RequestTimeout.D(),
		Username:       e.Username,
		TokenTTL:       cfg.Reset.TTL.D(),
		MinInterval:    resetMinInterval(cfg),
	}
	if e.PasswordFile != "" {
		b, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return o, fmt.Errorf("store.etcd.password_file: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
		if o.Password == "" {
			return o, fmt.Errorf("store.etcd.password_file: %s is empty", e.PasswordFile)
		}
	}
	tlsCfg, err := etcdTLS(e)
	if err != nil {
		return o, err
	}
	o.TLS = tlsCfg
	return o, nil
}

// etcdTLS builds the client TLS config, or nil when no TLS file is set.
func etcdTLS(e config.Etcd) (*tls.Config, error) {
	if e.CAFile == "" && e.CertFile == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("store.etcd.ca_file: " + e.CAFile + " holds no PEM certificate")
		}
	}
	if e.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(e.CertFile, e.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
