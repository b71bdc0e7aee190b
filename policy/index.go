package policy

import (
	"regexp"
	"slices"
	"strings"
)

// ruleIndex finds, for a request, the p rules that could possibly match it,
// so that Casbin evaluates those instead of every rule. It only ever leaves
// out rules that cannot match, and keeps file order, so Casbin's answer on
// the candidates is its answer on the whole policy (see doc.go).
//
// Two facts make a rule a candidate for subject X and path P:
//   - g(X, p.sub) can hold, that is p.sub is X or a role X reaches through
//     g rules (reach). The model check guarantees that the matcher is
//     "g(r.sub, p.sub) && rest" with nothing binding more loosely.
//   - when rest has a top-level conjunct keyMatch2(r.obj, p.col) or
//     regexMatch(r.obj, p.col), P starts with the literal prefix of the
//     rule's anchored expression. Rules are grouped by that prefix; without
//     such a conjunct every rule has the prefix "".
type ruleIndex struct {
	rules   [][]string             // p rules in file order, duplicates removed
	lengths []int                  // distinct lengths of the prefixes in nodes, ascending
	nodes   map[string]*prefixNode // literal prefix -> rules with it
	reach   map[string][]string    // subject -> the rule subjects g(subject, them) may hold for
}

type prefixNode struct {
	all   []int32            // indices into rules, ascending
	perm  []int32            // those of allow rules naming a permission
	bySub map[string][]int32 // the same by p.sub
}

// routeConjunct matches a matcher term that must hold for any rule to match.
var routeConjunct = regexp.MustCompile(`^(keyMatch2|regexMatch)\(\s*r\.obj\s*,\s*p\.(\w+)\s*\)$`)

// routeColumn finds a conjunct of the route part that ties r.obj to a p
// column, and returns the function and the column; col is -1 when there is
// none.
func routeColumn(spec *modelSpec) (fn string, col int) {
	pCols := tokens(spec.values["p"])
	for _, term := range conjuncts(spec.routeExpr) {
		if m := routeConjunct.FindStringSubmatch(term); m != nil {
			if col := indexOf(pCols, m[2]); col >= 0 {
				return m[1], col
			}
		}
	}
	return "", -1
}

// conjuncts splits expr into the terms of its top-level && chain, looking
// into parentheses that wrap a whole term. A term that is not itself a
// conjunction comes back whole.
func conjuncts(expr string) []string {
	expr = strings.TrimSpace(expr)
	for wrapped(expr) {
		expr = strings.TrimSpace(expr[1 : len(expr)-1])
	}
	if looseOperator(expr) != "" {
		return []string{expr}
	}
	parts := splitTopLevel(expr, "&&")
	if len(parts) == 1 {
		return parts
	}
	var out []string
	for _, p := range parts {
		out = append(out, conjuncts(p)...)
	}
	return out
}

// wrapped reports whether expr is one parenthesised group.
func wrapped(expr string) bool {
	if len(expr) < 2 || expr[0] != '(' || expr[len(expr)-1] != ')' {
		return false
	}
	closedEarly := false
	depth := walkTopLevel(expr, func(i, depth int) int {
		if expr[i] == ')' && depth == 0 && i != len(expr)-1 {
			closedEarly = true
			return -1
		}
		return 0
	})
	return !closedEarly && depth == 0
}

// splitTopLevel splits expr at sep outside parentheses and quotes.
func splitTopLevel(expr, sep string) []string {
	var parts []string
	start := 0
	walkTopLevel(expr, func(i, depth int) int {
		if depth == 0 && strings.HasPrefix(expr[i:], sep) {
			parts = append(parts, strings.TrimSpace(expr[start:i]))
			start = i + len(sep)
			return len(sep) - 1
		}
		return 0
	})
	return append(parts, strings.TrimSpace(expr[start:]))
}

// walkTopLevel calls fn for each byte of expr outside quoted strings, with
// the parenthesis depth there (a '(' already counted, a ')' already
// subtracted), and returns the depth at the end. fn returns how many bytes
// to skip after this one, or -1 to stop.
func walkTopLevel(expr string, fn func(i, depth int) int) int {
	depth := 0
	var quote byte
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		case c == '"' || c == '\'' || c == '`':
			quote = c
			continue
		case c == '(':
			depth++
		case c == ')':
			depth--
		}
		skip := fn(i, depth)
		if skip < 0 {
			break
		}
		i += skip
	}
	return depth
}

