package policy

import (
	"runtime"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/rbac"
)

// subsetEnforcers run Casbin's own Enforce over a subset of the policy's p
// rules: the candidates the index found for one request. Each enforcer has a
// private model whose p rules are set to the subset for one call, so they
// are pooled rather than shared; the role manager, which only ever answers
// questions once built, is the policy's one.
type subsetEnforcers struct {
	text string           // the model, matcher rewritten to the cached functions
	rm   rbac.RoleManager // nil when the model has no g
	pt   *patterns        // the policy's compiled patterns
	free chan *casbin.Enforcer
}

func newSubsetEnforcers(text string, rm rbac.RoleManager, pt *patterns) (*subsetEnforcers, error) {
	s := &subsetEnforcers{text: text, rm: rm, pt: pt, free: make(chan *casbin.Enforcer, 4*runtime.GOMAXPROCS(0))}
	e, err := s.newEnforcer() // also checks that the model builds
	if err != nil {
		return nil, err
	}
	s.put(e)
	return s, nil
}

func (s *subsetEnforcers) newEnforcer() (*casbin.Enforcer, error) {
	m, err := model.NewModelFromString(s.text)
	if err != nil {
		return nil, err
	}
	e, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, err
	}
	if s.rm != nil {
		e.SetRoleManager(s.rm)
		m["g"]["g"].RM = s.rm // Enforce takes g's role manager from the model
	}
	for name, fn := range s.pt.functions() {
		e.AddFunction(name, fn)
	}
	return e, nil
}

func (s *subsetEnforcers) get() (*casbin.Enforcer, error) {
	select {
	case e := <-s.free:
		return e, nil
	default:
		return s.newEnforcer()
	}
}

func (s *subsetEnforcers) put(e *casbin.Enforcer) {
	select {
	case s.free <- e:
	default:
	}
}

// enforceEx is Casbin's EnforceEx(sub, obj, act) with rules as the whole
// policy. rules must be non-empty: Casbin evaluates the matcher once without
// a rule when the policy is empty, which the full policy never does.
func (s *subsetEnforcers) enforceEx(rules [][]string, sub, obj, act string) (bool, []string, error) {
	e, err := s.get()
	if err != nil {
		return false, nil, err
	}
	a := e.GetModel()["p"]["p"]
	a.Policy = rules
	ok, rule, err := e.EnforceEx(sub, obj, act)
	a.Policy = nil
	s.put(e)
	return ok, rule, err
}
