package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/proxy/authn"
	"github.com/latch-dev/latch/resetstore"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/metrics.golden from what a running latch reports")

const metricsGolden = "testdata/metrics.golden"

// goldenMetrics are the families compared with testdata/metrics.golden:
// the ones whose values a scripted run fixes (no request is in flight while
// the test scrapes the admin port). Histograms (timing buckets),
// timestamps, sizes, build and Go/process metrics are checked apart.
var goldenMetrics = []string{
	"latch_authn_total",
	"latch_api_tokens_last_reload_successful",
	"latch_authz_decisions_total",
	"latch_http_requests_in_flight",
	"latch_http_requests_total",
	"latch_jwks_keys",
	"latch_jwks_refresh_failures_total",
	"latch_login_attempts_total",
	"latch_policy_last_reload_successful",
	"latch_policy_reloads_total",
	"latch_policy_rules",
	"latch_reset_rate_limited_total",
	"latch_reset_tokens_active",
	"latch_reset_tokens_issued_total",
	"latch_reset_tokens_redeemed_total",
	"latch_reset_tokens_rejected_total",
	"latch_upstream_errors_total",
}

// The users seeded into the store before latch starts.
const (
	metricsAdmin      = "admin@example.com"
	metricsAdminPass  = "Adm1n-Correct-Horse!"
	metricsViewer     = "viewer@example.com"
	metricsViewerPass = "V1ewer-Battery-Staple!"
)

// metricsLatch is a latch whose store holds an admin and a viewer, running
// a policy file the test may overwrite.
type metricsLatch struct {
	*instance
	model, rules string // the policy files latch watches
	tokens       string // the API tokens file latch polls
	client       *http.Client
}

