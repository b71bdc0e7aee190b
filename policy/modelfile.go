package policy

import (
	"regexp"
	"slices"
	"strings"

	"github.com/casbin/casbin/v2/constant"
	"github.com/casbin/casbin/v2/model"
)

// modelSpec is what latch needs to know about the model file beyond what
// Casbin parses itself: where each definition is, whether rules carry a
// permission column, and the route half of the matcher.
type modelSpec struct {
	lines     map[string]int    // definition key ("r", "p", ...) -> 1-based line
	values    map[string]string // definition key -> raw value as written
	hasPerm   bool              // p = sub, obj, act, eft, perm
	routeExpr string            // the matcher with its leading "g(r.sub, p.sub) &&" removed
}

// sectionKeys maps each model section to the one definition latch accepts in it.
var sectionKeys = map[string]string{
	"request_definition": "r",
	"policy_definition":  "p",
	"role_definition":    "g",
	"policy_effect":      "e",
	"matchers":           "m",
}

var matcherHead = regexp.MustCompile(`^\s*g\(\s*r\.sub\s*,\s*p\.sub\s*\)\s*&&\s*`)

// parseModel checks the model file's shape and builds the Casbin model. The
// checks are the assumptions Decide makes: one subject per request, an
// explicit eft column, deny-overrides effect, and a matcher that starts with
// the role check so the route half can be evaluated on its own.
func parseModel(path string, data []byte) (*modelSpec, model.Model, error) {
	spec := &modelSpec{lines: map[string]int{}, values: map[string]string{}}
	section := ""
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) { // Casbin's line continuation
			i++
			line = strings.TrimSpace(strings.TrimSuffix(line, `\`)) + " " + strings.TrimSpace(lines[i])
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, nil, fileErr(path, lineNo, "section header %q is missing its closing ]", line)
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			if _, ok := sectionKeys[section]; !ok {
				return nil, nil, fileErr(path, lineNo, "unknown section [%s]; latch uses request_definition, policy_definition, role_definition, policy_effect and matchers", section)
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, nil, fileErr(path, lineNo, "expected \"key = value\", got %q", line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if section == "" {
			return nil, nil, fileErr(path, lineNo, "definition %q is outside any [section]", key)
		}
		if want := sectionKeys[section]; key != want {
			return nil, nil, fileErr(path, lineNo, "unsupported definition %q in [%s]; latch uses exactly one, named %q", key, section, want)
		}
		if prev, dup := spec.lines[key]; dup {
			return nil, nil, fileErr(path, lineNo, "%q is defined again (first on line %d)", key, prev)
		}
		spec.lines[key], spec.values[key] = lineNo, value
	}
	for _, key := range []string{"r", "p", "g", "e", "m"} {
		if _, ok := spec.lines[key]; !ok {
			return nil, nil, fileErr(path, 0, "missing definition %q", key)
		}
	}
	if err := spec.check(path); err != nil {
		return nil, nil, err
	}
	m, err := model.NewModelFromString(string(data))
	if err != nil {
		return nil, nil, fileErr(path, 0, "casbin cannot parse the model: %v", err)
	}
	return spec, m, nil
}

func (s *modelSpec) check(path string) error {
	if got := tokens(s.values["r"]); !slices.Equal(got, []string{"sub", "obj", "act"}) {
		return fileErr(path, s.lines["r"], "r must be \"sub, obj, act\", got %q", s.values["r"])
	}
	switch got := tokens(s.values["p"]); {
	case slices.Equal(got, []string{"sub", "obj", "act", "eft"}):
	case slices.Equal(got, []string{"sub", "obj", "act", "eft", "perm"}):
		s.hasPerm = true
	default:
		return fileErr(path, s.lines["p"], "p must be \"sub, obj, act, eft\" or \"sub, obj, act, eft, perm\", got %q", s.values["p"])
	}
	if got := tokens(s.values["g"]); !slices.Equal(got, []string{"_", "_"}) {
		return fileErr(path, s.lines["g"], "g must be \"_, _\" (role domains are not supported), got %q", s.values["g"])
	}
	e := strings.Join(strings.Fields(strings.ReplaceAll(s.values["e"], "p.eft", "p_eft")), "")
	if e != strings.Join(strings.Fields(constant.AllowAndDenyEffect), "") {
		return fileErr(path, s.lines["e"], "e must be %q so that any deny rule overrides every allow rule, got %q",
			strings.ReplaceAll(constant.AllowAndDenyEffect, "p_eft", "p.eft"), s.values["e"])
	}
	m := s.values["m"]
	head := matcherHead.FindString(m)
	if head == "" {
		return fileErr(path, s.lines["m"], "m must start with \"g(r.sub, p.sub) &&\" (latch explains denials with the rest), got %q", m)
	}
	s.routeExpr = strings.TrimSpace(m[len(head):])
	if s.routeExpr == "" {
		return fileErr(path, s.lines["m"], "m has nothing after \"g(r.sub, p.sub) &&\"")
	}
	if op := looseOperator(s.routeExpr); op != "" {
		return fileErr(path, s.lines["m"], "m has a top-level %s after the role check, so part of it would match every subject; wrap the route part in parentheses", op)
	}
	return nil
}

func tokens(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// looseOperator returns the first operator in expr, outside parentheses and
// quotes, that binds more loosely than && in Casbin's expression language
// (|| and the ternary and null-coalescing ?), or "" when there is none. Only
// without one is "g(r.sub, p.sub) && rest" a conjunction of the role check
// and all of rest.
func looseOperator(expr string) string {
	op := ""
	walkTopLevel(expr, func(i, depth int) int {
		switch {
		case depth == 0 && expr[i] == '|' && i+1 < len(expr) && expr[i+1] == '|':
			op = "||"
		case depth == 0 && expr[i] == '?':
			op = "?"
		default:
			return 0
		}
		return -1
	})
	return op
}
