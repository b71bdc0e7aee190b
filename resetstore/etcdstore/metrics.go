package etcdstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/latch-dev/latch/resetstore"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors: the reset-token families
// of the bbolt store, under the same names, plus the etcd connection's
// state. They always exist; they are registered only if a Registerer is
// given.
type metrics struct {
	reg         prometheus.Registerer
	collectors  []prometheus.Collector
	issued      prometheus.Counter
	redeemed    prometheus.Counter
	rejected    *prometheus.CounterVec
	rateLimited prometheus.Counter
	commit      prometheus.Histogram
	up          prometheus.Gauge
	errors      *prometheus.CounterVec
}

// Values of the reason labels.
const (
	reasonInvalid  = "invalid"
	reasonExpired  = "expired"
	reasonUsed     = "used"
	errUnavailable = "unavailable"
	errOther       = "other"
)

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
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_store_etcd_up",
			Help: "1 if the last request to etcd was answered, 0 if etcd could not be reached or did not answer in time.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_store_etcd_request_errors_total",
			Help: "Failed requests to etcd, by reason: unavailable (unreachable, no leader, timed out) or other.",
		}, []string{"reason"}),
	}
	for _, r := range []string{reasonInvalid, reasonExpired, reasonUsed} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{errUnavailable, errOther} {
		m.errors.WithLabelValues(r)
	}
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "latch_reset_tokens_active",
		Help: "Reset tokens neither expired nor used.",
	}, func() float64 {
		n, err := s.ActiveTokens(context.Background()) // bounded by the request timeout
		if err != nil && !errors.Is(err, resetstore.ErrClosed) {
			s.log.Warn("counting active reset tokens failed", "err", err)
		}
		return float64(n)
	})
	m.collectors = []prometheus.Collector{m.issued, m.redeemed, m.rejected, m.rateLimited, m.commit, m.up, m.errors, active}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("etcdstore: registering metrics: %w", err)
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
	case resetstore.IsTokenExpired(err):
		m.rejected.WithLabelValues(reasonExpired).Inc()
	case errors.Is(err, resetstore.ErrInvalidToken):
		m.rejected.WithLabelValues(reasonInvalid).Inc()
	case errors.Is(err, resetstore.ErrUsedToken):
		m.rejected.WithLabelValues(reasonUsed).Inc()
	}
}
