package policy

import (
	"slices"
	"strings"
)

// Roles returns the names of the roles the policy in force mentions, sorted
// and without the role: prefix: every role:<name> that is the subject of a
// p rule (allow or deny) or either side of a g rule. A caller's role that is
// not among them is matched by no rule, so it changes no decision; the
// command line uses this to warn about a misspelt role ("adminn").
func (e *Engine) Roles() []string {
	st := e.cur.Load()
	seen := map[string]bool{}
	add := func(subject string) {
		if name, ok := strings.CutPrefix(subject, RolePrefix); ok && name != "" {
			seen[name] = true
		}
	}
	for _, r := range st.known.rules {
		add(r[colSub])
	}
	for _, link := range st.roleLinks {
		for _, s := range link {
			add(s)
		}
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
