package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch/config"
)

func TestLogWriter(t *testing.T) {
	var out syncBuffer
	w := newLogWriter(&out)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				w.Write([]byte(strings.Repeat(string(rune('a'+i)), 20) + "\n"))
			}
		})
	}
	wg.Wait()
	// The lines reach the file without a shutdown, by the periodic flush.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "\n") < 800 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(out.String(), "\n"); n != 800 {
		t.Fatalf("flushed %d lines, want 800", n)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if len(line) != 20 || strings.Count(line, line[:1]) != 20 {
			t.Fatalf("interleaved line %q", line)
		}
	}
	// What is written just before shutdown is flushed at shutdown.
	w.Write([]byte("last\n"))
	cancel()
	<-done
	if !strings.HasSuffix(out.String(), "last\n") {
		t.Error("the last line was not flushed at shutdown")
	}
}

// TestLoggerLabelsDurations: in either format, every time.Duration latch
// logs, at the top or in a group, is written in milliseconds with _ms on
// its key; other values are left alone.
func TestLoggerLabelsDurations(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ format, want string }{
		{"json", `"settle_ms":1000,"g":{"wait_ms":1.5,"grace_ms":0.000001},"n":3,"s":"1s"}`},
		{"text", `settle_ms=1000 g.wait_ms=1.5 g.grace_ms=1e-06 n=3 s=1s`},
	} {
		var out strings.Builder
		log, _, err := newLogger(config.Log{Format: c.format, Level: "info"}, &out)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("m", "settle", time.Second, slog.Group("g", slog.Duration("wait", 1500*time.Microsecond),
			slog.Duration("grace_ms", time.Nanosecond)), "n", 3, "s", "1s")
		if got := strings.TrimSpace(out.String()); !strings.HasSuffix(got, c.want) {
			t.Errorf("%s: got %s, want it to end %s", c.format, got, c.want)
		}
	}
}

// BenchmarkLogWriter writes access-line-sized lines from parallel
// goroutines to a file and to a pipe (stderr under a container runtime or
// journald), each line its own write(2) (writer=direct, what serve does
// without logWriter) or batched by logWriter.
func BenchmarkLogWriter(b *testing.B) {
	line := []byte(`{"time":"2026-11-29T10:12:03.450123456Z","level":"INFO","msg":"request","request_id":"0a1b2c3d4e5f6a7b",` +
		`"method":"GET","path":"/api/admin/features/x","class":"protected","status":200,"bytes":1234,"duration_ms":0.812345,` +
		`"upstream_duration_ms":0.5,"subject":"v@example.com","roles":["viewer"],"decision":"allow","rule":"role:viewer, /api/admin/*, GET"}` + "\n")
	targets := map[string]func(b *testing.B) *os.File{
		"file": func(b *testing.B) *os.File {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { f.Close() })
			return f
		},
		"pipe": func(b *testing.B) *os.File {
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			drained := make(chan struct{})
			go func() { _, _ = io.Copy(io.Discard, r); close(drained) }()
			b.Cleanup(func() { w.Close(); <-drained; r.Close() })
			return w
		},
	}
	for _, target := range []string{"file", "pipe"} {
		for _, writer := range []string{"direct", "batched"} {
			b.Run("target="+target+"/writer="+writer, func(b *testing.B) {
				f := targets[target](b)
				var w io.Writer = &syncWriter{w: f}
				if writer == "batched" {
					lw := newLogWriter(f)
					ctx, cancel := context.WithCancel(context.Background())
					done := make(chan struct{})
					go func() { lw.run(ctx); close(done) }()
					b.Cleanup(func() { cancel(); <-done })
					w = lw
				}
				b.SetBytes(int64(len(line)))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						_, _ = w.Write(line)
					}
				})
			})
		}
	}
}
