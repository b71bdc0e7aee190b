package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/govaluate"
)

// sources is the raw content of the files one load reads.
type sources struct {
	model, rules, tests []byte
	sum                 [32]byte // sha256(model file + policy file)
}

// readSources reads the files named in opts. Its digest identifies the
// content (all three files) so the watcher can skip reloads that would change
// nothing. Each file is hashed once: the digest covers src.sum.
func readSources(opts *Options) (sources, [32]byte, error) {
	var src sources
	var err error
	if src.model, err = os.ReadFile(opts.ModelPath); err != nil {
		return src, [32]byte{}, fileErr(opts.ModelPath, 0, "cannot read: %v", err)
	}
	if src.rules, err = os.ReadFile(opts.RulesPath); err != nil {
		return src, [32]byte{}, fileErr(opts.RulesPath, 0, "cannot read: %v", err)
	}
	if opts.TestsPath != "" {
		if src.tests, err = os.ReadFile(opts.TestsPath); err != nil {
			return src, [32]byte{}, fileErr(opts.TestsPath, 0, "cannot read: %v", err)
		}
	}
	h := sha256.New()
	h.Write(src.model)
	h.Write(src.rules)
	h.Sum(src.sum[:0])
	h.Reset()
	fmt.Fprintf(h, "%d\n%d\n%x\n%d\n", len(src.model), len(src.rules), src.sum, len(src.tests))
	h.Write(src.tests)
	var digest [32]byte
	h.Sum(digest[:0])
	return src, digest, nil
}

// state is one loaded, validated policy. It is never modified after build
// returns, so any number of goroutines may decide with it while a reload
// builds the next one, which may share its read-only parts (reuse.go).
type state struct {
	enf     *casbin.Enforcer // the model with the g rules only; owns the role manager
	ix      *ruleIndex       // which rules may match a request
	decider *subsetEnforcers // the model as written, on the index's candidates: decides
	routes  *subsetEnforcers // route half of the matcher, allow-override: explains denials
	perms   *subsetEnforcers // as routes, restricted to rules naming a permission; nil without a perm column
	cache   *decisionCache   // nil when caching is off
	pt      *patterns        // compiled patterns, reused by the next build
	// modelSum, known and roleLinks let the next build skip the work that
	// depends only on what did not change (reuse.go).
	modelSum  [32]byte
	known     *ruleSet   // the p rules, in file order
	roleLinks [][]string // the g rules, in file order

	gen    uint64   // generation, set by the Engine when it installs the state
	hash   string   // first 12 hex digits of sha256(model file + policy file)
	digest [32]byte // of all files read, for change detection
	tests  int      // known answers that passed
}

func (s *state) rules() int { return len(s.known.rules) + len(s.roleLinks) }

// build parses, builds and validates a complete candidate state. prev is
// the policy in force, for the MaxRuleDrop check and for the parts of it
// the candidate can reuse; nil at start-up.
func build(opts *Options, src sources, digest [32]byte, prev *state) (*state, error) {
	spec, m, err := parseModel(opts.ModelPath, src.model)
	if err != nil {
		return nil, err
	}
	rules, err := parseRules(opts.RulesPath, src.rules, spec)
	if err != nil {
		return nil, err
	}
	var answers []knownAnswer
	if opts.TestsPath != "" {
		if answers, err = parseKnownAnswers(opts.TestsPath, src.tests); err != nil {
			return nil, err
		}
	}
	st := &state{hash: hex.EncodeToString(src.sum[:])[:12], digest: digest, modelSum: sha256.Sum256(src.model)}

	// same is the policy in force when it was built from the same model
	// file: a rule it held passed every check this build would make.
	var same *state
	if prev != nil && prev.modelSum == st.modelSum {
		same = prev
	}
	var known *ruleSet
	if same != nil {
		known = same.known
	}
	// fresh: the p rules to check (all of them at start-up or after a model
	// change), in file order.
	set, links, fresh := splitRules(rules, known, maphash.MakeSeed())
	policies := set.rules
	st.known, st.roleLinks = set, links
	if len(policies) == 0 {
		return nil, fileErr(opts.RulesPath, 0, "no p rules: an empty policy would deny every request")
	}
	if err := checkDrop(opts, prev, st); err != nil {
		return nil, err
	}
	var prevPT *patterns
	var prevIx *ruleIndex
	if prev != nil {
		prevPT, prevIx = prev.pt, prev.ix
	}
	pt := compilePatterns(spec, policies, prevPT)
	st.pt = pt
	if err := checkPatterns(opts, spec, fresh, pt); err != nil {
		return nil, err
	}
	if len(fresh) > 0 {
		if err := trialEnforce(opts, spec, fresh, pt); err != nil {
			return nil, err
		}
	}

	linksSame := prev != nil && sameRules(prev.roleLinks, links)
	if same != nil && linksSame {
		st.enf = same.enf // the role manager is only read once built
	} else if st.enf, err = roleEnforcer(opts, m, links); err != nil {
		return nil, err
	}
	st.ix = buildIndex(spec, policies, links, pt, prevIx, linksSame)
	if st.decider, err = newSubsetEnforcers(joinModel(spec, rewriteCalls(spec.values["m"])), st.enf.GetRoleManager(), pt); err != nil {
		return nil, fileErr(opts.ModelPath, 0, "casbin: %v", err)
	}
	trial := fieldsOf(fresh)
	if st.routes, err = routeEnforcers(spec, spec.routeExpr, policies, trial, pt); err != nil {
		return nil, fileErr(opts.ModelPath, spec.lines["m"], "the matcher after the role check: %v", err)
	}
	if spec.hasPerm {
		if st.perms, err = routeEnforcers(spec, "("+spec.routeExpr+`) && p.perm != ""`, policies, trial, pt); err != nil {
			return nil, fileErr(opts.ModelPath, spec.lines["m"], "the matcher after the role check: %v", err)
		}
	}
	st.cache = newDecisionCache(opts.CacheEntries)

	if err := runKnownAnswers(opts.TestsPath, st, answers); err != nil {
		return nil, err
	}
	st.tests = len(answers)
	return st, nil
}

