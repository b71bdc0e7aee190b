package etcdstore

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults for zero Options fields.
const (
	DefaultPrefix         = "/latch/"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	DefaultProbeInterval  = 5 * time.Second
)

// Key spaces under the prefix; see doc.go.
const (
	spaceUsers      = "users/"
	spaceTokens     = "tokens/"
	spaceUserTokens = "usertokens/"
	// Browser sessions: see session.go.
	spaceSessions     = "sessions/"
	spaceUserSessions = "usersessions/"
)

// Values of a usertokens entry.
const (
	indexLive = ""
	indexUsed = "used"
)

// maxAttempts bounds the read-compare-write retries of one call when other
// writers keep changing the same keys.
const maxAttempts = 32

// Options configure Open. Endpoints is required; every other zero value is
// usable.
type Options struct {
	// Endpoints are the etcd members' client URLs.
	Endpoints []string
	// Prefix starts every key; empty means DefaultPrefix ("/latch/").
	Prefix string
	// DialTimeout bounds connecting; zero or negative means 5s.
	DialTimeout time.Duration
	// RequestTimeout bounds each call, retries included; zero or negative
	// means 5s. Beyond it the call fails with latch.ErrUnavailable.
	RequestTimeout time.Duration
	// Username and Password authenticate to etcd; empty Username means no
	// authentication.
	Username, Password string
	// TLS, when not nil, is used to connect (https endpoints).
	TLS *tls.Config
	// TokenTTL is how long a reset token is valid; zero or negative means
	// resetstore.DefaultTokenTTL (24h).
	TokenTTL time.Duration
	// MinInterval is the least time between two token issuances for one
	// user; zero means resetstore.DefaultMinInterval (1m), negative
	// disables the limit.
	MinInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives operational messages (never tokens or passwords),
	// the etcd client's warnings included; nil discards them.
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil means no metrics. Close
	// unregisters them.
	Registerer prometheus.Registerer
	// Hash are the argon2id parameters for new hashes; zero fields take
	// their defaults (see resetstore.HashParams).
	Hash resetstore.HashParams
	// ProbeInterval is how often RunSweeper checks that etcd answers; zero
	// or negative means 5s.
	ProbeInterval time.Duration
}

// Store is the etcd backend. Its methods are safe for concurrent use, by
// any number of Stores in any number of processes sharing one prefix.
type Store struct {
	cli         *clientv3.Client
	prefix      string
	reqTimeout  time.Duration
	probeEvery  time.Duration
	ttl         time.Duration
	minInterval time.Duration
	clock       func() time.Time
	log         *slog.Logger
	hash        resetstore.HashParams
	dummyHash   func() string
	metrics     *metrics
	leases      leaseCache

	// gate: closed is set by Close, which then waits for inflight callers.
	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup
}

// Open connects to etcd. Without authentication it does not wait for etcd
// to answer: while etcd is unreachable, calls fail with
// latch.ErrUnavailable and the store recovers by itself.
func Open(opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("etcdstore: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = DefaultProbeInterval
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = resetstore.DefaultTokenTTL
	}
	if opts.MinInterval == 0 {
		opts.MinInterval = resetstore.DefaultMinInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	log := opts.Logger.With("component", "etcdstore")
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            opts.Endpoints,
		DialTimeout:          opts.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Username:             opts.Username,
		Password:             opts.Password,
		TLS:                  opts.TLS,
		Logger:               zapToSlog(log, slog.LevelWarn),
	})
	if err != nil {
		return nil, fmt.Errorf("etcdstore: connecting to %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	s := &Store{
		cli:         cli,
		prefix:      opts.Prefix,
		reqTimeout:  opts.RequestTimeout,
		probeEvery:  opts.ProbeInterval,
		ttl:         opts.TokenTTL,
		minInterval: opts.MinInterval,
		clock:       opts.Now,
		log:         log,
		hash:        opts.Hash,
		dummyHash:   resetstore.DummyHash(opts.Hash),
		leases:      newLeaseCache(),
	}
	if s.metrics, err = newMetrics(opts.Registerer, s); err != nil {
		_ = cli.Close()
		return nil, err
	}
	if err := s.Ping(context.Background()); err != nil {
		log.Warn("etcd is not answering yet; reset and login answer 503 until it does", "endpoints", opts.Endpoints, "err", err)
	}
	return s, nil
}

// Close waits for running calls and closes the connection. It is safe to
// call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	s.inflight.Wait()
	s.metrics.Unregister()
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcdstore: closing: %w", err)
	}
	return nil
}

// Prefix returns the key prefix in use.
func (s *Store) Prefix() string { return s.prefix }

// Ping does one linearizable read, which needs a cluster with a leader and
// a quorum, and updates the up gauge.
func (s *Store) Ping(ctx context.Context) error {
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	_, err = s.cli.Get(ctx, s.prefix+"ping", clientv3.WithCountOnly())
	return s.fail(ctx, err)
}

// enter admits a call unless the store is closed, and bounds it by the
// request timeout; call done when finished.
func (s *Store) enter(ctx context.Context) (context.Context, func(), error) {
	leave, err := s.gate(ctx)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	return ctx, func() { cancel(); leave() }, nil
}

// gate admits a call unless the store is closed, without bounding it; for
// calls that bound each of their steps themselves. Call leave when finished.
func (s *Store) gate(ctx context.Context) (leave func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, resetstore.ErrClosed
	}
	s.inflight.Add(1)
	return s.inflight.Done, nil
}

// now is the injected clock without its monotonic reading.
func (s *Store) now() time.Time { return s.clock().Round(0) }

func (s *Store) userKey(email string) string { return s.prefix + spaceUsers + email }

func (s *Store) tokenKey(h resetstore.TokenHash) string {
	return s.prefix + spaceTokens + hex.EncodeToString(h[:])
}

func (s *Store) userTokensPrefix(email string) string {
	return s.prefix + spaceUserTokens + url.PathEscape(email) + "/"
}

func (s *Store) userTokenKey(email string, h resetstore.TokenHash) string {
	return s.userTokensPrefix(email) + hex.EncodeToString(h[:])
}

// hashFromKey decodes the hex token hash ending key.
func hashFromKey(key string) (resetstore.TokenHash, bool) {
	var h resetstore.TokenHash
	i := strings.LastIndexByte(key, '/')
	b, err := hex.DecodeString(key[i+1:])
	if err != nil || len(b) != len(h) {
		return h, false
	}
	copy(h[:], b)
	return h, true
}

// fail classifies an etcd error: nil stays nil (and marks etcd up), a
// connection or timeout failure wraps latch.ErrUnavailable (and marks
// it down), anything else is returned wrapped. ctx is the call's context,
// bounded by the request timeout.
func (s *Store) fail(ctx context.Context, err error) error {
	if err == nil {
		s.metrics.up.Set(1)
		return nil
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return ctx.Err() // the caller went away
	}
	if unavailable(err) {
		s.metrics.up.Set(0)
		s.metrics.errors.WithLabelValues(errUnavailable).Inc()
		return fmt.Errorf("%w: %v", latch.ErrUnavailable, err)
	}
	s.metrics.errors.WithLabelValues(errOther).Inc()
	return fmt.Errorf("etcdstore: %w", err)
}

// unavailable reports whether err means etcd could not serve the request
// now (unreachable, no leader, overloaded, out of time), as opposed to a
// refusal that retrying will not change.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	code := status.Code(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	}
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}
