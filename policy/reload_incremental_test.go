package policy

import (
	"hash/maphash"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestReloadIncremental edits a policy step by step, reloading after each
// edit, and compares the reloaded engine, which reuses parts of the policy
// it replaced (reuse.go), with a fresh Open of the same files on random
// requests: every decision must be the same, including the rule named and
// the explanation of a denial. Rerun with -diff.seed to reproduce.
func TestReloadIncremental(t *testing.T) {
	seed := *diffSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	gp := generatePolicy(11, genSpec{rules: 600, rulesPerRole: 25, resources: 30, denyPercent: 15, perm: true})
	gp.fewIDs = true
	other := generatePolicy(12, genSpec{rules: 600, rulesPerRole: 25, resources: 30, denyPercent: 15, perm: true})
	model := modelText(pWithPerm, allowNoDeny, stdMatcher)
	o := writePolicy(t, model, gp.csv)
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}

	lines := strings.SplitAfter(gp.csv, "\n")
	edit := func(f func(lines []string) []string) string {
		return strings.Join(f(append([]string(nil), lines...)), "")
	}
	// Each step rewrites the files from the base policy (or replaces it),
	// so consecutive steps differ by one or two edits.
	firstP := func(ls []string, from int) int {
		for i := from; i < len(ls); i++ {
			if strings.HasPrefix(ls[i], "p,") {
				return i
			}
		}
		t.Fatal("no p rule")
		return -1
	}
	firstG := func(ls []string) int {
		for i, l := range ls {
			if strings.HasPrefix(l, "g, role:r") {
				return i
			}
		}
		t.Fatal("no role-to-role g rule")
		return -1
	}
	mid := len(lines) / 2
	linkRemoved := edit(func(ls []string) []string {
		i := firstG(ls)
		return append(ls[:i], ls[i+1:]...)
	})
	steps := []struct {
		name, model, rules string
		// The reuse this test is about must happen: the role manager is
		// kept when the model and the g rules are unchanged, the reach
		// table when also the rule subjects are.
		sameRoles, sameReach bool
	}{
		{"comment only", model, gp.csv + "# a comment\n", true, true},
		{"one rule changed", model, edit(func(ls []string) []string {
			i := firstP(ls, mid)
			if strings.Contains(ls[i], ", allow") {
				ls[i] = strings.Replace(ls[i], ", allow", ", deny", 1)
			} else {
				ls[i] = strings.Replace(ls[i], ", deny", ", allow", 1)
			}
			return ls
		}), true, true},
		{"one rule removed", model, edit(func(ls []string) []string {
			i := firstP(ls, mid)
			return append(ls[:i], ls[i+1:]...)
		}), true, true},
		{"one rule added, new pattern and subject", model, edit(func(ls []string) []string {
			return append(ls[:mid], append([]string{"p, role:r3, /api/admin/brand-new/:id, ^GET$, deny, \n", "p, newcomer@example.com, /api/admin/*, .*, allow, NEW\n"}, ls[mid:]...)...)
		}), true, false},
		{"two rules swapped", model, edit(func(ls []string) []string {
			i := firstP(ls, mid)
			j := firstP(ls, i+1)
			ls[i], ls[j] = ls[j], ls[i]
			return ls
		}), true, false},
		{"duplicate rule added", model, edit(func(ls []string) []string {
			i := firstP(ls, mid)
			return append(ls, ls[i])
		}), true, true},
		{"back to the base policy", model, gp.csv, true, true},
		{"role link changed", model, edit(func(ls []string) []string {
			i := firstG(ls)
			ls[i] = "g, role:r1, role:deep0\n"
			return ls
		}), false, false},
		{"role link added", model, gp.csv + "g, u1@example.com, role:r2\ng, role:r2, role:r0\n", false, false},
		{"role link removed", model, linkRemoved, false, false},
		{"model changed", modelText(pWithPerm, allowNoDeny, stdMatcher+` && p.sub != "role:r3"`), linkRemoved, false, true},
		{"model changed back, one rule changed", model, edit(func(ls []string) []string {
			i := firstP(ls, 0)
			ls[i] = strings.Replace(ls[i], "p, ", "p, role:r4x", 1)
			return ls
		}), false, false},
		{"route function changed", modelText(pWithPerm, allowNoDeny, "g(r.sub, p.sub) && regexMatch(r.obj, p.obj) && regexMatch(r.act, p.act)"), gp.csv, false, false},
		{"every rule replaced", model, other.csv, false, false},
		{"and back", model, gp.csv, false, false},
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	requests := 400
	if raceEnabled || testing.Short() {
		requests = 100
	}
	for i, step := range steps {
		before := e.cur.Load()
		writeFile(t, o.ModelPath, step.model)
		writeFile(t, o.RulesPath, step.rules)
		if err := e.Reload(); err != nil {
			t.Fatalf("step %d (%s): Reload: %v", i, step.name, err)
		}
		after := e.cur.Load()
		if after == before {
			t.Fatalf("step %d (%s): nothing was installed", i, step.name)
		}
		if got := after.enf == before.enf; got != step.sameRoles {
			t.Errorf("step %d (%s): role manager kept: got %v, want %v", i, step.name, got, step.sameRoles)
		}
		if got := sameMap(after.ix.reach, before.ix.reach); got != step.sameReach {
			t.Errorf("step %d (%s): reach table kept: got %v, want %v", i, step.name, got, step.sameReach)
		}
		fresh, err := Open(o)
		if err != nil {
			t.Fatalf("step %d (%s): Open: %v", i, step.name, err)
		}
		if e.Rules() != fresh.Rules() {
			t.Errorf("step %d (%s): %d rules after the reload, %d after a fresh Open", i, step.name, e.Rules(), fresh.Rules())
		}
		vocab := gp
		vocab.users = append(append([]string(nil), gp.users...), other.users[:3]...)
		vocab.users = append(vocab.users, "newcomer@example.com")
		fails := 0
		for n := 0; n < requests && fails < 5; n++ {
			sub, roles, method, path := vocab.genRequest(rng)
			if rng.IntN(8) == 0 {
				path = "/api/admin/brand-new/" + path[strings.LastIndexByte(path, '/')+1:]
			}
			got, gerr := e.Decide(sub, roles, method, path)
			again, aerr := e.Explain(sub, roles, method, path)
			want, werr := fresh.Decide(sub, roles, method, path)
			if (gerr != nil) != (werr != nil) || !sameDecision(got, want) || (aerr != nil) != (werr != nil) || !sameDecision(again, want) {
				fails++
				t.Errorf("seed %d, step %d (%s): Decide(%q, %q, %q, %q)\n reloaded %+v, %v\n again    %+v, %v\n fresh    %+v, %v",
					seed, i, step.name, sub, roles, method, path, got, gerr, again, aerr, want, werr)
			}
		}
	}
}

// TestReloadIncrementalRefusals: a rule the policy in force never had is
// checked in full, even when every other rule is reused; and a refused
// reload leaves nothing behind for the next one to reuse.
func TestReloadIncrementalRefusals(t *testing.T) {
	gp := generatePolicy(21, genSpec{rules: 300, rulesPerRole: 25, resources: 20, denyPercent: 15, perm: true})
	o := writePolicy(t, modelText(pWithPerm, allowNoDeny, stdMatcher), gp.csv)
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct{ name, line string }{
		{"bad keyMatch2 pattern", "p, role:r1, /api/admin/(, ^GET$, allow, \n"},
		{"bad method regexp", "p, role:r1, /api/admin/x, ^(GET$, allow, \n"},
	}
	for _, b := range bad {
		writeFile(t, o.RulesPath, gp.csv+b.line)
		if err := e.Reload(); err == nil {
			t.Errorf("%s: the reload was accepted", b.name)
		}
		if e.Generation() != 1 {
			t.Fatalf("%s: generation %d, want 1", b.name, e.Generation())
		}
	}
	// The same bad rule again, after an accepted reload in between.
	writeFile(t, o.RulesPath, gp.csv+"# edited\n")
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		writeFile(t, o.RulesPath, gp.csv+b.line)
		if err := e.Reload(); err == nil {
			t.Errorf("%s, after another reload: the reload was accepted", b.name)
		}
	}
}

