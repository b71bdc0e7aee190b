package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// instantAuth and instantDecider cost nothing, so the benchmarks below show
// the proxy chain's own overhead (authn and the policy have theirs).
type instantAuth struct{}

func (instantAuth) Authenticate(ctx context.Context, h http.Header) (Identity, *Denial, error) {
	return Identity{Subject: "a@example.com", Roles: []string{"admin"}, Kind: "api_token"}, nil, nil
}

type instantDecider struct{}

func (instantDecider) Decide(sub string, roles []string, methods, readings []string) (Decision, error) {
	return Decision{Allow: true, Rule: []string{"role:admin", "/api/admin/*", ".*", "allow"},
		Method: methods[len(methods)-1], Path: readings[len(readings)-1]}, nil
}

func benchProxy(b *testing.B, h func(*url.URL) http.Handler) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	front := httptest.NewServer(h(mustURL(b, up.URL)))
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", front.URL+"/api/admin/features/x", nil)
			req.Header.Set("Authorization", "Bearer x")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkForward compares latch's chain with a bare ReverseProxy on the
// same transport; the ratio of their ns/op is the chain's overhead.
func BenchmarkForward(b *testing.B) {
	b.Run("impl=bare", func(b *testing.B) {
		benchProxy(b, func(u *url.URL) http.Handler { return bareProxy(u, NewTransport(TransportOptions{})) })
	})
	b.Run("impl=latch", func(b *testing.B) {
		benchProxy(b, func(u *url.URL) http.Handler {
			h, err := New(Options{Upstream: u, Authenticator: instantAuth{}, Decider: instantDecider{},
				Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
				AccessLog: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			return h
		})
	})
}

// bareProxy is the baseline: a ReverseProxy to u on rt, tuned like latch's
// (the same buffer pool) but with none of its chain.
func bareProxy(u *url.URL, rt http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{Transport: rt, BufferPool: BufferPool(),
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() }}
}

// stubTransport answers every request at once with a small 200, so
// BenchmarkChain measures the handlers alone, without sockets.
type stubTransport struct{}

func (stubTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, ContentLength: 11,
		Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), Request: r}, nil
}

// BenchmarkChain compares latch's chain (instant authn and policy, metrics
// and the access line on) with a bare ReverseProxy, both in front of
// stubTransport: the difference is latch's own CPU and allocations per
// request, free of network noise.
func BenchmarkChain(b *testing.B) {
	u := &url.URL{Scheme: "http", Host: "upstream.invalid"}
	run := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest("GET", "http://latch.test/api/admin/features/x", nil)
			req.Header.Set("Authorization", "Bearer x")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	}
	b.Run("impl=bare", func(b *testing.B) {
		run(b, bareProxy(u, stubTransport{}))
	})
	for _, writer := range []string{"slog", "AccessLog"} {
		b.Run("impl=latch-"+writer, func(b *testing.B) {
			o := Options{Upstream: u, Transport: stubTransport{}, Authenticator: instantAuth{}, Decider: instantDecider{},
				Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
			if writer == "AccessLog" {
				o.AccessLog = io.Discard
			}
			h, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			run(b, h)
		})
	}
}
