package policy

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure an Engine. Only ModelPath and RulesPath are required.
type Options struct {
	ModelPath string // Casbin model file (policies/model.conf)
	RulesPath string // Casbin policy CSV (policies/policy.csv)
	TestsPath string // known-answer file checked on every load; "" means none

	// MaxRuleDrop rejects a reload whose rule count is lower than the running
	// policy's by more than this fraction (a truncated file). Zero means 0.5;
	// use 1 to accept any drop.
	MaxRuleDrop float64
	// PollInterval is how often Watch re-reads the files in case a change
	// notification was missed. Zero means 30s; negative disables polling.
	PollInterval time.Duration
	// Settle is how long changed files must read the same before they are
	// loaded, so a file written in pieces, with pauses shorter than Settle,
	// is not loaded half-written: Watch (notification or poll) and Reload
	// (SIGHUP) load the files only once a second read, Settle after the
	// first, finds the same bytes; meanwhile the policy in force stays.
	// Zero means 1s; negative loads a change as soon as it is read (no
	// settling). See the package documentation, "Writing the files".
	Settle time.Duration
	// CacheEntries bounds the decisions remembered for the policy in force
	// (each policy starts with an empty cache). Zero means 32768; negative
	// turns caching off.
	CacheEntries int

	Logger     *slog.Logger          // nil discards logs
	Registerer prometheus.Registerer // nil registers no metrics
	Now        func() time.Time      // nil means time.Now
}

const (
	defaultMaxRuleDrop  = 0.5
	defaultPollInterval = 30 * time.Second
	defaultSettle       = time.Second
)

