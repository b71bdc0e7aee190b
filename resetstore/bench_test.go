package resetstore_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-dev/latch/resetstore"
)

// BenchmarkIssue measures durable issuances per second, one caller at a time
// and with 64 concurrent callers sharing group commits. The parallel run
// reports its speed-up over the sequential one as "x-sequential"; run both:
//
//	go test -run '^$' -bench Issue ./resetstore/
func BenchmarkIssue(b *testing.B) {
	const users = 64
	setup := func(b *testing.B) *resetstore.Store {
		s, _ := openStore(b, resetstore.Options{MinInterval: -1, Now: time.Now})
		for i := range users {
			mustAddUser(b, s, fmt.Sprintf("bench%02d@example.com", i), "")
		}
		b.ResetTimer()
		return s
	}
	var sequential float64 // issuances/s of the last sequential run

	b.Run("clients=1", func(b *testing.B) {
		s := setup(b)
		ctx := context.Background()
		start := time.Now()
		for i := 0; b.Loop(); i++ {
			if _, _, err := s.IssueResetToken(ctx, fmt.Sprintf("bench%02d@example.com", i%users)); err != nil {
				b.Fatal(err)
			}
		}
		sequential = float64(b.N) / time.Since(start).Seconds()
		b.ReportMetric(sequential, "issues/s")
	})

	b.Run("clients=64", func(b *testing.B) {
		s := setup(b)
		ctx := context.Background()
		var next atomic.Int64
		b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			// Each goroutine takes its own user, so issuances never supersede
			// each other within a group.
			email := fmt.Sprintf("bench%02d@example.com", next.Add(1)%users)
			for pb.Next() {
				if _, _, err := s.IssueResetToken(ctx, email); err != nil {
					b.Error(err)
					return
				}
			}
		})
		rate := float64(b.N) / time.Since(start).Seconds()
		b.ReportMetric(rate, "issues/s")
		if sequential > 0 {
			b.ReportMetric(rate/sequential, "x-sequential")
		}
	})
}
