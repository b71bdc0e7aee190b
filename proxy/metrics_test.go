package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// inFlight reads latch_http_requests_in_flight from reg.
func inFlight(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "latch_http_requests_in_flight" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no latch_http_requests_in_flight registered")
	return 0
}

// TestRequestsInFlight: the gauge counts requests being served, forwarded
// or answered by latch, and is back at 0 once they are answered.
func TestRequestsInFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrived := make(chan struct{}, 8)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(up.Close)
	reg := prometheus.NewRegistry()
	front := newFront(t, up.URL, func(o *Options) { o.Registerer = reg })

	if got := inFlight(t, reg); got != 0 {
		t.Fatalf("before any request: got %v, want 0", got)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			resp := do(t, "GET", front.URL+"/open", nil)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	guard := time.NewTimer(time.Minute) // against a hang, not slowness
	defer guard.Stop()
	for range 3 {
		select {
		case <-arrived:
		case <-guard.C:
			close(release)
			t.Fatal("the upstream did not see 3 requests")
		}
	}
	if got := inFlight(t, reg); got != 3 {
		t.Errorf("3 requests held by the upstream: got %v, want 3", got)
	}
	// A request latch answers itself is counted while served, then not.
	wantError(t, do(t, "GET", front.URL+"/a/%2e%2e/%2fb", nil), 400, NameBadData)
	waitInFlight(t, reg, 3, "after a refused request, the 3 held")
	close(release)
	wg.Wait()
	waitInFlight(t, reg, 0, "after every answer")
}

// waitInFlight waits until the gauge reads want: a request's handler may
// still be returning when its client has read the answer.
func waitInFlight(t *testing.T, reg *prometheus.Registry, want float64, when string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // against a hang, not slowness
	for {
		got := inFlight(t, reg)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %v, want %v", when, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
