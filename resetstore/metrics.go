package resetstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/latch-dev/latch"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the reset-token families every store backend serves, under
// the same names, so dashboards do not care which backend runs. They always
// exist, so call sites need no nil checks; they are registered only if a
// Registerer is given.
type Metrics struct {
	Issued      prometheus.Counter
	Redeemed    prometheus.Counter
	Rejected    *prometheus.CounterVec // by reason: invalid, expired, used
	RateLimited prometheus.Counter
	Commit      prometheus.Histogram

	reg        prometheus.Registerer
	collectors []prometheus.Collector
}

// Values of the reason label of latch_reset_tokens_rejected_total.
const (
	reasonInvalid = "invalid"
	reasonExpired = "expired"
	reasonUsed    = "used"
)

// NewMetrics makes the shared families, latch_reset_tokens_active read from
// active at each scrape, and the backend's own extra collectors, and
// registers them all on reg (nil registers nothing).
func NewMetrics(reg prometheus.Registerer, active func() float64, extra ...prometheus.Collector) (*Metrics, error) {
	m := &Metrics{
		reg: reg,
		Issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_reset_tokens_issued_total",
			Help: "Password reset tokens issued and committed.",
		}),
		Redeemed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_reset_tokens_redeemed_total",
			Help: "Password reset tokens redeemed (password changed).",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_reset_tokens_rejected_total",
			Help: "Password reset tokens refused on validation or redemption, by reason.",
		}, []string{"reason"}),
		RateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_reset_rate_limited_total",
			Help: "Reset token issuances refused by the per-user rate limit.",
		}),
		Commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "latch_store_commit_duration_seconds",
			Help:    "Duration of store write transactions, including fsync.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16), // 100µs .. ~3.3s
		}),
	}
	for _, r := range []string{reasonInvalid, reasonExpired, reasonUsed} {
		m.Rejected.WithLabelValues(r)
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "latch_reset_tokens_active",
		Help: "Reset tokens neither expired nor used.",
	}, active)
	m.collectors = append([]prometheus.Collector{m.Issued, m.Redeemed, m.Rejected, m.RateLimited, m.Commit, gauge}, extra...)
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("registering store metrics: %w", err)
		}
	}
	return m, nil
}

// Unregister removes every collector NewMetrics registered, so a reopened
// store can register again.
func (m *Metrics) Unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// Reject counts a refused token by reason; other errors are not counted.
func (m *Metrics) Reject(err error) {
	switch {
	case errors.Is(err, ErrTokenExpired):
		m.Rejected.WithLabelValues(reasonExpired).Inc()
	case errors.Is(err, latch.ErrInvalidToken):
		m.Rejected.WithLabelValues(reasonInvalid).Inc()
	case errors.Is(err, latch.ErrUsedToken):
		m.Rejected.WithLabelValues(reasonUsed).Inc()
	}
}

// scrapeTimeout bounds the read transaction behind the active-tokens gauge.
const scrapeTimeout = 5 * time.Second

// newMetrics is the bbolt store's set: the shared families and the data
// file's size.
func newMetrics(reg prometheus.Registerer, s *Store) (*Metrics, error) {
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
	m, err := NewMetrics(reg, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		defer cancel()
		n, err := s.ActiveTokens(ctx)
		if err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("counting active reset tokens failed", "err", err)
		}
		return float64(n)
	}, size)
	if err != nil {
		return nil, fmt.Errorf("resetstore: %w", err)
	}
	return m, nil
}
