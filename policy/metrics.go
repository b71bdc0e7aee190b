package policy

import "github.com/prometheus/client_golang/prometheus"

// metrics are the policy metrics. Their names are a contract with
// dashboards and alerts; see doc.go.
type metrics struct {
	reloadOK, reloadFailed prometheus.Counter
	lastOK                 prometheus.Gauge
	lastOKTime             prometheus.Gauge
	rules                  prometheus.Gauge
	info                   *prometheus.GaugeVec
	allow, deny, errored   prometheus.Counter

	reloads   *prometheus.CounterVec
	decisions *prometheus.CounterVec
	infoHash  string // label value currently set on info
}

func newMetrics() *metrics {
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_policy_reloads_total",
			Help: "Policy reload attempts (start-up excluded), by result.",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_policy_last_reload_successful",
			Help: "1 if the last policy load or reload succeeded, 0 if it was rejected.",
		}),
		lastOKTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_policy_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful policy load or reload.",
		}),
		rules: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_policy_rules",
			Help: "Rules (p and g) in the policy in force.",
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "latch_policy_info",
			Help: "Always 1; hash is the first 12 hex digits of sha256(model file + policy file) in force.",
		}, []string{"hash"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_authz_decisions_total",
			Help: "Authorisation decisions, by outcome; error means deciding failed and the request was denied.",
		}, []string{"decision"}),
	}
	m.reloadOK = m.reloads.WithLabelValues("success")
	m.reloadFailed = m.reloads.WithLabelValues("failure")
	m.allow = m.decisions.WithLabelValues("allow")
	m.deny = m.decisions.WithLabelValues("deny")
	m.errored = m.decisions.WithLabelValues("error")
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.reloads, m.lastOK, m.lastOKTime, m.rules, m.info, m.decisions} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// installed records a successful load; unix is its time in seconds.
func (m *metrics) installed(st *state, unix float64) {
	m.lastOK.Set(1)
	m.lastOKTime.Set(unix)
	m.rules.Set(float64(st.rules()))
	if m.infoHash != st.hash {
		if m.infoHash != "" {
			m.info.DeleteLabelValues(m.infoHash)
		}
		m.info.WithLabelValues(st.hash).Set(1)
		m.infoHash = st.hash
	}
}
