package proxy

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// durationBuckets suit a sidecar: from 100µs, where latch's own work lives,
// to 10s, where slow upstreams live.
var durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstream       prometheus.Histogram
	upstreamErrors *prometheus.CounterVec
	logins         *prometheus.CounterVec
	inFlight       prometheus.Gauge

	// series caches the request counter and histogram of each label set
	// seen (a bounded set: classes x methods x status codes), sparing two
	// label hashes and map lookups per request.
	series sync.Map // seriesKey -> *requestSeries
}

type seriesKey struct {
	class, method string
	code          int
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_http_requests_total",
			Help: "Requests on the proxy port by route class, method and status code.",
		}, []string{"class", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latch_http_request_duration_seconds",
			Help:    "Time from request to the end of the answer, by route class, method and status code.",
			Buckets: durationBuckets,
		}, []string{"class", "method", "code"}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "latch_upstream_duration_seconds",
			Help:    "Time the upstream took to answer with headers; latch's overhead is the request duration minus this.",
			Buckets: durationBuckets,
		}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_upstream_errors_total",
			Help: "Forwarded requests that got no answer from the upstream, by reason (refused, timeout, reset, canceled, other).",
		}, []string{"reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_login_attempts_total",
			Help: "Login attempts, on the login API and the login page, by result (success, failure, rate_limited, busy, invalid, error).",
		}, []string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_http_requests_in_flight",
			Help: "Requests on the proxy port being served now, WebSocket and other upgraded connections included while open.",
		}),
	}
	for _, r := range []string{"success", "failure", "rate_limited", "busy", "invalid", "error"} {
		m.logins.WithLabelValues(r)
	}
	for _, r := range []string{"refused", "timeout", "reset", "canceled", "other"} {
		m.upstreamErrors.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.upstream, m.upstreamErrors, m.logins, m.inFlight} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(class, method string, code int, d time.Duration) {
	k := seriesKey{class, methodLabel(method), code}
	v, ok := m.series.Load(k)
	if !ok {
		c := strconv.Itoa(code)
		v, _ = m.series.LoadOrStore(k, &requestSeries{m.requests.WithLabelValues(k.class, k.method, c),
			m.duration.WithLabelValues(k.class, k.method, c)})
	}
	s := v.(*requestSeries)
	s.count.Inc()
	s.duration.Observe(d.Seconds())
}

func (m *metrics) upstreamError(reason string) { m.upstreamErrors.WithLabelValues(reason).Inc() }

// methodLabel keeps the method label to a bounded set.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// timedTransport records the upstream's time to headers for each request.
type timedTransport struct {
	rt http.RoundTripper
	m  *metrics
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.rt.RoundTrip(r)
	d := time.Since(start)
	if st := stateFrom(r.Context()); st != nil {
		st.upstream = d
	}
	if err == nil {
		t.m.upstream.Observe(d.Seconds())
	}
	return resp, err
}
