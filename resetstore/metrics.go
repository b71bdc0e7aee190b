package resetstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors. They always exist, so call
// sites need no nil checks; they are registered only if a Registerer is given.
type metrics struct {
	reg         prometheus.Registerer
	collectors  []prometheus.Collector
	issued      prometheus.Counter
	redeemed    prometheus.Counter
	rejected    *prometheus.CounterVec
	rateLimited prometheus.Counter
	commit      prometheus.Histogram
}

// Values of the reason label of latch_reset_tokens_rejected_total.
const (
	reasonInvalid = "invalid"
	reasonExpired = "expired"
	reasonUsed    = "used"
)

// scrapeTimeout bounds the read transaction behind the active-tokens gauge.
const scrapeTimeout = 5 * time.Second

func newMetrics(reg prometheus.Registerer, s *Store) (*metrics, error) {
	m := &metrics{
		reg: reg,
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_reset_tokens_issued_total",
			Help: "Password reset tokens issued and committed.",
		}),
		redeemed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_reset_tokens_redeemed_total",
			Help: "Password reset tokens redeemed (password changed).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_reset_tokens_rejected_total",
			Help: "Password reset tokens refused on validation or redemption, by reason.",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_reset_rate_limited_total",
			Help: "Reset token issuances refused by the per-user rate limit.",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "latch_store_commit_duration_seconds",
			Help:    "Duration of store write transactions, including fsync.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16), // 100µs .. ~3.3s
		}),
	}
	for _, r := range []string{reasonInvalid, reasonExpired, reasonUsed} {
		m.rejected.WithLabelValues(r)
	}
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "latch_reset_tokens_active",
		Help: "Reset tokens neither expired nor used.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		defer cancel()
		n, err := s.ActiveTokens(ctx)
		if err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("counting active reset tokens failed", "err", err)
		}
		return float64(n)
	})
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "latch_store_file_size_bytes",
		Help: "Size of the store's data file.",
	}, func() float64 {
		fi, err := os.Stat(s.path)
		if err != nil {
			return 0
		}
		return float64(fi.Size())
	})
	m.collectors = []prometheus.Collector{m.issued, m.redeemed, m.rejected, m.rateLimited, m.commit, active, size}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("resetstore: registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// reject counts a refused token by reason; other errors are not counted.
func (m *metrics) reject(err error) {
	switch {
	case errors.Is(err, errTokenExpired):
		m.rejected.WithLabelValues(reasonExpired).Inc()
	case errors.Is(err, ErrInvalidToken):
		m.rejected.WithLabelValues(reasonInvalid).Inc()
	case errors.Is(err, ErrUsedToken):
		m.rejected.WithLabelValues(reasonUsed).Inc()
	}
}
