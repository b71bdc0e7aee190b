package policy

import (
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReloadUnchangedBuildsNothing: Reload (SIGHUP) on files that hold the
// policy in force counts a success without building a new policy; after
// an edit it builds once.
func TestReloadUnchangedBuildsNothing(t *testing.T) {
	model, err := os.ReadFile("../policies/model.conf")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile("../policies/policy.csv")
	if err != nil {
		t.Fatal(err)
	}
	o := writePolicy(t, string(model), string(rules))
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	gen := e.Generation()
	for range 3 {
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if e.Generation() != gen {
		t.Errorf("generation: got %d after reloading unchanged files, want %d (nothing built)", e.Generation(), gen)
	}
	if got := testutil.ToFloat64(e.m.reloads.WithLabelValues("success")); got != 3 {
		t.Errorf("successful reloads: got %v, want 3", got)
	}
	edited := string(rules) + "\np, role:viewer, /api/admin/extra, ^GET$, allow\n"
	if err := os.WriteFile(o.RulesPath, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if e.Generation() != gen+1 {
		t.Errorf("generation after an edit: got %d, want %d", e.Generation(), gen+1)
	}
	if d, err := e.Decide("v@example.com", []string{"viewer"}, "GET", "/api/admin/extra"); err != nil || !d.Allow {
		t.Errorf("the edit is not in force: %+v %v", d, err)
	}
}
