package etcdstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/latch-dev/latch/resetstore"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the reset-token families every backend serves
// (resetstore.Metrics, same names) plus the etcd connection's state.
type metrics struct {
	*resetstore.Metrics
	up     prometheus.Gauge
	errors *prometheus.CounterVec
}

// Values of the reason label of latch_store_etcd_request_errors_total.
const (
	errUnavailable = "unavailable"
	errOther       = "other"
)

func newMetrics(reg prometheus.Registerer, s *Store) (*metrics, error) {
	m := &metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_store_etcd_up",
			Help: "1 if the last request to etcd was answered, 0 if etcd could not be reached or did not answer in time.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_store_etcd_request_errors_total",
			Help: "Failed requests to etcd, by reason: unavailable (unreachable, no leader, timed out) or other.",
		}, []string{"reason"}),
	}
	for _, r := range []string{errUnavailable, errOther} {
		m.errors.WithLabelValues(r)
	}
	shared, err := resetstore.NewMetrics(reg, func() float64 {
		n, err := s.ActiveTokens(context.Background()) // bounded by the request timeout
		if err != nil && !errors.Is(err, resetstore.ErrClosed) {
			s.log.Warn("counting active reset tokens failed", "err", err)
		}
		return float64(n)
	}, m.up, m.errors)
	if err != nil {
		return nil, fmt.Errorf("etcdstore: %w", err)
	}
	m.Metrics = shared
	return m, nil
}
