package policy

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReloadUnchangedBuildsNothing: Reload (SIGHUP) on files that hold the
// policy in force counts a success without building a new policy; after
// an edit it builds once.
func TestReloadUnchangedBuildsNothing(t *testing.T) {
	model, rules := readShipped(t, "model.conf"), readShipped(t, "policy.csv")
	o := writePolicy(t, model, rules)
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
	edited := rules + "\np, role:viewer, /api/admin/extra, ^GET$, allow\n"
	writeFile(t, o.RulesPath, edited)
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

// TestReloadTrialsWhatChanged: a reload skips the trial evaluation only for
// rules that passed it under the same model. Unchanged rules under a
// changed model that breaks them are still refused: without the model
// check on the skip (build's modelSum comparison) nothing evaluates them
// and this reload is accepted.
func TestReloadTrialsWhatChanged(t *testing.T) {
	model, rules := readShipped(t, "model.conf"), readShipped(t, "policy.csv")
	o := writePolicy(t, model, rules)
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	gen := e.Generation()

	// A matcher that fails on every rule: the rules are unchanged, the
	// model is not, and the reload is refused.
	broken := strings.Replace(model, "m = g(r.sub, p.sub) && ", "m = g(r.sub, p.sub) && p.eft > 5 && ", 1)
	if broken == model {
		t.Fatal("could not find the matcher to break")
	}
	writeFile(t, o.ModelPath, broken)
	if err := e.Reload(); err == nil {
		t.Error("a model that fails on every rule was accepted")
	}
	if e.Generation() != gen {
		t.Errorf("generation %d, want %d: the refused model was installed", e.Generation(), gen)
	}
	if d, err := e.Decide("a@example.com", []string{"admin"}, "POST", "/api/admin/user-admin/reset-password"); err != nil || !d.Allow {
		t.Errorf("the policy in force stopped working: %+v %v", d, err)
	}
}
