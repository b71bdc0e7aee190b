package authn

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Values of the result label of latch_authn_total.
const (
	resultSuccess = "success" // reason="none"
	resultFailure = "failure" // reason is the Reason
	resultError   = "error"   // something broke; reason="none"
)

type metrics struct {
	authn           *prometheus.CounterVec
	successes       prometheus.Counter // authn's success series, resolved once: every request counts here
	jwksLastSuccess prometheus.Gauge
	jwksFailures    prometheus.Counter
	jwksKeys        prometheus.Gauge
	apiTokensOK     prometheus.Gauge
}

// newMetrics creates the metrics and registers them on reg unless it is nil.
// Every result/reason pair is created up front so dashboards see zeros.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		authn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_authn_total",
			Help: "Authentication attempts by result (success, failure, error) and denial reason (none unless result is failure).",
		}, []string{"result", "reason"}),
		jwksLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_jwks_last_refresh_success_timestamp_seconds",
			Help: "Unix time of the last successful JWKS fetch; 0 if none yet.",
		}),
		jwksFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_jwks_refresh_failures_total",
			Help: "JWKS fetches that failed; the previous keys stay in use.",
		}),
		jwksKeys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_jwks_keys",
			Help: "Usable signature keys in the current JWKS.",
		}),
		apiTokensOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_api_tokens_last_reload_successful",
			Help: "0 if the last reload of the API tokens file failed (the previous tokens stay in use), else 1.",
		}),
	}
	// New loaded the file, if one is configured, before the metrics exist:
	// a file latch cannot load stops it from starting.
	m.apiTokensOK.Set(1)
	m.successes = m.authn.WithLabelValues(resultSuccess, "none")
	m.authn.WithLabelValues(resultError, "none")
	for _, r := range Reasons() {
		m.authn.WithLabelValues(resultFailure, string(r))
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.authn, m.jwksLastSuccess, m.jwksFailures, m.jwksKeys, m.apiTokensOK} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(result string, reason Reason) {
	if result == resultSuccess {
		m.successes.Inc()
		return
	}
	label := string(reason)
	if label == "" {
		label = "none"
	}
	m.authn.WithLabelValues(result, label).Inc()
}