// roleEnforcer is a Casbin enforcer of model m with the g rules links, for
// its role manager. The p rules stay out of it: deciding goes through the
// subset enforcers, which only take the role manager from it.
func roleEnforcer(opts *Options, m model.Model, links [][]string) (*casbin.Enforcer, error) {
	for _, l := range links {
		// Copies: a later policy may keep this role manager, and should not
		// keep this policy's file text with it.
		l = []string{strings.Clone(l[0]), strings.Clone(l[1])}
		if err := m.AddPolicy("g", "g", l); err != nil {
			return nil, fileErr(opts.RulesPath, 0, "%v", err)
		}
	}
	enf, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, fileErr(opts.ModelPath, 0, "casbin: %v", err)
	}
	if err := enf.BuildRoleLinks(); err != nil {
		return nil, fileErr(opts.RulesPath, 0, "building role links: %v", err)
	}
	return enf, nil
}

// checkDrop refuses a candidate that lost too many rules at once.
func checkDrop(opts *Options, prev, st *state) error {
	if prev == nil || st.rules() >= prev.rules() {
		return nil
	}
	old := prev.rules()
	if drop := float64(old-st.rules()) / float64(old); drop > opts.MaxRuleDrop {
		return fileErr(opts.RulesPath, 0, "has %d rules, down from %d (a %.0f%% drop, more than the %.0f%% allowed); is the file truncated?",
			st.rules(), old, drop*100, opts.MaxRuleDrop*100)
	}
	return nil
}

// routeEnforcers are enforcers over the same p rules whose matcher is only
// the route part and whose effect is allow-override: their first match is
// the first allow rule that covers a path and method for anybody. A trial
// evaluation catches a route part that cannot be evaluated without the role
// check: over trial, the rules not checked under this model before (all of
// them at start-up), and only if that fails over every rule, as a build
// without a policy in force would.
func routeEnforcers(spec *modelSpec, matcher string, policies, trial [][]string, pt *patterns) (*subsetEnforcers, error) {
	text := fmt.Sprintf("[request_definition]\nr = %s\n[policy_definition]\np = %s\n[policy_effect]\ne = %s\n[matchers]\nm = %s\n",
		spec.values["r"], spec.values["p"], "some(where (p.eft == allow))", rewriteCalls(matcher))
	s, err := newSubsetEnforcers(text, nil, pt)
	if err != nil {
		return nil, err
	}
	if len(trial) == 0 {
		return s, nil
	}
	if _, _, err := s.enforceEx(trial, "", "/", "GET"); err == nil {
		return s, nil
	} else if len(trial) == len(policies) {
		return nil, fmt.Errorf("%s", firstLine(err))
	}
	if _, _, err := s.enforceEx(policies, "", "/", "GET"); err != nil {
		return nil, fmt.Errorf("%s", firstLine(err))
	}
	return s, nil
}

// patternCall finds calls like keyMatch2(r.obj, p.obj) in a matcher.
var patternCall = regexp.MustCompile(`\b([A-Za-z_][A-Za-z0-9_]*)\(\s*r\.(\w+)\s*,\s*p\.(\w+)\s*\)`)

