package main

import (
	"bufio"
	"context"
	"io"
	"sync"
	"time"
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
