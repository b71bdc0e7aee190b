package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
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
