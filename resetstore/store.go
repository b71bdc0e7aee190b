package resetstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bucket names. Keys are described beside each.
const (
	// bucketMeta holds "schema" -> the file's schema version (one byte).
	bucketMeta = "meta"
	// bucketUsers maps a lowercased email to a JSON UserRecord.
	bucketUsers = "users"
	// bucketTokens maps SHA-256(raw token) to a JSON tokenRecord.
	bucketTokens = "tokens"
	// bucketTokenExpiry indexes tokens by expiry: key is the 8-byte
	// big-endian expiry in Unix nanoseconds followed by the 32-byte token
	// hash; the value is empty. Sweep walks it from the start.
	bucketTokenExpiry = "token_expiry"
	// bucketUserTokens indexes tokens by user: key is the lowercased email,
	// a zero byte, then the 32-byte token hash; the value is empty.
	bucketUserTokens = "user_tokens"
	// bucketSessions maps a browser session's key (the 32 bytes its hex
	// key spells) to a JSON SessionRecord.
	bucketSessions = "sessions"
	// bucketSessionExpiry indexes sessions by expiry as bucketTokenExpiry
	// indexes tokens: 8-byte big-endian Expires in Unix nanoseconds, then
	// the 32-byte key; the value is empty. Sweep walks it.
	bucketSessionExpiry = "session_expiry"
	// bucketUserSessions indexes sessions by user as bucketUserTokens
	// indexes tokens: the lowercased email, a zero byte, then the 32-byte
	// key; the value is empty. A change of the user's password, roles or
	// existence walks it to end the user's sessions.
	bucketUserSessions = "user_sessions"
)

// schemaVersion stays 1 with the session buckets: Open creates missing
// buckets, and a file without sessions reads as one whose sessions ended.
const schemaVersion = 1

var allBuckets = []string{bucketMeta, bucketUsers, bucketTokens, bucketTokenExpiry, bucketUserTokens,
	bucketSessions, bucketSessionExpiry, bucketUserSessions}

// Defaults for zero Options fields.
const (
	DefaultTimeout     = 2 * time.Second
	DefaultTokenTTL    = 24 * time.Hour
	DefaultMinInterval = time.Minute
)

// Options configure Open. The zero value is usable.
type Options struct {
	// Timeout is how long Open waits for the file lock; zero or negative
	// means DefaultTimeout (2s).
	Timeout time.Duration
	// TokenTTL is how long a reset token is valid; zero or negative means
	// DefaultTokenTTL (24h).
	TokenTTL time.Duration
	// MinInterval is the least time between two token issuances for one
	// user; zero means DefaultMinInterval (1m), negative disables the limit.
	MinInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives operational messages (never tokens or passwords);
	// nil discards them.
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil means no metrics. Close
	// unregisters them, so a reopened store can use the same Registerer.
	Registerer prometheus.Registerer
	// Hash are the argon2id parameters for new hashes; zero fields take
	// their defaults (see HashParams).
	Hash HashParams
}

// Store is latch's data file. Its methods are safe for concurrent use.
type Store struct {
	db          *bolt.DB
	path        string
	ttl         time.Duration
	minInterval time.Duration
	clock       func() time.Time
	log         *slog.Logger
	hash        HashParams
	metrics     *Metrics
	dummyHash   func() string

	// gate: closed is set by Close, which then waits for inflight callers.
	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup

	// group commit of issuances; see batch.go.
	issueq     chan *issueRequest
	stop       chan struct{}
	issuerDone chan struct{}
	sweepBatch int // records per Sweep transaction
	// testHookBatch, when set, is called by the issuer goroutine with each
	// batch's size before its transaction starts.
	testHookBatch func(n int)
}

// Open opens (creating if needed) the data file at path. The directory must
// exist. If another Store holds the file, Open fails after opts.Timeout with
// an error wrapping ErrLocked.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.MinInterval == 0 {
		opts.MinInterval = DefaultMinInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, &lockError{path: path}
	}
	if err != nil {
		return nil, fmt.Errorf("resetstore: opening %s: %w", path, err)
	}
	if err := db.Update(initBuckets); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("resetstore: initialising %s: %w", path, err)
	}

	s := &Store{
		db:          db,
		path:        path,
		ttl:         opts.TokenTTL,
		minInterval: opts.MinInterval,
		clock:       opts.Now,
		log:         opts.Logger.With("component", "resetstore"),
		hash:        opts.Hash.withDefaults(),
		dummyHash:   DummyHash(opts.Hash),
		sweepBatch:  defaultSweepBatch,
		issueq:      make(chan *issueRequest, maxIssueBatch),
		stop:        make(chan struct{}),
		issuerDone:  make(chan struct{}),
	}
	if s.metrics, err = newMetrics(opts.Registerer, s); err != nil {
		_ = db.Close()
		return nil, err
	}
	go s.runIssuer()
	return s, nil
}

func initBuckets(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return err
		}
	}
	meta := tx.Bucket([]byte(bucketMeta))
	switch v := meta.Get([]byte("schema")); {
	case v == nil:
		return meta.Put([]byte("schema"), []byte{schemaVersion})
	case len(v) != 1 || v[0] != schemaVersion:
		return fmt.Errorf("unsupported schema version %v (this build reads %d)", v, schemaVersion)
	}
	return nil
}

// Close waits for running operations, stops the issuer and closes the file.
// It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	s.inflight.Wait()
	close(s.stop)
	<-s.issuerDone
	s.metrics.Unregister()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("resetstore: closing %s: %w", s.path, err)
	}
	return nil
}

// Path returns the data file's path as given to Open.
func (s *Store) Path() string { return s.path }

// enter admits an operation unless the store is closed; call the returned
// function when done.
func (s *Store) enter(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.inflight.Add(1)
	return s.inflight.Done, nil
}

// now is the injected clock without its monotonic reading, so that times
// compare equal before and after a round trip through the file.
func (s *Store) now() time.Time { return s.clock().Round(0) }

// update runs fn in a write transaction and records its commit duration.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	start := time.Now()
	err := s.db.Update(fn)
	s.metrics.Commit.Observe(time.Since(start).Seconds())
	return err
}

// Ping reports whether the store can serve: nil while it is open and its
// file can be read. It is cheap (one empty read transaction), for
// readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()
	return s.db.View(func(*bolt.Tx) error { return nil })
}
