//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// startPrometheus runs Debian's prometheus on a free loopback port with no
// authentication of its own and its admin API and lifecycle endpoints on,
// scraping itself every second. It returns its base URL.
func startPrometheus(t *testing.T) (string, *proc) {
	t.Helper()
	bin := need(t, "Prometheus (Debian's prometheus)", "/usr/bin/prometheus", "prometheus")
	dir := t.TempDir()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: [%q]
`, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "prometheus", 0, 15*time.Second, exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--web.enable-admin-api",
		"--web.enable-lifecycle",
	))
	url := "http://" + addr
	p.waitHTTP(t, url+"/-/ready", 200, 60*time.Second)
	return url, p
}

// TestPrometheus puts latch (examples/prometheus's policy, protecting
// every path) in front of Prometheus: a viewer signs in and uses the UI
// and the query API with the session cookie, and may not reload or stop
// Prometheus; an admin may.
func TestPrometheus(t *testing.T) {
	promURL, prom := startPrometheus(t)
	l := startLatch(t, latchOpts{
		upstream: promURL,
		rules:    "examples/prometheus/policy.csv",
		tests:    "examples/prometheus/policy.tests",
		protect:  []string{"/"},
		users:    []person{admin, viewer},
	})

	// Without a session a browser is sent to the login page, then back.
	v := newBrowser(t, "vera")
	v.do("graph page", chromedp.Navigate(l.url+"/classic/graph"), chromedp.WaitVisible(`input[name=email]`))
	if loc := v.location(); !strings.Contains(loc, "/.latch/login?rd=") {
		t.Errorf("without a session: at %s, want latch's login page with rd", loc)
	}
	v.do("sign in",
		chromedp.SendKeys(`input[name=email]`, viewer.email),
		chromedp.SendKeys(`input[name=password]`, viewer.password),
		chromedp.Click(`button[type=submit]`),
	)
	v.waitFor("Prometheus's graph page", `location.pathname === "/classic/graph" && !!document.querySelector("textarea, input.expression_input, [name=expr]")`, 30*time.Second)

	// The query API, from the page, with the cookie: GET and a form POST.
	v.waitFor("a scrape", `fetch("/api/v1/query?query=up").then(r => r.json()).then(j => j.status === "success" && j.data.result.length > 0)`, 30*time.Second)
	// The UI's own query, as a person runs it.
	v.do("query up", chromedp.SendKeys(`textarea`, "up"))
	v.click("Execute", 10*time.Second)
	v.waitText("the result", `up{instance="`, 15*time.Second)
	for _, r := range []fetchResult{
		v.pageFetch("GET", "/api/v1/query?query=up", nil),
		v.formPost("/api/v1/query", "query=up"),
		v.formPost("/api/v1/query_range", fmt.Sprintf("query=up&start=%d&end=%d&step=1", time.Now().Add(-time.Minute).Unix(), time.Now().Unix())),
		v.pageFetch("GET", "/api/v1/labels", nil),
		v.pageFetch("GET", "/api/v1/series?match[]=up", nil),
	} {
		if r.Status != 200 || !strings.Contains(r.Body, `"status":"success"`) {
			t.Errorf("viewer query: got %d %s", r.Status, tail(r.Body, 300))
		}
	}

	// Stopping, reloading or deleting is not for viewers: latch answers.
	for _, path := range []string{"/-/quit", "/-/reload", "/api/v1/admin/tsdb/snapshot"} {
		if r := v.formPost(path, ""); r.Status != http.StatusForbidden || !strings.Contains(r.Body, `"NoAccessError"`) {
			t.Errorf("viewer POST %s: got %d %s, want 403 NoAccessError", path, r.Status, r.Body)
		}
	}
	select {
	case <-prom.done:
		t.Fatalf("Prometheus exited after a viewer's POST /-/quit")
	default:
	}

	// An admin may reload.
	a := newBrowser(t, "alice")
	a.do("login page", chromedp.Navigate(l.url+"/.latch/login?rd=/classic/graph"), chromedp.WaitVisible(`input[name=email]`))
	a.do("sign in",
		chromedp.SendKeys(`input[name=email]`, admin.email),
		chromedp.SendKeys(`input[name=password]`, admin.password),
		chromedp.Click(`button[type=submit]`),
	)
	a.waitFor("Prometheus's graph page", `location.pathname === "/classic/graph"`, 30*time.Second)
	const loaded = "Completed loading of configuration file"
	before := strings.Count(prom.log.String(), loaded)
	if r := a.formPost("/-/reload", ""); r.Status != 200 {
		t.Errorf("admin POST /-/reload: got %d %s, want 200", r.Status, r.Body)
	}
	prom.waitLine(t, regexp.MustCompile(fmt.Sprintf(`(?s)(?:%s.*){%d}`, loaded, before+1)), 10*time.Second)
}

// formPost POSTs an application/x-www-form-urlencoded body from the page.
func (b *browser) formPost(path, body string) fetchResult {
	b.t.Helper()
	expr := fmt.Sprintf(`fetch(%s, {method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: %s}).then(async r => ({status: r.status, body: await r.text(), header: {}}))`, jsString(path), jsString(body))
	return eval[fetchResult](b, expr)
}
