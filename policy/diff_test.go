package policy

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
)

var (
	diffSeed  = flag.Uint64("diff.seed", 0, "seed for TestDifferential's requests; 0 picks one from the clock")
	diffScale = flag.Int("diff.scale", 1, "multiplies TestDifferential's request counts")
	diffFull  = flag.Bool("diff.full", false, "run TestDifferential's full request counts even under -race or -short (make test-differential)")
)

// reference decides with plain Casbin enforcers loaded straight from the
// files: Decide's semantics (each subject asked with EnforceEx, allowed iff
// one allows and none denies; a denial explained by the first allow rule,
// in file order, whose route part covers the request) computed by
// scanning every rule the way Casbin does.
type reference struct {
	enf, routes, perms *casbin.Enforcer
	explained          map[[2]string]Decision // (method, path) -> explanation; it depends on nothing else
}

func newReference(t *testing.T, o Options, p, matcher string, hasPerm bool) *reference {
	t.Helper()
	route := strings.TrimPrefix(matcher, "g(r.sub, p.sub) && ")
	load := func(name, text string) *casbin.Enforcer {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		e, err := casbin.NewEnforcer(path, o.RulesPath)
		if err != nil {
			t.Fatalf("casbin loading %s: %v", name, err)
		}
		return e
	}
	ref := &reference{
		explained: map[[2]string]Decision{},
		enf:       load("model.conf", modelText(p, "some(where (p.eft == allow)) && !some(where (p.eft == deny))", matcher)),
		routes:    load("routes.conf", modelText(p, "some(where (p.eft == allow))", route)),
	}
	if hasPerm {
		ref.perms = load("perms.conf", modelText(p, "some(where (p.eft == allow))", "("+route+`) && p.perm != ""`))
	}
	return ref
}

func modelText(p, e, m string) string {
	return fmt.Sprintf("[request_definition]\nr = sub, obj, act\n[policy_definition]\np = %s\n[role_definition]\ng = _, _\n[policy_effect]\ne = %s\n[matchers]\nm = %s\n", p, e, m)
}

func (ref *reference) decide(sub string, roles []string, method, path string) (Decision, error) {
	var allowRule []string
	allowed := false
	for i := -1; i < len(roles); i++ {
		subject := sub
		if i >= 0 {
			if roles[i] == "" {
				continue
			}
			subject = RolePrefix + roles[i]
		}
		ok, rule, err := ref.enf.EnforceEx(subject, path, method)
		if err != nil {
			return Decision{}, err
		}
		if ok {
			if !allowed {
				allowed, allowRule = true, rule
			}
			continue
		}
		if len(rule) > 0 {
			return ref.explain(Decision{Rule: rule}, path, method), nil
		}
	}
	if allowed {
		return Decision{Allow: true, Rule: allowRule}, nil
	}
	return ref.explain(Decision{}, path, method), nil
}

func (ref *reference) explain(d Decision, path, method string) Decision {
	x, ok := ref.explained[[2]string{method, path}]
	if !ok {
		x = ref.scan(path, method)
		ref.explained[[2]string{method, path}] = x
	}
	d.Permission, d.Pattern = x.Permission, x.Pattern
	return d
}

func (ref *reference) scan(path, method string) (d Decision) {
	if ref.perms != nil {
		if ok, rule, err := ref.perms.EnforceEx("", path, method); err == nil && ok {
			d.Permission = rule[colPerm]
			return d
		}
	}
	if ok, rule, err := ref.routes.EnforceEx("", path, method); err == nil && ok {
		d.Pattern = rule[colAct] + " " + rule[colObj]
	}
	return d
}

func sameDecision(a, b Decision) bool {
	return a.Allow == b.Allow && slices.Equal(a.Rule, b.Rule) && a.Permission == b.Permission && a.Pattern == b.Pattern
}

const (
	pWithPerm   = "sub, obj, act, eft, perm"
	pNoPerm     = "sub, obj, act, eft"
	stdMatcher  = "g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && regexMatch(r.act, p.act)"
	allowNoDeny = "some(where (p.eft == allow)) && !some(where (p.eft == deny))"
)

// shippedPolicy is the shipped policy with the optional perm column
// written out, which Casbin's file adapter requires, and a vocabulary for
// requests around it.
func shippedPolicy(t *testing.T) genPolicy {
	var b strings.Builder
	for _, line := range strings.Split(readShipped(t, "policy.csv"), "\n") {
		if strings.HasPrefix(line, "p,") && strings.Count(line, ",") == 4 {
			line += ", "
		}
		b.WriteString(line + "\n")
	}
	return genPolicy{
		csv:       b.String(),
		users:     []string{"alice@example.com", "admin", "editor@example.com"},
		roles:     []string{"admin", "editor", "viewer", "auditor", "", "role:admin"},
		resources: []string{"user-admin", "user-admin/reset-password", "features", "projects", "projects/default/features", "strategies", "context", "segments", "tags", "environments", "events"},
	}
}

