// Package load is latch's benchmark load generator: a fixed number of
// keep-alive connections, each driven by one goroutine, for a fixed
// duration, recording every request's latency.
//
// Closed loop (Spec.Rate zero): each connection sends its next request as
// soon as the previous answer is read. Paced (Spec.Rate > 0): requests are
// scheduled at a fixed total rate and latency is measured from the
// scheduled time, so a stall shows up in the percentiles instead of just
// slowing the sender down (no coordinated omission).
package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Spec describes one run.
type Spec struct {
	// URL is requested by every worker; each "{n}" in it is replaced by a
	// per-request counter (so paths vary).
	URL string
	// Method defaults to GET.
	Method string
	// Header is sent with every request; nil sends none.
	Header http.Header
	// Body, when set, returns the body for request i of worker w.
	Body func(w, i int) []byte
	// Conns is the number of connections (and workers). Zero means 64.
	Conns int
	// Duration of the run. Zero means 5s.
	Duration time.Duration
	// Rate is the total requests per second for a paced run; zero is closed loop.
	Rate float64
	// LocalAddrs, when set, are source IPs: worker w dials from
	// LocalAddrs[w%len]. Loopback only (127.0.0.0/8).
	LocalAddrs []string
	// Timeout bounds each request. Zero means 10s.
	Timeout time.Duration
}

// Result is what a run measured.
type Result struct {
	Requests int           // answered requests (any status)
	Errors   int           // transport errors (no answer)
	Status   map[int]int   // answers by status code
	Elapsed  time.Duration // wall time of the run
	lat      []time.Duration
}

// RPS is answered requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Pct returns the p-th percentile latency (0 < p <= 100) of answered
// requests, nearest-rank; zero when none.
func (r Result) Pct(p float64) time.Duration { return Percentile(r.lat, p) }

// Percentile is nearest-rank on sorted.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(float64(len(sorted))*p/100+0.999999) - 1
	k = max(0, min(k, len(sorted)-1))
	return sorted[k]
}

// StatusString lists the status counts, "200:1234 503:5".
func (r Result) StatusString() string {
	codes := make([]int, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var b strings.Builder
	for i, c := range codes {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d", c, r.Status[c])
	}
	if r.Errors > 0 {
		fmt.Fprintf(&b, " err:%d", r.Errors)
	}
	return b.String()
}

type workerResult struct {
	lat    []time.Duration
	status map[int]int
	errs   int
	err    error
}

// Run runs spec until its duration passes or ctx ends.
func Run(ctx context.Context, s Spec) (Result, error) {
	if s.Conns <= 0 {
		s.Conns = 64
	}
	if s.Duration <= 0 {
		s.Duration = 5 * time.Second
	}
	if s.Method == "" {
		s.Method = http.MethodGet
	}
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, s.Duration)
	defer cancel()
	start := time.Now()
	results := make([]workerResult, s.Conns)
	var wg sync.WaitGroup
	for w := range s.Conns {
		wg.Go(func() { results[w] = worker(ctx, s, w, start) })
	}
	wg.Wait()
	res := Result{Status: map[int]int{}, Elapsed: time.Since(start)}
	for _, wr := range results {
		if wr.err != nil {
			return res, wr.err
		}
		res.lat = append(res.lat, wr.lat...)
		res.Errors += wr.errs
		for c, n := range wr.status {
			res.Status[c] += n
			res.Requests += n
		}
	}
	slices.Sort(res.lat)
	return res, nil
}

func worker(ctx context.Context, s Spec, w int, start time.Time) workerResult {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if len(s.LocalAddrs) > 0 {
		ip := net.ParseIP(s.LocalAddrs[w%len(s.LocalAddrs)])
		if ip == nil || !ip.IsLoopback() {
			return workerResult{err: fmt.Errorf("load: local address %q is not a loopback IP", s.LocalAddrs[w%len(s.LocalAddrs)])}
		}
		dialer.LocalAddr = &net.TCPAddr{IP: ip}
	}
	tr := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: s.Timeout}
	r := workerResult{status: map[int]int{}}
	var interval time.Duration
	if s.Rate > 0 {
		interval = time.Duration(float64(s.Conns) / s.Rate * float64(time.Second))
	}
	urlHasN := strings.Contains(s.URL, "{n}")
	for i := 0; ; i++ {
		sched := time.Now()
		if interval > 0 {
			// Worker w's i-th slot, staggered across workers.
			sched = start.Add(time.Duration(i)*interval + time.Duration(w)*interval/time.Duration(s.Conns))
			if d := time.Until(sched); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return r
				case <-t.C:
				}
			}
		}
		if ctx.Err() != nil {
			return r
		}
		u := s.URL
		if urlHasN {
			u = strings.ReplaceAll(u, "{n}", strconv.Itoa((w*1_000_003+i)%100_000))
		}
		var body io.Reader
		if s.Body != nil {
			body = bytes.NewReader(s.Body(w, i))
		}
		req, err := http.NewRequestWithContext(ctx, s.Method, u, body)
		if err != nil {
			return workerResult{err: err}
		}
		for k, v := range s.Header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return r // the run ended mid-request: not counted
			}
			r.errs++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if ctx.Err() != nil {
			return r
		}
		r.status[resp.StatusCode]++
		r.lat = append(r.lat, time.Since(sched))
	}
}
