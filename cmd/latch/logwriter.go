package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latch-dev/latch/config"
)

// logWriter batches log lines. latch writes one access line per request,
// and a write(2) per line costs more than encoding it: BenchmarkLogWriter
// (2 cores) gives about 3 µs per line written directly to a file or a pipe
// against 0.2-0.6 µs batched, while proxy.BenchmarkAccessLine encodes the
// line in about 0.4 µs and latch's whole chain is about 7 µs
// (bench/RESULTS.md). So it stays, although the access line no longer
// needs zap. Lines reach the file within flushEvery, and at shutdown; a
// process killed with SIGKILL loses at most that much.
type logWriter struct {
	mu sync.Mutex
	bw *bufio.Writer
}

const flushEvery = 50 * time.Millisecond

func newLogWriter(w io.Writer) *logWriter {
	return &logWriter{bw: bufio.NewWriterSize(w, 64<<10)}
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bw.Write(p)
}

// Flush writes out what is buffered.
func (l *logWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bw.Flush()
}

// run flushes every flushEvery until ctx is done, then once more.
func (l *logWriter) run(ctx context.Context) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = l.Flush()
			return
		case <-t.C:
			_ = l.Flush()
		}
	}
}

// syncWriter serializes writes to a writer that is not a file (tests give
// latch a buffer): slog's handler and the access-line writer share it.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// logOutput returns the writer for latch's logs on stderr: batched by a
// logWriter when stderr is a file, else (tests give a buffer) serialized
// by a syncWriter. flush writes out what is batched; call it at exit.
func logOutput(stderr io.Writer) (w io.Writer, flush func()) {
	f, ok := stderr.(*os.File)
	if !ok {
		return &syncWriter{w: stderr}, func() {}
	}
	lw := newLogWriter(f)
	ctx, stop := context.WithCancel(context.Background())
	flushed := make(chan struct{})
	go func() { lw.run(ctx); close(flushed) }()
	return lw, func() { stop(); <-flushed }
}

// newLogger builds latch's logger on w, which must be safe for concurrent
// use. accessLog is w when the access lines may bypass slog (JSON at level
// info or below: see proxy.Options.AccessLog), else nil.
func newLogger(c config.Log, w io.Writer) (log *slog.Logger, accessLog io.Writer, err error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	o := &slog.HandlerOptions{Level: level, ReplaceAttr: labelDuration}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, o)), nil, nil
	}
	if level <= slog.LevelInfo {
		accessLog = w
	}
	return slog.New(slog.NewJSONHandler(w, o)), accessLog, nil
}

// labelDuration writes every time.Duration latch logs (its own, the policy
// watcher's settle time, the etcd client's) as milliseconds with the unit
// in the key: "settle": 1s becomes "settle_ms": 1000, as the access line
// writes duration_ms. Without it slog writes integer nanoseconds in JSON.
func labelDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	key := a.Key
	if !strings.HasSuffix(key, "_ms") {
		key += "_ms"
	}
	return slog.Float64(key, float64(a.Value.Duration())/float64(time.Millisecond))
}

// heldWriter holds what is written to it until open, then passes writes
// through to w. Start-up logs wait in it, so that a failed start prints
// only its one line.
type heldWriter struct {
	w       io.Writer
	passing atomic.Bool
	mu      sync.Mutex
	buf     []byte
}

func (h *heldWriter) Write(p []byte) (int, error) {
	if h.passing.Load() {
		return h.w.Write(p)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.passing.Load() {
		return h.w.Write(p)
	}
	h.buf = append(h.buf, p...)
	return len(p), nil
}

// open writes what was held if keep, drops it otherwise, and passes every
// later write through.
func (h *heldWriter) open(keep bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if keep && len(h.buf) > 0 {
		_, _ = h.w.Write(h.buf)
	}
	h.buf = nil
	h.passing.Store(true)
}