// TestDifferential compares Decide, Explain and cached answers with plain
// Casbin on random requests, for several models and policies. Any
// difference fails; rerun with -diff.seed to reproduce.
func TestDifferential(t *testing.T) {
	seed := *diffSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	// Plain Casbin compiles a regexp per rule it matches (and the
	// reference scans every rule to explain a denial), so the reference
	// costs milliseconds a request; the race detector multiplies that, so
	// `make test` (-race) runs a sixth of each case and CI runs the full
	// counts once more without -race (make test-differential, -diff.full).
	div := 1
	if (raceEnabled || testing.Short()) && !*diffFull {
		div = 6
	}
	cases := []struct {
		name     string
		p, m     string
		policy   func(t *testing.T) genPolicy
		requests int
	}{
		{"shipped", pWithPerm, stdMatcher, shippedPolicy, 4000},
		{"generated 200 rules", pWithPerm, stdMatcher, gen(genSpec{rules: 200, rulesPerRole: 20, resources: 15, denyPercent: 15, perm: true}), 1000},
		{"generated 2000 rules", pWithPerm, stdMatcher, gen(genSpec{rules: 2000, rulesPerRole: 60, resources: 60, denyPercent: 10, perm: true}), 400},
		{"heavy overlap and deny", pWithPerm, stdMatcher, gen(genSpec{rules: 150, rulesPerRole: 10, resources: 4, denyPercent: 35, perm: true}), 1500},
		{"no perm column", pNoPerm, stdMatcher, gen(genSpec{rules: 300, rulesPerRole: 30, resources: 20, denyPercent: 15}), 800},
		{"route part parenthesised and reordered", pWithPerm, "g(r.sub, p.sub) && (regexMatch(r.act, p.act) && keyMatch2(r.obj, p.obj))",
			gen(genSpec{rules: 300, rulesPerRole: 30, resources: 20, denyPercent: 15, perm: true}), 800},
		{"regexMatch paths", pWithPerm, "g(r.sub, p.sub) && regexMatch(r.obj, p.obj) && regexMatch(r.act, p.act)",
			gen(genSpec{rules: 300, rulesPerRole: 30, resources: 20, denyPercent: 15, perm: true, pathStyle: "regex"}), 800},
		{"keyMatch paths, not indexed", pWithPerm, "g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && regexMatch(r.act, p.act)",
			gen(genSpec{rules: 300, rulesPerRole: 30, resources: 20, denyPercent: 15, perm: true, pathStyle: "glob"}), 1500},
		{"subject used in the route part", pWithPerm, stdMatcher + ` && r.sub != "role:r2" && p.sub != "role:r3"`,
			gen(genSpec{rules: 300, rulesPerRole: 30, resources: 20, denyPercent: 15, perm: true}), 800},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			caseSeed := seed + uint64(ci)
			t.Parallel()
			gp := tc.policy(t)
			gp.fewIDs = true
			o := writePolicy(t, modelText(tc.p, allowNoDeny, tc.m), gp.csv)
			o.CacheEntries = 512 // small, so that evictions happen too
			e, err := Open(o)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			ref := newReference(t, o, tc.p, tc.m, tc.p == pWithPerm)
			rng := rand.New(rand.NewPCG(caseSeed, 1))
			var recent [][4]any // requests to ask again, to hit the cache
			fails, allowed := 0, 0
			n := tc.requests * *diffScale / div
			for i := 0; i < n && fails < 5; i++ {
				sub, roles, method, path := gp.genRequest(rng)
				if len(recent) > 0 && rng.IntN(3) == 0 {
					r := recent[rng.IntN(len(recent))]
					sub, roles, method, path = r[0].(string), r[1].([]string), r[2].(string), r[3].(string)
				} else if len(recent) < 200 {
					recent = append(recent, [4]any{sub, roles, method, path})
				}
				want, werr := ref.decide(sub, roles, method, path)
				got, gerr := e.Decide(sub, roles, method, path)
				again, aerr := e.Explain(sub, roles, method, path)
				all, allErr := e.DecideAll(sub, roles, []string{method}, []string{path})
				if (werr != nil) != (gerr != nil) || !sameDecision(got, want) || aerr != nil || !sameDecision(again, want) ||
					allErr != nil || !sameDecision(all.Decision, want) || all.Method != method || all.Path != path {
					fails++
					t.Errorf("seed %d (-diff.seed=%d), request %d: Decide(%q, %q, %q, %q)\n got    %+v, %v\n again  %+v, %v\n all    %+v, %v\n casbin %+v, %v",
						caseSeed, seed, i, sub, roles, method, path, got, gerr, again, aerr, all, allErr, want, werr)
				}
				if want.Allow {
					allowed++
				}
			}
			// The cases only test something if both answers are common.
			if allowed < n/20 || allowed > n-n/20 {
				t.Errorf("%d of %d requests allowed; the generator should give both answers often", allowed, n)
			}
			t.Logf("%d requests, %d allowed, %d rules", n, allowed, e.Rules())
		})
	}
}

func gen(s genSpec) func(*testing.T) genPolicy {
	return func(*testing.T) genPolicy { return generatePolicy(uint64(s.rules)*31+uint64(s.resources), s) }
}
