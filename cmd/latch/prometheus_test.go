package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promTool finds a binary of Debian's prometheus package. It is missing
// on a laptop without `make deps`: then the test skips, except in CI,
// where .ci/deps installs it and its absence is a failure.
func promTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; .ci/deps should have installed Debian's prometheus package: %v", name, err)
	}
	t.Skipf("%s is not installed; `make deps` installs it (Debian's prometheus package)", name)
	return ""
}

// promServer is a real Prometheus server run for one test.
type promServer struct {
	url  string // base URL of its HTTP API
	logs *syncBuffer
}

// startPrometheus runs Prometheus on loopback, scraping target (host:port)
// every second as job "latch" and evaluating testdata/alerts.yml. It is
// killed when the test ends.
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	bin := promTool(t, "prometheus")
	dir := t.TempDir()
	rules, err := filepath.Abs("testdata/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: latch
    static_configs:
      - targets: ['%s']
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The free port may be taken before Prometheus binds it; then try
	// another.
	for attempt := 1; ; attempt++ {
		p, err := runPrometheus(t, bin, cfgPath, filepath.Join(dir, fmt.Sprint("data", attempt)))
		if err == nil {
			return p
		}
		if attempt == 3 || !strings.Contains(p.logs.String(), "address already in use") {
			t.Fatal(err) // the cleanup logs what Prometheus said
		}
	}
}

// runPrometheus starts one Prometheus process on a free port and waits
// until it is ready, or until it exits.
func runPrometheus(t *testing.T, bin, cfgPath, data string) (*promServer, error) {
	t.Helper()
	addr := freeLoopbackAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := &promServer{url: "http://" + addr, logs: &syncBuffer{}}
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+data,
		"--storage.tsdb.retention.time=1h",
		"--web.listen-address="+addr,
	)
	cmd.Dir = filepath.Dir(cfgPath)
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		return p, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("prometheus logs:\n%s", p.logs)
		}
	})

	deadline := pollDeadline(t)
	for {
		select {
		case err := <-exited:
			exited <- err
			return p, fmt.Errorf("prometheus exited before it was ready: %v", err)
		default:
		}
		if resp, err := http.Get(p.url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("prometheus at %s was not ready by %v", p.url, deadline.Format(time.TimeOnly))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// query evaluates expr now and returns the values of the resulting
// vector; an empty vector is an empty slice.
func (p *promServer) query(t *testing.T, expr string) []float64 {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	if out.Status != "success" || out.Data.ResultType != "vector" {
		t.Fatalf("query %s: got status %q (%s), result type %q; want a vector", expr, out.Status, out.Error, out.Data.ResultType)
	}
	var vals []float64
	for _, r := range out.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("query %s: value %v: %v", expr, r.Value, err)
		}
		vals = append(vals, v)
	}
	return vals
}

// TestPrometheusScrape has a real Prometheus scrape a real latch and
// evaluate the documented alert rules on what it scraped; promtool checks
// the exposition.
func TestPrometheusScrape(t *testing.T) {
	t.Parallel()
	promTool(t, "prometheus")
	promtool := promTool(t, "promtool")
	up := echoUpstream(t)
	in := startLatch(t, baseConfig(t, up.URL, ""))

	const requests = 25
	client := &http.Client{}
	defer client.CloseIdleConnections()
	for n := range requests {
		resp, err := client.Get(fmt.Sprintf("%s/items/%d", in.proxy, n))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /items/%d: got status %d, want 200", n, resp.StatusCode)
		}
	}

	target := strings.TrimPrefix(in.admin, "http://")
	p := startPrometheus(t, target)

	pollUntil(t, `up{job="latch"} == 1 in Prometheus`, func() bool {
		v := p.query(t, `up{job="latch"}`)
		return len(v) == 1 && v[0] == 1
	})
	var got float64
	pollUntil(t, fmt.Sprintf("Prometheus to see sum(latch_http_requests_total) >= %d", requests), func() bool {
		v := p.query(t, `sum(latch_http_requests_total{job="latch"})`)
		if len(v) == 1 {
			got = v[0]
		}
		return got >= requests
	})
	t.Logf("Prometheus scraped %s: sum(latch_http_requests_total) = %v after %d requests", target, got, requests)
	if v := p.query(t, `count(latch_build_info{job="latch"} == 1)`); len(v) != 1 || v[0] != 1 {
		t.Errorf("latch_build_info in Prometheus: got %v, want one series equal to 1", v)
	}

	// Every rule of alerts.yml evaluates without error on latch's series.
	pollUntil(t, "Prometheus to evaluate every rule of testdata/alerts.yml", func() bool {
		rules := p.rules(t)
		if len(rules) == 0 {
			return false
		}
		for _, r := range rules {
			if r.Health != "ok" {
				if r.Health == "err" {
					t.Fatalf("rule %s fails on latch's series: %s", r.Name, r.LastError)
				}
				return false
			}
		}
		return true
	})

	// promtool lints the exposition latch serves.
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(scrapeMetrics(t, in.admin))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

type promRule struct {
	Name, Health, LastError string
}

// rules lists the alerting and recording rules Prometheus evaluates.
func (p *promServer) rules(t *testing.T) []promRule {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Groups []struct{ Rules []promRule }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("/api/v1/rules: %v", err)
	}
	var rules []promRule
	for _, g := range out.Data.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// TestPrometheusAlertRules checks the alert rules README.md shows
// (kept equal to testdata/alerts.yml by TestMetricsDocumented) are valid and
// fire when they should (testdata/alerts_test.yml).
func TestPrometheusAlertRules(t *testing.T) {
	t.Parallel()
	promtool := promTool(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "testdata/alerts.yml"},
		{"test", "rules", "testdata/alerts_test.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
