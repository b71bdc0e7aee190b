package load

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := Percentile(lat, tc.p); got != tc.want {
			t.Errorf("Percentile(1..100ms, %v): got %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile(nil, 99); got != 0 {
		t.Errorf("Percentile(nil, 99): got %v, want 0", got)
	}
}

// TestRun checks what a short run records, not how fast it is.
func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/x/" || string(b) != "body" || r.Header.Get("X-Test") != "1" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Spec{
		URL: srv.URL + "/x/{n}", Method: "POST", Header: http.Header{"X-Test": {"1"}},
		Body:  func(int, int) []byte { return []byte("body") },
		Conns: 2, Duration: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Status[http.StatusTeapot] != res.Requests {
		t.Errorf("statuses: got %s, want only 418", res.StatusString())
	}
	if res.Pct(50) <= 0 {
		t.Errorf("p50: got %v, want > 0", res.Pct(50))
	}
}

func TestRunRefusesNonLoopbackSource(t *testing.T) {
	_, err := Run(context.Background(), Spec{URL: "http://127.0.0.1:1/", LocalAddrs: []string{"192.0.2.1"}, Conns: 1, Duration: 10 * time.Millisecond})
	if err == nil {
		t.Error("Run with a non-loopback source address: got no error, want one")
	}
}
