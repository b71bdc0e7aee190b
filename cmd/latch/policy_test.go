package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

type knownAnswer struct {
	allow        bool
	sub          string
	roles        []string
	method, path string
	permission   string
}

// shippedAnswers reads policies/policy.tests.
func shippedAnswers(t *testing.T) []knownAnswer {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, "policies/policy.tests"))
	if err != nil {
		t.Fatal(err)
	}
	var out []knownAnswer
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		who := strings.Fields(f[1])
		a := knownAnswer{allow: f[0] == "allow", sub: who[0], method: f[2], path: f[3]}
		for _, r := range who[1:] {
			a.roles = append(a.roles, strings.TrimPrefix(r, "role:"))
		}
		if len(f) > 4 {
			a.permission = f[4]
		}
		out = append(out, a)
	}
	if len(out) < 10 {
		t.Fatalf("policy.tests holds %d answers, want at least 10", len(out))
	}
	return out
}

// TestExplainAgreesWithProxy checks each known answer three ways: the
// running proxy (and whether the upstream saw the request), `latch policy
// explain`, and the expectation in policy.tests.
func TestExplainAgreesWithProxy(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("X-Request-Id")] = true
		mu.Unlock()
		io.WriteString(w, "upstream")
	}))
	defer up.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "latch.yaml")
	if err := os.WriteFile(cfg, []byte(baseConfig(t, up.URL, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	runOut := func(args ...string) string {
		t.Helper()
		var out, stderr syncBuffer
		if err := run(context.Background(), args, nil, nil, &out, &stderr); err != nil {
			t.Fatalf("latch %v: %v\n%s%s", args, err, out.String(), stderr.String())
		}
		return out.String()
	}
	answers := shippedAnswers(t)
	argsOf := func(a knownAnswer) []string {
		args := []string{"--config", cfg, "--sub", a.sub}
		for _, r := range a.roles {
			args = append(args, "--role", r)
		}
		return args
	}
	// The subjects are not stored users. Their tokens are minted before
	// latch holds the bbolt file: `latch token --allow-unknown` reads the
	// store for a subject given no --role (dave@example.com, admin).
	tokens := make([]string, len(answers))
	for i, a := range answers {
		tokens[i] = strings.TrimSpace(runOut(append([]string{"token", "--ttl", "5m", "--allow-unknown"}, argsOf(a)...)...))
	}
	in := startLatchArgs(t, dir, []string{"serve", "--config", cfg}, nil)
	for i, a := range answers {
		args, token := argsOf(a), tokens[i]
		explained := runOut(append(append([]string{"policy", "explain"}, args...), a.method, a.path)...)

		reqID := "known-answer-" + string(rune('a'+i))
		req, _ := http.NewRequest(a.method, in.proxy+a.path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Request-Id", reqID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		proxyAllowed := resp.StatusCode != 403 && resp.StatusCode != 401
		explainAllowed := strings.Contains(explained, "decision: allow")
		name := a.method + " " + a.path + " as " + a.sub
		if proxyAllowed != a.allow || explainAllowed != a.allow {
			t.Errorf("%s: policy.tests says allow=%v, proxy %d (%s), explain:\n%s", name, a.allow, resp.StatusCode, body, explained)
		}
		if a.permission != "" && !strings.Contains(string(body), `\"`+a.permission+`\"`) {
			t.Errorf("%s: 403 body %s does not name permission %s", name, body, a.permission)
		}
		if a.permission != "" && !strings.Contains(explained, `"`+a.permission+`"`) {
			t.Errorf("%s: explain does not name permission %s:\n%s", name, a.permission, explained)
		}
		mu.Lock()
		reached := seen[reqID]
		mu.Unlock()
		if !a.allow && reached {
			t.Errorf("%s: denied, yet the upstream received it", name)
		}
		local := strings.HasPrefix(a.path, "/.latch/") || a.path == "/api/admin/user-admin/reset-password"
		if a.allow && !local && !reached {
			t.Errorf("%s: allowed, yet the upstream never received it", name)
		}
	}
}

// scrapeValue reads one sample's value from the admin port's /metrics.
func scrapeValue(t *testing.T, admin, series string) string {
	t.Helper()
	for _, line := range strings.Split(string(scrapeMetrics(t, admin)), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestSIGHUPReloads sends the process a real SIGHUP and sees latch reload.
func TestSIGHUPReloads(t *testing.T) {
	in := startLatch(t, baseConfig(t, echoUpstream(t).URL, ""))
	const series = `latch_policy_reloads_total{result="success"}`
	before := scrapeValue(t, in.admin, series)
	if before == "" {
		t.Fatalf("no %s series", series)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "a reload after SIGHUP", func() bool { return scrapeValue(t, in.admin, series) != before })
	if !strings.Contains(in.logs.String(), "SIGHUP: reloading") {
		t.Error("no SIGHUP log line")
	}
}

// TestPolicyEditTakesEffect edits a copied rules file under a running
// latch and sees the decision change, with no restart.
func TestPolicyEditTakesEffect(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "policy.csv")
	orig, err := os.ReadFile(repoFile(t, "policies/policy.csv"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(rules, orig, 0o600)
	cfg := strings.Replace(baseConfig(t, echoUpstream(t).URL, ""), repoFile(t, "policies/policy.csv"), rules, 1)
	cfg = strings.Replace(cfg, "policy:\n", "policy:\n  max_rule_drop: 1\n  poll_interval: 100ms\n", 1)
	in := startLatch(t, cfg)
	var out, stderr syncBuffer
	if err := run(context.Background(), []string{"token", "--config", filepath.Join(in.dir, "latch.yaml"), "--sub", "v@example.com", "--role", "viewer", "--allow-unknown"}, nil, nil, &out, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	token := strings.TrimSpace(out.String())
	status := func() int {
		req, _ := http.NewRequest("POST", in.proxy+"/api/admin/features", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != 403 {
		t.Fatalf("viewer POST before the edit: got %d, want 403", got)
	}
	edited := string(orig) + "\np, role:viewer, /api/admin/features, ^POST$, allow, CREATE_FEATURE\n"
	tmp := rules + ".tmp"
	os.WriteFile(tmp, []byte(edited), 0o600)
	os.Rename(tmp, rules) // an editor's write-and-rename
	pollUntil(t, "the edited policy to allow the viewer", func() bool { return status() == 200 })

	// A broken edit is refused and the running policy stays.
	os.WriteFile(tmp, []byte("p, role:viewer, /api/admin/*, ^(GET$, allow\n"), 0o600)
	os.Rename(tmp, rules)
	pollUntil(t, "the broken edit to be refused", func() bool {
		return scrapeValue(t, in.admin, `latch_policy_reloads_total{result="failure"}`) != "0"
	})
	if got := status(); got != 200 {
		t.Errorf("after a refused edit: got %d, want 200 from the policy still in force", got)
	}
}
