package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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

func (instantDecider) Decide(sub string, roles []string, method, path string) (Decision, error) {
	return Decision{Allow: true, Rule: []string{"role:admin", "/api/admin/*", ".*", "allow"}}, nil
}

func benchProxy(b *testing.B, h func(*urlT) http.Handler) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	front := httptest.NewServer(h(mustURLb(b, up.URL)))
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
	b.Run("bare", func(b *testing.B) {
		benchProxy(b, func(u *urlT) http.Handler {
			return &httputil.ReverseProxy{Transport: NewTransport(TransportOptions{}),
				Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() }}
		})
	})
	b.Run("latch", func(b *testing.B) {
		benchProxy(b, func(u *urlT) http.Handler {
			h, err := New(Options{Upstream: u, Authenticator: instantAuth{}, Decider: instantDecider{},
				Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			return h
		})
	})
}

type urlT = url.URL

func mustURLb(b *testing.B, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		b.Fatal(err)
	}
	return u
}