// startMetricsLatch seeds the store, writes a config using
// testdata/metrics_policy.csv (copied, so the test can break it) and starts
// latch on it with upstream as the backend.
func startMetricsLatch(t *testing.T, upstream string) *metricsLatch {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := resetstore.Open(filepath.Join(data, "latch.db"), resetstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, u := range []struct{ email, role, pass string }{
		{metricsAdmin, "admin", metricsAdminPass},
		{metricsViewer, "viewer", metricsViewerPass},
	} {
		if _, err := st.AddUser(ctx, u.email, []string{u.role}, u.pass); err != nil {
			t.Fatalf("seeding %s: %v", u.email, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	rules := filepath.Join(dir, "policy", "policy.csv")
	if err := os.MkdirAll(filepath.Dir(rules), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/metrics_policy.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rules, b, 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "api_tokens.txt")
	if err := os.WriteFile(tokens, []byte(authn.HashAPIToken("metrics-test-token")+" robot@example.com viewer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	model := repoFile(t, "policies/model.conf")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream: %s
data_dir: data
shutdown_grace: 10s
policy:
  model: %s
  rules: %s
  poll_interval: 100ms
auth:
  api_tokens_file: %s
log:
  level: info
`, upstream, model, rules, tokens)
	in := startLatchIn(t, dir, cfg)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	t.Cleanup(client.CloseIdleConnections)
	return &metricsLatch{instance: in, model: model, rules: rules, tokens: tokens, client: client}
}

// send makes one request to the proxy port: token, when set, as a bearer
// token, body, when not nil, as JSON.
func (s *metricsLatch) send(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.proxy+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// expect is send that fails the test unless the status is want.
func (s *metricsLatch) expect(t *testing.T, want int, method, path, token string, body any) []byte {
	t.Helper()
	got, b := s.send(t, method, path, token, body)
	if got != want {
		t.Fatalf("%s %s: got status %d, want %d; body: %s", method, path, got, want, b)
	}
	return b
}

// login returns a JWT for a seeded user.
func (s *metricsLatch) login(t *testing.T, email, pass string) string {
	t.Helper()
	b := s.expect(t, http.StatusOK, http.MethodPost, "/.latch/login", "",
		map[string]string{"email": email, "password": pass})
	var out struct{ Token string }
	if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
		t.Fatalf("login %s: no token in %s (%v)", email, b, err)
	}
	return out.Token
}

// breakPolicy replaces the rules file with one that cannot load, in one
// rename (as an editor or a ConfigMap update does), and waits until latch
// has counted the failed reload.
func (s *metricsLatch) breakPolicy(t *testing.T) {
	t.Helper()
	failures := func() float64 {
		return metricValue(t, parseMetrics(t, scrapeMetrics(t, s.admin)), "latch_policy_reloads_total", map[string]string{"result": "failure"})
	}
	before := failures()
	tmp := filepath.Join(filepath.Dir(filepath.Dir(s.rules)), "broken.csv")
	if err := os.WriteFile(tmp, []byte("p, role:admin\nnot a policy line at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.rules); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "latch_policy_reloads_total{result=\"failure\"} to move after the rules file broke", func() bool {
		return failures() > before
	})
}

// breakAPITokens replaces the API tokens file with one that cannot load, in
// one rename, and waits until latch reports the failed reload (it polls
// the file every 5 seconds).
func (s *metricsLatch) breakAPITokens(t *testing.T) {
	t.Helper()
	tmp := s.tokens + ".new"
	if err := os.WriteFile(tmp, []byte("not a token line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.tokens); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "latch_api_tokens_last_reload_successful to be 0 after the API tokens file broke", func() bool {
		return metricValue(t, parseMetrics(t, scrapeMetrics(t, s.admin)), "latch_api_tokens_last_reload_successful", nil) == 0
	})
}

// pollDeadline is when polling gives up: shortly before the test binary's
// own deadline, and never more than two minutes away. It guards against
// hanging, not against slowness.
func pollDeadline(t *testing.T) time.Time {
	d := time.Now().Add(2 * time.Minute)
	if dl, ok := t.Deadline(); ok && dl.Add(-10*time.Second).Before(d) {
		d = dl.Add(-10 * time.Second)
	}
	return d
}

// pollUntil polls cond until it holds, failing the test at pollDeadline.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start, deadline := time.Now(), pollDeadline(t)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v (the limit is 2m or the -timeout deadline less 10s)",
				what, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape fetches admin's /metrics in the text format.
func scrapeMetrics(t *testing.T, admin string) []byte {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: got status %d, want 200; body: %s", resp.StatusCode, b)
	}
	return b
}

func parseMetrics(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// metricHasLabels reports whether m carries every label in want.
func metricHasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// metricValue is the value of the one counter or gauge series of name with
// the given labels; it fails the test unless exactly one matches.
func metricValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	var found []float64
	for _, m := range fams[name].GetMetric() {
		if !metricHasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			found = append(found, m.Counter.GetValue())
		case m.Gauge != nil:
			found = append(found, m.Gauge.GetValue())
		case m.Untyped != nil:
			found = append(found, m.Untyped.GetValue())
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: got %d series, want 1", name, labels, len(found))
	}
	return found[0]
}

func metricLabels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func metricLabelKey(m *dto.Metric) string {
	var parts []string
	for _, lp := range m.GetLabel() {
		parts = append(parts, lp.GetName()+"="+lp.GetValue())
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// writeMetricsGolden writes the golden families from text to metricsGolden.
func writeMetricsGolden(t *testing.T, text []byte) {
	t.Helper()
	fams := parseMetrics(t, text)
	var buf bytes.Buffer
	for _, name := range slices.Sorted(slices.Values(goldenMetrics)) {
		mf, ok := fams[name]
		if !ok {
			t.Fatalf("cannot update %s: /metrics has no %s", metricsGolden, name)
		}
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(metricsGolden, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", metricsGolden)
}

// TestMetricsGolden runs a scripted set of requests through a real latch
// and compares the counters and gauges they fix with testdata/metrics.golden.
func TestMetricsGolden(t *testing.T) {
	up := echoUpstream(t)
	s := startMetricsLatch(t, up.URL)
	model, err := os.ReadFile(s.model)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(s.rules)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()

	admin := s.login(t, metricsAdmin, metricsAdminPass)
	viewer := s.login(t, metricsViewer, metricsViewerPass)
	s.expect(t, http.StatusOK, http.MethodGet, "/items/1", "", nil)
	s.expect(t, http.StatusOK, http.MethodGet, "/api/admin/features", admin, nil)
	s.expect(t, http.StatusForbidden, http.MethodGet, "/api/admin/projects", viewer, nil)
	s.expect(t, http.StatusUnauthorized, http.MethodGet, "/api/admin/features", "", nil)

	b := s.expect(t, http.StatusOK, http.MethodPost, "/api/admin/user-admin/reset-password", admin,
		map[string]string{"id": metricsViewer})
	var link struct{ ResetPasswordURL string }
	if err := json.Unmarshal(b, &link); err != nil {
		t.Fatalf("reset link: %v in %s", err, b)
	}
	u, err := url.Parse(link.ResetPasswordURL)
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("reset link %q has no token (%v)", link.ResetPasswordURL, err)
	}
	token := u.Query().Get("token")
	s.expect(t, http.StatusOK, http.MethodGet, "/.latch/reset/validate?token="+url.QueryEscape(token), "", nil)
	s.expect(t, http.StatusOK, http.MethodPost, "/.latch/reset/redeem", "",
		map[string]string{"token": token, "password": "N3w-Sunrise-Pass!"})

	up.Close()
	s.expect(t, http.StatusBadGateway, http.MethodGet, "/items/2", "", nil)
	s.breakPolicy(t)
	if got := metricValue(t, parseMetrics(t, scrapeMetrics(t, s.admin)), "latch_api_tokens_last_reload_successful", nil); got != 1 {
		t.Errorf("latch_api_tokens_last_reload_successful with the file as latch started: got %v, want 1", got)
	}
	s.breakAPITokens(t)

	text := scrapeMetrics(t, s.admin)
	fams := parseMetrics(t, text)
	if *updateGolden {
		writeMetricsGolden(t, text)
	}

	// ScrapeAndCompare ignores names found on neither side, so check that
	// the golden file and the scrape both hold every name compared.
	golden, err := os.ReadFile(metricsGolden)
	if err != nil {
		t.Fatalf("%v (run: go test -run TestMetricsGolden -update ./cmd/latch/)", err)
	}
	var inGolden []string
	for name := range parseMetrics(t, golden) {
		inGolden = append(inGolden, name)
	}
	if want := slices.Sorted(slices.Values(goldenMetrics)); !slices.Equal(slices.Sorted(slices.Values(inGolden)), want) {
		t.Errorf("%s holds %v, want exactly %v", metricsGolden, slices.Sorted(slices.Values(inGolden)), want)
	}
	for _, name := range goldenMetrics {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if err := testutil.ScrapeAndCompare(s.admin+"/metrics", bytes.NewReader(golden), goldenMetrics...); err != nil {
		t.Errorf("/metrics differs from %s (if the change is intended: go test -run TestMetricsGolden -update ./cmd/latch/):\n%v", metricsGolden, err)
	}

	t.Run("policy_info", func(t *testing.T) {
		sum := sha256.Sum256(append(append([]byte{}, model...), rules...))
		want := hex.EncodeToString(sum[:])[:12]
		ms := fams["latch_policy_info"].GetMetric()
		if len(ms) != 1 {
			t.Fatalf("latch_policy_info: got %d series, want 1 (the policy in force)", len(ms))
		}
		if got := metricLabels(ms[0])["hash"]; got != want {
			t.Errorf("latch_policy_info hash: got %q, want %q (the policy before the failed reload)", got, want)
		}
		if v := ms[0].GetGauge().GetValue(); v != 1 {
			t.Errorf("latch_policy_info: got %v, want 1", v)
		}
		ts := metricValue(t, fams, "latch_policy_last_reload_success_timestamp_seconds", nil)
		if loaded := time.Unix(0, int64(ts*1e9)); loaded.After(started) || started.Sub(loaded) > time.Hour {
			t.Errorf("latch_policy_last_reload_success_timestamp_seconds: got %v, want the start-up load, just before %v", loaded, started)
		}
	})

	t.Run("build_info", func(t *testing.T) {
		ms := fams["latch_build_info"].GetMetric()
		if len(ms) != 1 {
			t.Fatalf("latch_build_info: got %d series, want 1", len(ms))
		}
		l := metricLabels(ms[0])
		if l["goversion"] != runtime.Version() || l["version"] != version() {
			t.Errorf("latch_build_info labels: got %v, want version=%q goversion=%q", l, version(), runtime.Version())
		}
		if v := ms[0].GetGauge().GetValue(); v != 1 {
			t.Errorf("latch_build_info: got %v, want 1", v)
		}
	})

	t.Run("histograms_agree_with_counters", func(t *testing.T) {
		counts := map[string]float64{}
		var forwarded float64 // answered by the upstream: proxy and protected 200s
		for _, m := range fams["latch_http_requests_total"].GetMetric() {
			counts[metricLabelKey(m)] = m.GetCounter().GetValue()
			l := metricLabels(m)
			if (l["class"] == "proxy" || l["class"] == "protected") && l["code"] == "200" {
				forwarded += m.GetCounter().GetValue()
			}
		}
		hist := map[string]float64{}
		for _, m := range fams["latch_http_request_duration_seconds"].GetMetric() {
			hist[metricLabelKey(m)] = float64(m.GetHistogram().GetSampleCount())
		}
		if len(counts) == 0 || !sameCounts(hist, counts) {
			t.Errorf("latch_http_request_duration_seconds counts %v, want the latch_http_requests_total values %v", hist, counts)
		}
		up := fams["latch_upstream_duration_seconds"].GetMetric()
		if len(up) != 1 || float64(up[0].GetHistogram().GetSampleCount()) != forwarded {
			t.Errorf("latch_upstream_duration_seconds: got %v, want one series counting %v answers", up, forwarded)
		}
		commit := fams["latch_store_commit_duration_seconds"].GetMetric()
		if len(commit) != 1 || commit[0].GetHistogram().GetSampleCount() == 0 {
			t.Errorf("latch_store_commit_duration_seconds: got %v, want one series with the reset's commits", commit)
		}
		if size := metricValue(t, fams, "latch_store_file_size_bytes", nil); size <= 0 {
			t.Errorf("latch_store_file_size_bytes: got %v, want > 0", size)
		}
	})
}

func sameCounts(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// scrapeAfterTraffic starts a seeded latch, sends one request of each kind
// (so every labelled family has series) and returns /metrics.
func scrapeAfterTraffic(t *testing.T) []byte {
	t.Helper()
	up := echoUpstream(t)
	s := startMetricsLatch(t, up.URL)
	admin := s.login(t, metricsAdmin, metricsAdminPass)
	s.expect(t, http.StatusOK, http.MethodGet, "/items/1", "", nil)
	s.expect(t, http.StatusOK, http.MethodGet, "/api/admin/features", admin, nil)
	s.expect(t, http.StatusUnauthorized, http.MethodGet, "/api/admin/features", "", nil)
	s.expect(t, http.StatusOK, http.MethodPost, "/api/admin/user-admin/reset-password", admin,
		map[string]string{"id": metricsViewer})
	return scrapeMetrics(t, s.admin)
}

// TestMetricsPromlint lints what /metrics serves with client_golang's
// promlint (naming, units, _total, help text).
func TestMetricsPromlint(t *testing.T) {
	text := scrapeAfterTraffic(t)
	problems, err := promlint.New(bytes.NewReader(text)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsCardinality sends 10,000 requests to distinct paths, open and
// protected, allowed and refused, and checks no series was added: paths
// and users never become label values.
func TestMetricsCardinality(t *testing.T) {
	up := echoUpstream(t)
	s := startMetricsLatch(t, up.URL)
	admin := s.login(t, metricsAdmin, metricsAdminPass)
	viewer := s.login(t, metricsViewer, metricsViewerPass)

	// kind n is what request n sends; the warm-up sends one of each.
	kind := func(n int) (path, token string, want int) {
		switch n % 10 {
		case 0:
			return fmt.Sprintf("/api/admin/x/%d", n), admin, http.StatusOK
		case 1:
			return fmt.Sprintf("/api/admin/x/%d", n), viewer, http.StatusForbidden
		case 2:
			return fmt.Sprintf("/api/admin/x/%d", n), "", http.StatusUnauthorized
		default:
			return fmt.Sprintf("/items/%d", n), "", http.StatusOK
		}
	}
	for n := range 4 {
		path, token, want := kind(n + 1_000_000)
		s.expect(t, want, http.MethodGet, path, token, nil)
	}

	series := func() (map[string]int, float64) {
		fams := parseMetrics(t, scrapeMetrics(t, s.admin))
		per := map[string]int{}
		var requests float64
		for name, mf := range fams {
			per[name] = len(mf.GetMetric())
		}
		for _, m := range fams["latch_http_requests_total"].GetMetric() {
			requests += m.GetCounter().GetValue()
		}
		return per, requests
	}
	total := func(per map[string]int) int {
		n := 0
		for _, v := range per {
			n += v
		}
		return n
	}
	before, reqBefore := series()

	const requests = 10_000
	for n := range requests {
		path, token, want := kind(n)
		if got, b := s.send(t, http.MethodGet, path, token, nil); got != want {
			t.Fatalf("request %d, GET %s: got status %d, want %d; body: %s", n, path, got, want, b)
		}
	}

	after, reqAfter := series()
	t.Logf("series before: %d, after %d requests: %d", total(before), requests, total(after))
	if reqAfter-reqBefore != requests {
		t.Errorf("latch_http_requests_total grew by %v, want %d", reqAfter-reqBefore, requests)
	}
	for name, n := range after {
		if n != before[name] {
			t.Errorf("%s: %d series before, %d after", name, before[name], n)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			t.Errorf("%s: gone after the requests", name)
		}
	}
	if text := scrapeMetrics(t, s.admin); bytes.Contains(text, []byte("/items/")) || bytes.Contains(text, []byte("/api/admin/x")) ||
		bytes.Contains(text, []byte(metricsAdmin)) {
		t.Error("/metrics carries a request path or a user")
	}
}

// TestMetricsAdminPort checks /metrics, /healthz and /readyz live on the
// admin port only.
func TestMetricsAdminPort(t *testing.T) {
	up := echoUpstream(t)
	s := startMetricsLatch(t, up.URL)

	// On the proxy port /metrics is an ordinary path: forwarded upstream.
	got, b := s.send(t, http.MethodGet, "/metrics", "", nil)
	var echoed struct{ Path string }
	if err := json.Unmarshal(b, &echoed); got != http.StatusOK || err != nil || echoed.Path != "/metrics" {
		t.Errorf("proxy port GET /metrics: got %d %s, want the upstream's answer", got, b)
	}
	if bytes.Contains(b, []byte("# TYPE")) || bytes.Contains(b, []byte("latch_")) {
		t.Errorf("the proxy port served metrics: %s", b)
	}

	resp, err := http.Get(s.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain") ||
		!bytes.Contains(body, []byte("# TYPE latch_build_info gauge")) {
		t.Errorf("admin GET /metrics: got %d %q, want 200 text/plain with latch_build_info", resp.StatusCode, ct)
	}
	if code, body := getJSON(t, s.admin+"/healthz"); code != http.StatusOK || body["status"] != "ok" {
		t.Errorf("/healthz: got %d %v, want 200 ok", code, body)
	}
	if code, body := getJSON(t, s.admin+"/readyz"); code != http.StatusOK || body["status"] != "ready" {
		t.Errorf("/readyz: got %d %v, want 200 ready", code, body)
	}
}

// TestMetricsDocumented checks README.md lists every latch_ family
// latch serves, lists nothing it does not, and carries the alert rules
// prometheus_test.go validates.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile(repoFile(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(latch_[a-z_]+)`")
	documented := map[string]bool{}
	for _, m := range row.FindAllSubmatch(doc, -1) {
		documented[string(m[1])] = true
	}
	served := map[string]bool{}
	for name := range parseMetrics(t, scrapeAfterTraffic(t)) {
		if strings.HasPrefix(name, "latch_") {
			served[name] = true
		}
	}
	for name := range served {
		if !documented[name] {
			t.Errorf("README.md has no table row for %s", name)
		}
	}
	for name := range documented {
		if !served[name] {
			t.Errorf("README.md documents %s, which latch does not serve", name)
		}
	}

	alerts, err := os.ReadFile("testdata/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```yaml\n(groups:.*?)```")
	m := block.FindSubmatch(doc)
	if m == nil {
		t.Fatal("README.md has no ```yaml block starting with groups:")
	}
	if !bytes.Equal(bytes.TrimSpace(m[1]), bytes.TrimSpace(alerts)) {
		t.Error("the alert rules in README.md differ from cmd/latch/testdata/alerts.yml; keep them the same")
	}
}