// checkPatterns calls every Casbin function the matcher applies to a p
// column on every rule's value of that column. Casbin compiles those values
// into regular expressions only while enforcing, and a bad one would
// otherwise load fine and then fail every request that reaches it. Values
// that compiled into pt are fine and skipped.
func checkPatterns(opts *Options, spec *modelSpec, rules []rule, pt *patterns) error {
	fm := model.LoadFunctionMap()
	fns := fm.GetFunctions()
	pCols := tokens(spec.values["p"])
	for _, call := range patternCall.FindAllStringSubmatch(spec.values["m"], -1) {
		fn, ok := fns[call[1]]
		if !ok {
			continue
		}
		col := slices.Index(pCols, call[3])
		if col < 0 {
			return fileErr(opts.ModelPath, spec.lines["m"], "matcher uses p.%s, which p does not define", call[3])
		}
		var compiled map[string]pattern
		switch call[1] {
		case "keyMatch2":
			compiled = pt.keyMatch2
		case "regexMatch":
			compiled = pt.regex
		}
		checked := map[string]bool{} // patterns repeat a lot
		for i, r := range rules {
			yield(i)
			if r.ptype != "p" {
				continue
			}
			v := r.fields[col]
			if _, ok := compiled[v]; ok || checked[v] {
				continue
			}
			checked[v] = true
			if err := callSafely(fn, v, v); err != nil {
				return fileErr(opts.RulesPath, r.line, "%s %q is not a valid %s pattern: %s", call[3], v, call[1], firstLine(err))
			}
		}
	}
	return nil
}

// trialEnforce evaluates the full matcher once per p rule, alone, with the
// rule's own values as the request, to catch anything checkPatterns cannot
// see (type errors, functions applied differently). It uses the compiled
// patterns, as deciding will. To do it in one pass over the rules, the
// matcher reads the rule's columns where it would read the request's, and
// never matches, so that Casbin evaluates it on every rule; only when that
// fails does it go rule by rule, to name the line.
func trialEnforce(opts *Options, spec *modelSpec, rules []rule, pt *patterns) error {
	m, err := model.NewModelFromString(joinModel(spec, spec.values["m"]))
	if err != nil {
		return fileErr(opts.ModelPath, 0, "casbin cannot parse the model: %v", err)
	}
	fm := model.LoadFunctionMap()
	fns := fm.GetFunctions()
	fns["g"] = func(...any) (any, error) { return true, nil }
	if _, err := govaluate.NewEvaluableExpressionWithFunctions(m["m"]["m"].Value, fns); err != nil {
		return fileErr(opts.ModelPath, spec.lines["m"], "the matcher does not parse: %v", err)
	}
	matcher := rewriteCalls(spec.values["m"])
	fromRule := rewriteIdents(matcher, func(name string, _ bool) string {
		if col, ok := strings.CutPrefix(name, "r."); ok {
			return "p." + col
		}
		return name
	})
	batch, err := newSubsetEnforcers(joinModel(spec, "("+fromRule+`) && p.eft == "latch: never"`), nil, pt)
	if err != nil {
		return fileErr(opts.ModelPath, 0, "casbin: %v", err)
	}
	policies := fieldsOf(rules)
	// In chunks, yielding between them: one casbin call over every rule
	// would hold a CPU for the whole evaluation.
	var batchErr error
	for i := 0; i < len(policies) && batchErr == nil; i += trialChunk {
		_, _, batchErr = batch.enforceEx(policies[i:min(i+trialChunk, len(policies))], "", "", "")
		runtime.Gosched()
	}
	if batchErr == nil {
		return nil
	}
	single, err := newSubsetEnforcers(joinModel(spec, matcher), nil, pt)
	if err != nil {
		return fileErr(opts.ModelPath, 0, "casbin: %v", err)
	}
	for _, r := range rules {
		if r.ptype != "p" {
			continue
		}
		if _, _, err := single.enforceEx([][]string{r.fields}, r.fields[colSub], r.fields[colObj], r.fields[colAct]); err != nil {
			return fileErr(opts.RulesPath, r.line, "evaluating the matcher on this rule failed: %s", firstLine(err))
		}
	}
	return fileErr(opts.RulesPath, 0, "evaluating the matcher on the rules failed: %s", firstLine(batchErr))
}

// joinModel writes spec back as a model file, with matcher as m.
func joinModel(spec *modelSpec, matcher string) string {
	return fmt.Sprintf("[request_definition]\nr = %s\n[policy_definition]\np = %s\n[role_definition]\ng = %s\n[policy_effect]\ne = %s\n[matchers]\nm = %s\n",
		spec.values["r"], spec.values["p"], spec.values["g"], spec.values["e"], matcher)
}

func callSafely(fn func(...any) (any, error), args ...any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	_, err = fn(args...)
	return err
}

// firstLine drops the stack trace Casbin appends to errors from a panic.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// trialChunk is how many rules one trial evaluation call covers.
const trialChunk = 512

// yield lets other goroutines run every 256 iterations of a long build
// loop. A policy build is CPU-bound for up to hundreds of milliseconds; on a
// small machine, without yielding it holds a processor for whole 10ms
// preemption slices and requests queue behind it (the reload p99 in
// bench/RESULTS.md). Yielding keeps them moving at a negligible cost.
func yield(i int) {
	if i&255 == 255 {
		runtime.Gosched()
	}
}