// buildIndex indexes policies (p rules, file order) and links (g rules).
func buildIndex(spec *modelSpec, policies, links [][]string) *ruleIndex {
	ix := &ruleIndex{rules: policies, nodes: map[string]*prefixNode{}, reach: map[string][]string{}}
	fn, col := routeColumn(spec)
	prefixes := map[string]string{} // pattern -> prefix, patterns repeat a lot
	lengths := map[int]bool{}
	subjects := map[string]bool{}
	for i, p := range policies {
		yield(i)
		prefix := ""
		if col >= 0 {
			v := p[col]
			var ok bool
			if prefix, ok = prefixes[v]; !ok {
				expr := v
				if fn == "keyMatch2" {
					expr = keyMatch2Expr(v)
				}
				prefix = literalPrefix(expr)
				prefixes[v] = prefix
			}
		}
		n := ix.nodes[prefix]
		if n == nil {
			n = &prefixNode{bySub: map[string][]int32{}}
			ix.nodes[prefix] = n
			lengths[len(prefix)] = true
		}
		n.all = append(n.all, int32(i))
		if spec.hasPerm && p[colEft] == "allow" && p[colPerm] != "" {
			n.perm = append(n.perm, int32(i))
		}
		sub := p[colSub]
		n.bySub[sub] = append(n.bySub[sub], int32(i))
		subjects[sub] = true
	}
	for l := range lengths {
		ix.lengths = append(ix.lengths, l)
	}
	slices.Sort(ix.lengths)
	ix.buildReach(subjects, links)
	return ix
}

// buildReach records, for every subject that has rules or appears in a g
// rule, the rule subjects it reaches through any number of g links
// (itself included). Casbin's role manager stops at its maximum depth, so
// this is a superset of what g() holds for, which is all the index needs:
// Casbin still evaluates g on every candidate.
func (ix *ruleIndex) buildReach(subjects map[string]bool, links [][]string) {
	roles := map[string][]string{} // member -> roles it is granted directly
	names := map[string]bool{}
	for s := range subjects {
		names[s] = true
	}
	for _, l := range links {
		roles[l[0]] = append(roles[l[0]], l[1])
		names[l[0]] = true
	}
	for name := range names {
		seen := map[string]bool{name: true}
		queue := []string{name}
		var out []string
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			if subjects[cur] {
				out = append(out, cur)
			}
			for _, r := range roles[cur] {
				if !seen[r] {
					seen[r] = true
					queue = append(queue, r)
				}
			}
		}
		if len(out) > 0 {
			ix.reach[name] = out
		}
	}
}

// subjectRules returns the rules that may match sub on path, in file order.
func (ix *ruleIndex) subjectRules(sub, path string) [][]string {
	subs := ix.reach[sub]
	if len(subs) == 0 {
		return nil
	}
	var buf [16][]int32
	lists := buf[:0]
	for _, l := range ix.lengths {
		if l > len(path) {
			break
		}
		n := ix.nodes[path[:l]]
		if n == nil {
			continue
		}
		for _, s := range subs {
			if list := n.bySub[s]; len(list) > 0 {
				lists = append(lists, list)
			}
		}
	}
	return ix.merge(lists)
}

// routeRules returns the rules, of any subject, that may cover path: all of
// them, or only allow rules naming a permission.
func (ix *ruleIndex) routeRules(path string, withPerm bool) [][]string {
	var buf [16][]int32
	lists := buf[:0]
	for _, l := range ix.lengths {
		if l > len(path) {
			break
		}
		n := ix.nodes[path[:l]]
		if n == nil {
			continue
		}
		list := n.all
		if withPerm {
			list = n.perm
		}
		if len(list) > 0 {
			lists = append(lists, list)
		}
	}
	return ix.merge(lists)
}

// merge returns the rules of sorted, disjoint index lists in file order.
func (ix *ruleIndex) merge(lists [][]int32) [][]string {
	switch len(lists) {
	case 0:
		return nil
	case 1:
		out := make([][]string, len(lists[0]))
		for i, j := range lists[0] {
			out[i] = ix.rules[j]
		}
		return out
	}
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	idx := make([]int32, 0, n)
	for _, l := range lists {
		idx = append(idx, l...)
	}
	slices.Sort(idx)
	out := make([][]string, n)
	for i, j := range idx {
		out[i] = ix.rules[j]
	}
	return out
}