// TestRuleSet: rules are the same exactly when Casbin's duplicate check
// (fields joined with commas) says so, including when two different rules
// share a hash.
func TestRuleSet(t *testing.T) {
	rules := [][]string{
		{"a", "b", "c", "d", "e"},
		{"a", "b", "c", "d", ""},
		{"a,b", "c", "d", "e", ""},
		{"a", "b,c", "d", "e", ""},
		{"a", "b", "c,d", "e", ""},
		{"a,b,c", "d", "e", "", ""},
		{"a", "b", "c", "d", "e,"},
		{"a", "b", "c", "d,e", ""},
	}
	seed := maphash.MakeSeed()
	for _, collide := range []bool{false, true} {
		for _, x := range rules {
			for _, y := range rules {
				want := strings.Join(x, ",") == strings.Join(y, ",")
				rs := newRuleSet(seed, 0)
				rs.add(x)
				if collide && !want {
					rs.first[rs.hash(y)] = 0 // as if y hashed like x
				}
				if got := !rs.add(y); got != want {
					t.Errorf("collide %v: %q then %q: duplicate %v, want %v", collide, x, y, got, want)
				}
				if rs.add(y) || rs.add(x) {
					t.Errorf("collide %v: %q and %q added twice", collide, x, y)
				}
				if i, ok := rs.find(rs.hash(y), y); !ok || strings.Join(rs.rules[i], ",") != strings.Join(y, ",") {
					t.Errorf("collide %v: find(%q) after adding %q: %d %v", collide, y, x, i, ok)
				}
			}
		}
	}
}

