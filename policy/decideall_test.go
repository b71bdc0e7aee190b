package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// foldDecide is DecideAll written out with Decide, pair by pair: the
// reference the tests below compare DecideAll with.
func foldDecide(e *Engine, sub string, roles []string, methods, paths []string) (Verdict, error) {
	var v Verdict
	for _, m := range methods {
		for _, p := range paths {
			d, err := e.Explain(sub, roles, m, p)
			v = Verdict{Decision: d, Method: m, Path: p}
			if err != nil || !d.Allow {
				return v, err
			}
		}
	}
	return v, nil
}

func sameVerdict(a, b Verdict) bool {
	return a.Method == b.Method && a.Path == b.Path && a.Allow == b.Allow && slices.Equal(a.Rule, b.Rule) &&
		a.Permission == b.Permission && a.Pattern == b.Pattern
}

func TestDecideAll(t *testing.T) {
	t.Parallel()
	e := newFixture(t).open(t)
	const features = "/api/admin/features"
	tests := []struct {
		name             string
		user             string
		roles            []string
		methods, paths   []string
		allow            bool
		method, path     string // the deciding pair
		permission, rule string // rule: the deciding rule's subject, "" for none
	}{
		{"every pair allowed: the last decides", "a@example.com", []string{"admin"}, []string{"GET", "DELETE"}, []string{"/api/admin/user-admin", "/api/admin/user-admin/x"},
			true, "DELETE", "/api/admin/user-admin/x", "", "role:admin"},
		{"a reading the rules do not name", "v@example.com", []string{"viewer"}, []string{"GET"}, []string{"/api/admin/Features", features},
			false, "GET", "/api/admin/Features", "ADMIN", ""},
		{"the denied reading comes second", "v@example.com", []string{"viewer"}, []string{"GET"}, []string{features, "/api/admin/Features"},
			false, "GET", "/api/admin/Features", "ADMIN", ""},
		{"an overriding method is denied", "ed@example.com", []string{"editor"}, []string{"POST", "DELETE"}, []string{features},
			false, "DELETE", features, "ADMIN", ""},
		{"a deny rule on a later reading", "ed@example.com", []string{"editor"}, []string{"GET"}, []string{features, "/api/admin/user-admin"},
			false, "GET", "/api/admin/user-admin", "ADMIN", "role:editor"},
		{"one pair", "v@example.com", []string{"viewer"}, []string{"GET"}, []string{features},
			true, "GET", features, "", "role:viewer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := e.DecideAll(tt.user, tt.roles, tt.methods, tt.paths)
			if err != nil {
				t.Fatalf("DecideAll: %v", err)
			}
			if v.Allow != tt.allow || v.Method != tt.method || v.Path != tt.path || v.Permission != tt.permission {
				t.Errorf("got allow=%v %s %s permission %q, want allow=%v %s %s permission %q",
					v.Allow, v.Method, v.Path, v.Permission, tt.allow, tt.method, tt.path, tt.permission)
			}
			if got := strings.Join(v.Rule, ","); !strings.HasPrefix(got+",", tt.rule+",") || (tt.rule == "") != (v.Rule == nil) {
				t.Errorf("rule: got %q, want one of subject %q", v.Rule, tt.rule)
			}
			want, werr := foldDecide(e, tt.user, tt.roles, tt.methods, tt.paths)
			if werr != nil || !sameVerdict(v, want) {
				t.Errorf("got %+v, want %+v, %v as Decide pair by pair", v, want, werr)
			}
		})
	}
}

func TestDecideAllErrors(t *testing.T) {
	t.Parallel()
	e := newFixture(t).open(t)
	for _, tt := range []struct {
		name           string
		user           string
		methods, paths []string
		want           error
		method, path   string
	}{
		{"no method", "a@example.com", nil, []string{resetPath}, errNothing, "", ""},
		{"no path", "a@example.com", []string{"GET"}, []string{}, errNothing, "", ""},
		{"bad subject", "role:admin", []string{"GET", "POST"}, []string{resetPath, "/x"}, ErrSubject, "GET", resetPath},
	} {
		v, err := e.DecideAll(tt.user, []string{"admin"}, tt.methods, tt.paths)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: got error %v, want %v", tt.name, err, tt.want)
		}
		if v.Allow || v.Method != tt.method || v.Path != tt.path {
			t.Errorf("%s: got %+v, want a denial about %q %q", tt.name, v, tt.method, tt.path)
		}
	}
}

// TestDecideAllCountsOnce: a request is one decision in the metrics,
// however many methods and readings it was decided on.
func TestDecideAllCountsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	opts := f.options()
	opts.Registerer = reg
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	readings := []string{"/api/admin/user-admin/x", "/api/admin/user-admin/X", "/api/admin/user-admin/k"}
	both := []string{"GET", "DELETE"}
	_, _ = e.DecideAll("a@example.com", []string{"admin"}, both, readings)   // allow, six pairs
	_, _ = e.DecideAll("ed@example.com", []string{"editor"}, both, readings) // deny
	_, _ = e.DecideAll("role:x", nil, both, readings)                        // error
	_, _ = e.DecideAll("a@example.com", []string{"admin"}, nil, readings)    // error
	want := `
# HELP latch_authz_decisions_total Authorisation decisions, by outcome; error means deciding failed and the request was denied.
# TYPE latch_authz_decisions_total counter
latch_authz_decisions_total{decision="allow"} 1
latch_authz_decisions_total{decision="deny"} 1
latch_authz_decisions_total{decision="error"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "latch_authz_decisions_total"); err != nil {
		t.Error(err)
	}
}

// TestDecideAllRuleIsOwn: the Rule of a cached answer is the caller's to
// change; the cache keeps its own.
func TestDecideAllRuleIsOwn(t *testing.T) {
	t.Parallel()
	for _, entries := range []int{0, -1} {
		f := newFixture(t)
		o := f.options()
		o.CacheEntries = entries
		e, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			v, err := e.DecideAll("a@example.com", []string{"admin"}, []string{"GET"}, []string{resetPath, resetPath})
			if err != nil || !v.Allow || len(v.Rule) == 0 || v.Rule[0] != "role:admin" {
				t.Fatalf("cache %d: got %+v, %v; want allowed by role:admin", entries, v, err)
			}
			v.Rule[0] = "changed"
		}
	}
}
