package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Decision is the outcome of one authorisation check.
type Decision struct {
	Allow bool
	// Rule is the deciding rule's columns after the type (sub, obj, act, eft
	// and perm when the model has it): the allow rule, or the deny rule that
	// overrode it. Nil when no rule matched any subject.
	Rule []string
	// Permission, on a denial, is the permission name of the first allow rule
	// (in file order) covering this path and method for any subject: what the
	// caller lacks, e.g. "ADMIN". "" when allowed or when no such rule names one.
	Permission string
	// Pattern, on a denial without a Permission, is "<act> <obj>" of the first
	// allow rule covering this path and method for any subject, for the
	// message. "" when allowed or when no rule covers the route at all.
	Pattern string
}

// Decide reports whether user sub, holding roles, may perform method on
// path. Roles are bare names ("admin"); Decide checks them as "role:admin".
// sub must not be empty or start with "role:".
//
// The request is allowed when at least one of the subjects (the user and
// each role) is allowed by a rule and none is denied by one. A denial is not
// an error: err is non-nil only when deciding itself failed, and then the
// Decision denies.
func (e *Engine) Decide(sub string, roles []string, method, path string) (Decision, error) {
	st := e.cur.Load()
	d, err := st.decideCached(sub, roles, method, path)
	e.count(st, d.Allow, err, method, path)
	return d, err
}

// Verdict is DecideAll's answer: the deciding Decision and the method and
// path it was about.
type Verdict struct {
	Decision
	// Method and Path are the pair the Decision answers: the first one
	// denied or failed, or the last one asked when every pair is allowed.
	// Both are "" only when there was nothing to decide.
	Method, Path string
}

// errNothing is DecideAll's error for empty lists.
var errNothing = errors.New("policy: no method or no path to decide")

// DecideAll decides a request that the upstream may read in several ways:
// user sub, holding roles, must be allowed every method in methods on every
// path in paths. It asks about each pair as Decide does, methods in the
// outer loop, both lists in order, and allows only if every pair is
// allowed; the first pair denied or failed decides, and the Verdict names
// it. Empty lists are an error (which denies).
//
// The proxy passes every method the upstream might run (the request's own
// and any method override) and every reading of the canonical path
// (proxy.Target.Readings: the path, its ASCII lower-case form, its Unicode
// reading), so that no reading a case-insensitive or Unicode-folding
// upstream might take is left undecided. Those lists are the proxy's to
// make (proxy.Resolve is the one canonical path); the rule that all of them
// must be allowed is this method's.
//
// One call is one decision in latch_authz_decisions_total, whatever the
// number of pairs, and every pair is decided by the same policy generation.
func (e *Engine) DecideAll(sub string, roles []string, methods, paths []string) (Verdict, error) {
	st := e.cur.Load()
	v, err := st.decideAll(sub, roles, methods, paths)
	e.count(st, v.Allow, err, v.Method, v.Path)
	return v, err
}

// count records one decision in the metrics, and logs it when it failed.
func (e *Engine) count(st *state, allow bool, err error, method, path string) {
	switch {
	case err != nil:
		e.m.errored.Inc()
		e.log.Error("policy decision failed; denying", "generation", st.gen, "method", method, "path", path, "err", err)
	case allow:
		e.m.allow.Inc()
	default:
		e.m.deny.Inc()
	}
}

// decideAll is DecideAll on one policy, through its decision cache. The
// Verdict's Rule is the caller's own.
func (s *state) decideAll(sub string, roles []string, methods, paths []string) (Verdict, error) {
	if len(methods) == 0 || len(paths) == 0 {
		return Verdict{}, errNothing
	}
	var v Verdict
	for _, m := range methods {
		for _, p := range paths {
			d, err := s.lookup(sub, roles, m, p)
			v = Verdict{Decision: d, Method: m, Path: p}
			if err != nil || !d.Allow {
				v.Rule = slices.Clone(v.Rule)
				return v, err
			}
		}
	}
	v.Rule = slices.Clone(v.Rule)
	return v, nil
}

// Explain is Decide without counting the decision in metrics: for tools and
// debugging. It always agrees with Decide on the same policy generation.
func (e *Engine) Explain(sub string, roles []string, method, path string) (Decision, error) {
	return e.cur.Load().decideCached(sub, roles, method, path)
}

// decideCached is decide through the state's decision cache. Every caller
// gets its own Rule slice.
func (s *state) decideCached(sub string, roles []string, method, path string) (Decision, error) {
	d, err := s.lookup(sub, roles, method, path)
	d.Rule = slices.Clone(d.Rule)
	return d, err
}

// lookup is decide through the state's decision cache. The Rule slice may
// be the cache's: callers clone it before it leaves the package.
func (s *state) lookup(sub string, roles []string, method, path string) (Decision, error) {
	if s.cache == nil {
		return s.decide(sub, roles, method, path)
	}
	var buf [256]byte
	key, ok := appendKey(buf[:0], sub, roles, method, path)
	if !ok {
		return s.decide(sub, roles, method, path)
	}
	d, h, hit := s.cache.get(key)
	if hit {
		return d, nil
	}
	d, err := s.decide(sub, roles, method, path)
	if err == nil {
		s.cache.put(h, key, d)
	}
	return d, err
}

// decide asks Casbin about each subject of the caller in turn.
func (s *state) decide(sub string, roles []string, method, path string) (Decision, error) {
	if sub == "" || strings.HasPrefix(sub, RolePrefix) {
		return Decision{}, fmt.Errorf("%w %q: want a non-empty user that does not start with %q", ErrSubject, sub, RolePrefix)
	}
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
		ok, rule, err := s.enforce(subject, path, method)
		if err != nil {
			return Decision{}, fmt.Errorf("policy: enforcing for %q: %s", subject, firstLine(err))
		}
		if ok {
			if !allowed {
				allowed, allowRule = true, rule
			}
			continue
		}
		if len(rule) > 0 { // the effect only names a rule on a refusal when a deny rule matched
			d := Decision{Rule: slices.Clone(rule)}
			s.explainDenial(&d, path, method)
			return d, nil
		}
	}
	if allowed {
		return Decision{Allow: true, Rule: slices.Clone(allowRule)}, nil
	}
	var d Decision
	s.explainDenial(&d, path, method)
	return d, nil
}

// enforce is Casbin's EnforceEx(subject, path, method) on the whole policy,
// computed on the rules the index says may match. With none, no rule
// matches, which Casbin answers with a refusal naming no rule.
func (s *state) enforce(subject, path, method string) (bool, []string, error) {
	rules := s.ix.subjectRules(subject, path)
	if len(rules) == 0 {
		return false, nil, nil
	}
	return s.decider.enforceEx(rules, subject, path, method)
}

// explainDenial fills Permission or Pattern. Failing here cannot change the
// decision, which is already a denial, so errors leave the fields empty.
func (s *state) explainDenial(d *Decision, path, method string) {
	if s.perms != nil {
		if rules := s.ix.routeRules(path, true); len(rules) > 0 {
			if ok, rule, err := s.perms.enforceEx(rules, "", path, method); err == nil && ok && len(rule) > colPerm {
				d.Permission = rule[colPerm]
				return
			}
		}
	}
	if rules := s.ix.routeRules(path, false); len(rules) > 0 {
		if ok, rule, err := s.routes.enforceEx(rules, "", path, method); err == nil && ok && len(rule) > colAct {
			d.Pattern = rule[colAct] + " " + rule[colObj]
		}
	}
}