// sameMap reports whether a and b are the same map, not just equal.
func sameMap[K comparable, V any](a, b map[K]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// TestReloadIncrementalRandom reloads a policy through a random walk of
// small edits (rules changed, removed, added, duplicated and moved; role
// links added and removed; the model switched now and then), comparing the
// reloaded engine with a fresh Open after each step. Rerun with -diff.seed
// to reproduce.
func TestReloadIncrementalRandom(t *testing.T) {
	seed := *diffSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 5))
	gp := generatePolicy(31, genSpec{rules: 400, rulesPerRole: 20, resources: 25, denyPercent: 15, perm: true})
	gp.fewIDs = true
	models := []string{
		modelText(pWithPerm, allowNoDeny, stdMatcher),
		modelText(pWithPerm, allowNoDeny, stdMatcher+` && p.sub != "role:r3"`),
		modelText(pWithPerm, allowNoDeny, "g(r.sub, p.sub) && (regexMatch(r.act, p.act) && keyMatch2(r.obj, p.obj))"),
	}
	model := models[0]
	o := writePolicy(t, model, gp.csv)
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(gp.csv, "\n")
	lines = lines[:len(lines)-1] // after the last newline
	randomRule := func() string {
		subs := []string{"role:r1", "role:r2", "role:r5", "u1@example.com", "role:fresh", "fresh@example.com"}
		paths := []string{"/api/admin/res1/:id", "/api/admin/res2/*", "/api/admin/new/:id", "/api/admin/*", "/api/admin/res1x", "/api/admin/res3.json/:id/*"}
		acts := []string{"^GET$", ".*", "^(POST|PUT)$", "GET"}
		eft, perm := "allow", []string{"", "PERM_1", "PERM_X"}[rng.IntN(3)]
		if rng.IntN(4) == 0 {
			eft, perm = "deny", ""
		}
		return "p, " + subs[rng.IntN(len(subs))] + ", " + paths[rng.IntN(len(paths))] + ", " + acts[rng.IntN(len(acts))] + ", " + eft + ", " + perm + "\n"
	}
	randomLink := func() string {
		members := []string{"u1@example.com", "u4@example.com", "fresh@example.com", "role:r1", "role:r7", "role:fresh"}
		roles := []string{"role:r2", "role:r3", "role:fresh", "role:deep0"}
		m, r := members[rng.IntN(len(members))], roles[rng.IntN(len(roles))]
		if m == r {
			return "# a comment\n"
		}
		return "g, " + m + ", " + r + "\n"
	}
	steps, requests := 40, 120
	if raceEnabled || testing.Short() {
		steps, requests = 15, 60
	}
	vocab := gp
	vocab.users = append(append([]string(nil), gp.users...), "fresh@example.com")
	vocab.roles = append(append([]string(nil), gp.roles...), "fresh")
	for step := range steps {
		var did []string
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(lines))
			switch rng.IntN(8) {
			case 0, 1:
				did = append(did, "changed "+strings.TrimSpace(lines[i]))
				lines[i] = randomRule()
			case 2:
				did = append(did, "removed "+strings.TrimSpace(lines[i]))
				lines = append(lines[:i], lines[i+1:]...)
			case 3:
				did = append(did, "added a rule")
				lines = append(lines[:i], append([]string{randomRule()}, lines[i:]...)...)
			case 4:
				did = append(did, "duplicated "+strings.TrimSpace(lines[i]))
				lines = append(lines, lines[i])
			case 5:
				j := rng.IntN(len(lines))
				did = append(did, "swapped two lines")
				lines[i], lines[j] = lines[j], lines[i]
			case 6:
				did = append(did, "added a link")
				lines = append(lines[:i], append([]string{randomLink()}, lines[i:]...)...)
			default:
				if rng.IntN(3) == 0 {
					model = models[rng.IntN(len(models))]
					did = append(did, "model switched")
				}
			}
		}
		writeFile(t, o.ModelPath, model)
		writeFile(t, o.RulesPath, strings.Join(lines, ""))
		if err := e.Reload(); err != nil {
			t.Fatalf("seed %d, step %d (%q): Reload: %v", seed, step, did, err)
		}
		fresh, err := Open(o)
		if err != nil {
			t.Fatalf("seed %d, step %d: Open: %v", seed, step, err)
		}
		if e.Rules() != fresh.Rules() {
			t.Errorf("seed %d, step %d (%q): %d rules after the reload, %d after a fresh Open", seed, step, did, e.Rules(), fresh.Rules())
		}
		fails := 0
		for n := 0; n < requests && fails < 3; n++ {
			sub, roles, method, path := vocab.genRequest(rng)
			if rng.IntN(6) == 0 {
				path = "/api/admin/new/" + path[strings.LastIndexByte(path, '/')+1:]
			}
			got, gerr := e.Decide(sub, roles, method, path)
			want, werr := fresh.Decide(sub, roles, method, path)
			if (gerr != nil) != (werr != nil) || !sameDecision(got, want) {
				fails++
				t.Errorf("seed %d, step %d (%q): Decide(%q, %q, %q, %q)\n reloaded %+v, %v\n fresh    %+v, %v",
					seed, step, did, sub, roles, method, path, got, gerr, want, werr)
			}
		}
	}
}
