package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// policyHash computes latch_policy_info's label the way the docs tell ops to.
func policyHash(t *testing.T, f fixture) string {
	t.Helper()
	var b []byte
	for _, p := range []string{f.model, f.rules} {
		c, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, c...)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}

// countRules counts p and g lines the simple way, independently of the parser.
func countRules(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "p,") || strings.HasPrefix(l, "g,") {
			n++
		}
	}
	return n
}

var reloadMetrics = []string{
	"latch_policy_reloads_total",
	"latch_policy_last_reload_successful",
	"latch_policy_last_reload_success_timestamp_seconds",
	"latch_policy_rules",
	"latch_policy_info",
}

func reloadExposition(success, failure, ok int, ts time.Time, rules int, hash string) string {
	return fmt.Sprintf(`
# HELP latch_policy_info Always 1; hash is the first 12 hex digits of sha256(model file + policy file) in force.
# TYPE latch_policy_info gauge
latch_policy_info{hash=%q} 1
# HELP latch_policy_last_reload_success_timestamp_seconds Unix time of the last successful policy load or reload.
# TYPE latch_policy_last_reload_success_timestamp_seconds gauge
latch_policy_last_reload_success_timestamp_seconds %d
# HELP latch_policy_last_reload_successful 1 if the last policy load or reload succeeded, 0 if it was rejected.
# TYPE latch_policy_last_reload_successful gauge
latch_policy_last_reload_successful %d
# HELP latch_policy_reloads_total Policy reload attempts (start-up excluded), by result.
# TYPE latch_policy_reloads_total counter
latch_policy_reloads_total{result="failure"} %d
latch_policy_reloads_total{result="success"} %d
# HELP latch_policy_rules Rules (p and g) in the policy in force.
# TYPE latch_policy_rules gauge
latch_policy_rules %d
`, hash, ts.Unix(), ok, failure, success, rules)
}

func TestReloadMetrics(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	now := time.Unix(1_767_225_600, 0)
	opts := f.options()
	opts.Registerer = reg
	opts.Now = func() time.Time { return now }
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	firstHash, firstRules, opened := policyHash(t, f), countRules(t, f.rules), now

	check := func(step, want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), reloadMetrics...); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	check("after Open", reloadExposition(0, 0, 1, opened, firstRules, firstHash))

	now = now.Add(time.Minute)
	writeFile(t, f.rules, "")
	if err := e.Reload(); err == nil {
		t.Fatal("Reload of an empty file: got no error, want one")
	}
	check("after a refused reload", reloadExposition(0, 1, 0, opened, firstRules, firstHash))

	now = now.Add(time.Minute)
	writeFile(t, f.rules, readShipped(t, "policy.csv")+auditorRule)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	check("after a good reload", reloadExposition(1, 1, 1, now, countRules(t, f.rules), policyHash(t, f)))
	if policyHash(t, f) == firstHash {
		t.Errorf("the edit did not change the hash; the test cannot tell old from new")
	}
	if got := e.Hash(); got != policyHash(t, f) {
		t.Errorf("Hash: got %q, want %q", got, policyHash(t, f))
	}
}

func TestDecisionMetrics(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	opts := f.options()
	opts.Registerer = reg
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		user  string
		roles []string
	}{
		{"alice@example.com", []string{"admin"}},  // allow
		{"alice@example.com", []string{"admin"}},  // allow
		{"bob@example.com", []string{"editor"}},   // deny
		{"role:admin", nil},                       // error
		{"carol@example.com", []string{"viewer"}}, // deny
	}
	for _, c := range calls {
		_, _ = e.Decide(c.user, c.roles, "POST", resetPath)
	}
	_, _ = e.Explain("alice@example.com", []string{"admin"}, "POST", resetPath) // not counted
	want := `
# HELP latch_authz_decisions_total Authorisation decisions, by outcome; error means deciding failed and the request was denied.
# TYPE latch_authz_decisions_total counter
latch_authz_decisions_total{decision="allow"} 2
latch_authz_decisions_total{decision="deny"} 2
latch_authz_decisions_total{decision="error"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "latch_authz_decisions_total"); err != nil {
		t.Error(err)
	}
}

func TestOpenWithoutRegistererAndTwice(t *testing.T) {
	f := newFixture(t)
	if _, err := Open(f.options()); err != nil {
		t.Fatalf("Open without a Registerer: %v", err)
	}
	reg := prometheus.NewRegistry()
	opts := f.options()
	opts.Registerer = reg
	if _, err := Open(opts); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(opts); err == nil {
		t.Errorf("second Open on the same registry: got no error, want a duplicate registration error")
	}
}