func (o Options) withDefaults() (Options, error) {
	if o.ModelPath == "" || o.RulesPath == "" {
		return o, errors.New("policy: ModelPath and RulesPath are required")
	}
	if o.MaxRuleDrop == 0 {
		o.MaxRuleDrop = defaultMaxRuleDrop
	}
	if o.MaxRuleDrop < 0 || o.MaxRuleDrop > 1 {
		return o, fmt.Errorf("policy: MaxRuleDrop must be between 0 and 1, got %v", o.MaxRuleDrop)
	}
	if o.PollInterval == 0 {
		o.PollInterval = defaultPollInterval
	}
	if o.Settle == 0 {
		o.Settle = defaultSettle
	}
	if o.CacheEntries == 0 {
		o.CacheEntries = defaultCacheEntries
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Engine decides requests against the policy in force and replaces that
// policy, whole, when the files change. It is safe for concurrent use.
type Engine struct {
	opts Options
	log  *slog.Logger
	m    *metrics
	cur  atomic.Pointer[state]

	mu    sync.Mutex // serialises loads; guards gen, tried and m's info label
	gen   uint64
	tried [32]byte // digest of the content the last load attempt read (or of its read error)

	// pending is the digest of changed content Watch read and is letting
	// settle (settle.go); valid when hasPending.
	pending    [32]byte
	hasPending bool
	// after starts a settle wait: time.After, replaced by tests.
	after func(time.Duration) <-chan time.Time
}

// Open loads and validates the files and returns an Engine deciding with
// them. Its error (a *FileError for bad content) is meant to stop start-up.
// Metrics are registered only once the files are good.
func Open(opts Options) (*Engine, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	src, digest, err := readSources(&opts)
	if err != nil {
		return nil, err
	}
	st, err := build(&opts, src, digest, nil)
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, log: opts.Logger, m: newMetrics(), after: time.After}
	if opts.Registerer != nil {
		if err := e.m.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("policy: registering metrics: %w", err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tried = digest
	e.install(st)
	e.log.Info("policy loaded", "generation", st.gen, "rules", st.rules(), "hash", st.hash, "tests", st.tests)
	return e, nil
}

// Rules returns the number of rules (p and g lines, duplicates counted once)
// in the policy in force.
func (e *Engine) Rules() int { return e.cur.Load().rules() }

// Generation returns the number of policies installed so far, starting at 1
// for the one Open loaded. It changes exactly when the policy in force does,
// so it can key a decision cache.
func (e *Engine) Generation() uint64 { return e.cur.Load().gen }

// Hash returns the first 12 hex digits of sha256(model file + policy file)
// for the policy in force, the value of latch_policy_info's hash label.
func (e *Engine) Hash() string { return e.cur.Load().hash }

// Reload reads the files again, builds a complete new policy, validates it
// and installs it atomically. On failure the running policy stays in force,
// the reason is logged with file and line, and returned. It is what SIGHUP
// should call; it always reloads, even if the files look unchanged.
//
// Files that differ from the policy in force are loaded only once settled
// (Options.Settle), as Watch does: Reload reads them, waits Settle, reads
// them again, and loads what it read once two reads in a row agree. So a
// SIGHUP that brings an edit returns after Settle, and one that a tool sends
// mid-write does not load half a file. If the files are still changing
// after 10 waits (maxReloadWaits), Reload gives up with ErrUnsettled and the
// policy in force stays (a running Watch loads the files once they settle).
// Files that hold the policy in force, or Settle < 0, need no wait.
func (e *Engine) Reload() error {
	var prev [32]byte
	for waits := 0; ; waits++ {
		e.mu.Lock()
		src, digest, err := e.read()
		if cur := e.cur.Load(); err == nil && digest == cur.digest {
			// The files hold the policy in force (often the watcher already
			// loaded them): a successful reload with nothing to build, so a
			// SIGHUP after an edit never builds the same policy twice.
			e.tried = digest
			e.m.reloadOK.Inc()
			e.m.installed(cur, float64(e.opts.Now().UnixNano())/1e9)
			e.mu.Unlock()
			e.log.Info("policy reloaded: files unchanged", "generation", cur.gen, "hash", cur.hash)
			return nil
		}
		if e.opts.Settle < 0 || (waits > 0 && digest == prev) {
			err = e.reloadLocked(src, digest, err)
			e.mu.Unlock()
			return err
		}
		e.mu.Unlock()
		if waits == maxReloadWaits {
			e.log.Warn("policy reload skipped: files still changing; previous policy stays in force",
				"settle", e.opts.Settle, "waits", waits)
			return fmt.Errorf("%w after %d waits of %v", ErrUnsettled, waits, e.opts.Settle)
		}
		prev = digest
		<-e.after(e.opts.Settle) // not holding mu: decisions and Watch go on
	}
}

// read is readSources for a reload attempt. On a read error the digest
// identifies the error, so the watcher does not retry the same failure.
func (e *Engine) read() (sources, [32]byte, error) {
	src, digest, err := readSources(&e.opts)
	if err != nil {
		digest = sha256.Sum256([]byte(err.Error()))
	}
	return src, digest, err
}

// reloadLocked builds and installs the files read (src, digest, err from
// read) and records them as the last attempt.
func (e *Engine) reloadLocked(src sources, digest [32]byte, err error) error {
	e.tried = digest
	var st *state
	if err == nil {
		st, err = build(&e.opts, src, digest, e.cur.Load())
	}
	if err != nil {
		e.m.reloadFailed.Inc()
		e.m.lastOK.Set(0)
		e.logRejected(err)
		return err
	}
	e.m.reloadOK.Inc()
	e.install(st)
	e.log.Info("policy reloaded", "generation", st.gen, "rules", st.rules(), "hash", st.hash, "tests", st.tests)
	return nil
}

func (e *Engine) install(st *state) {
	e.gen++
	st.gen = e.gen
	e.cur.Store(st)
	e.m.installed(st, float64(e.opts.Now().UnixNano())/1e9)
}

func (e *Engine) logRejected(err error) {
	var fe *FileError
	if errors.As(err, &fe) {
		e.log.Error("policy reload rejected; previous policy stays in force",
			"file", fe.Path, "line", fe.Line, "reason", fe.Reason, "generation", e.cur.Load().gen)
		return
	}
	e.log.Error("policy reload rejected; previous policy stays in force", "err", err, "generation", e.cur.Load().gen)
}
