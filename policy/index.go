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
	rules    [][]string          // p rules in file order, duplicates removed
	lengths  []int               // distinct lengths of the prefixes in nodes, ascending
	nodes    map[string]int32    // literal prefix -> its node in nodeList
	nodeList []node              // the rules with each prefix
	subjects map[string]int32    // p.sub -> its number in bySub's keys
	bySub    map[uint64]int32    // node<<32 | subject -> its span in lists
	lists    []span              // the rules of one prefix and one subject
	arena    []int32             // the spans' indices into rules, each span ascending
	reach    map[string][]string // subject -> the rule subjects g(subject, them) may hold for
}

type node struct {
	all  span // the rules with the prefix
	perm span // those of them that allow and name a permission
}

// span is arena[off:end].
type span struct{ off, end int32 }

func (ix *ruleIndex) list(s span) []int32 { return ix.arena[s.off:s.end:s.end] }

// routeConjunct matches a matcher term that must hold for any rule to match.
var routeConjunct = regexp.MustCompile(`^(keyMatch2|regexMatch)\(\s*r\.obj\s*,\s*p\.(\w+)\s*\)$`)

// routeColumn finds a conjunct of the route part that ties r.obj to a p
// column, and returns the function and the column; col is -1 when there is
// none.
func routeColumn(spec *modelSpec) (fn string, col int) {
	pCols := tokens(spec.values["p"])
	for _, term := range conjuncts(spec.routeExpr) {
		if m := routeConjunct.FindStringSubmatch(term); m != nil {
			if col := slices.Index(pCols, m[2]); col >= 0 {
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

// buildIndex indexes policies (p rules, file order) and links (g rules),
// taking the prefixes of the patterns from pt. prev is the index in force,
// or nil: its reach table is reused when linksSame (the g rules are prev's)
// and the rule subjects are the same. The lists are spans of one array: the
// index of a large policy is a few allocations.
func buildIndex(spec *modelSpec, policies, links [][]string, pt *patterns, prev *ruleIndex, linksSame bool) *ruleIndex {
	fn, col := routeColumn(spec)
	ix := &ruleIndex{rules: policies}
	if prev != nil {
		ix.nodes = make(map[string]int32, len(prev.nodes))
		ix.subjects = make(map[string]int32, len(prev.subjects))
		ix.bySub = make(map[uint64]int32, len(prev.bySub))
	} else {
		ix.nodes, ix.subjects, ix.bySub = map[string]int32{}, map[string]int32{}, map[uint64]int32{}
	}
	table, expr := pt.regex, func(v string) string { return v }
	if fn == "keyMatch2" {
		table, expr = pt.keyMatch2, keyMatch2Expr
	}
	// First pass: each rule's node and list, and their sizes (in end).
	type slot struct{ node, list int32 }
	slots := make([]slot, len(policies))
	var seenLen []bool // by prefix length
	if prev != nil {
		ix.nodeList = make([]node, 0, len(prev.nodeList))
		ix.lists = make([]span, 0, len(prev.lists))
	}
	perms := 0
	for i, p := range policies {
		yield(i)
		prefix := ""
		if col >= 0 {
			if pat, ok := table[p[col]]; ok {
				prefix = pat.prefix
			} else { // compilePatterns could not compile it
				prefix = literalPrefix(expr(p[col]))
			}
		}
		var s slot
		var ok bool
		if s.node, ok = ix.nodes[prefix]; !ok {
			s.node = int32(len(ix.nodeList))
			ix.nodes[prefix] = s.node
			ix.nodeList = append(ix.nodeList, node{})
			if len(prefix) >= len(seenLen) {
				seenLen = append(seenLen, make([]bool, len(prefix)+1-len(seenLen))...)
			}
			seenLen[len(prefix)] = true
		}
		n := &ix.nodeList[s.node]
		n.all.end++
		if spec.hasPerm && p[colEft] == "allow" && p[colPerm] != "" {
			n.perm.end++
			perms++
		}
		sub, ok := ix.subjects[p[colSub]]
		if !ok {
			sub = int32(len(ix.subjects))
			ix.subjects[p[colSub]] = sub
		}
		k := uint64(s.node)<<32 | uint64(sub)
		if s.list, ok = ix.bySub[k]; !ok {
			s.list = int32(len(ix.lists))
			ix.bySub[k] = s.list
			ix.lists = append(ix.lists, span{})
		}
		ix.lists[s.list].end++
		slots[i] = s
	}
	for l, seen := range seenLen {
		if seen {
			ix.lengths = append(ix.lengths, l)
		}
	}
	// Second pass: place the spans in the arena and fill them in file
	// order, end counting up from off.
	ix.arena = make([]int32, 2*len(policies)+perms)
	var off int32
	place := func(s *span) {
		s.off, s.end, off = off, off, off+s.end
	}
	for i := range ix.nodeList {
		place(&ix.nodeList[i].all)
		place(&ix.nodeList[i].perm)
	}
	for i := range ix.lists {
		place(&ix.lists[i])
	}
	add := func(s *span, i int) {
		ix.arena[s.end] = int32(i)
		s.end++
	}
	for i, p := range policies {
		s := slots[i]
		n := &ix.nodeList[s.node]
		add(&n.all, i)
		if spec.hasPerm && p[colEft] == "allow" && p[colPerm] != "" {
			add(&n.perm, i)
		}
		add(&ix.lists[s.list], i)
	}
	if prev != nil && linksSame && prev.hasSubjects(ix.subjects) {
		ix.reach = prev.reach
	} else {
		ix.buildReach(links)
	}
	return ix
}

// hasSubjects reports whether subjects are exactly the rule subjects of ix.
// Each of those reaches itself first, and nothing else does (buildReach).
func (ix *ruleIndex) hasSubjects(subjects map[string]int32) bool {
	if len(subjects) != len(ix.subjects) {
		return false
	}
	for s := range subjects {
		if r := ix.reach[s]; len(r) == 0 || r[0] != s {
			return false
		}
	}
	return true
}

// buildReach records, for every subject that has rules or appears in a g
// rule, the rule subjects it reaches through any number of g links
// (itself included, first). Casbin's role manager stops at its maximum
// depth, so this is a superset of what g() holds for, which is all the index
// needs: Casbin still evaluates g on every candidate. The table holds copies
// of the names: a later policy may keep it (buildIndex), and should not
// keep this policy's file text with it.
func (ix *ruleIndex) buildReach(links [][]string) {
	subjects := ix.subjects
	names := make(map[string]string, len(subjects)) // name -> its copy
	var order []string
	var b strings.Builder
	add := func(name string) {
		if _, ok := names[name]; !ok {
			names[name] = ""
			order = append(order, name)
			b.WriteString(name)
		}
	}
	for s := range subjects {
		add(s)
	}
	roles := map[string][]string{} // member -> roles it is granted directly
	for _, l := range links {
		add(l[0])
		roles[l[0]] = append(roles[l[0]], l[1])
	}
	own, off := b.String(), 0
	for _, name := range order {
		names[name] = own[off : off+len(name)]
		off += len(name)
	}
	ix.reach = make(map[string][]string, len(names))
	buf := make([]string, 0, len(names)) // the lists, cut from one growing array
	seen := map[string]bool{}
	var queue []string
	for name, copied := range names {
		clear(seen)
		seen[name] = true
		queue = append(queue[:0], name)
		start := len(buf)
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			if _, ok := subjects[cur]; ok {
				buf = append(buf, names[cur])
			}
			for _, r := range roles[cur] {
				if !seen[r] {
					seen[r] = true
					queue = append(queue, r)
				}
			}
		}
		if len(buf) > start {
			ix.reach[copied] = buf[start:len(buf):len(buf)]
		}
	}
}

// subjectRules returns the rules that may match sub on path, in file order.
func (ix *ruleIndex) subjectRules(sub, path string) [][]string {
	subs := ix.reach[sub]
	if len(subs) == 0 {
		return nil
	}
	var idBuf [16]uint64
	ids := idBuf[:0]
	for _, s := range subs {
		if id, ok := ix.subjects[s]; ok {
			ids = append(ids, uint64(id))
		}
	}
	var buf [16][]int32
	lists := buf[:0]
	for _, l := range ix.lengths {
		if l > len(path) {
			break
		}
		n, ok := ix.nodes[path[:l]]
		if !ok {
			continue
		}
		for _, id := range ids {
			if l, ok := ix.bySub[uint64(n)<<32|id]; ok {
				lists = append(lists, ix.list(ix.lists[l]))
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
		id, ok := ix.nodes[path[:l]]
		if !ok {
			continue
		}
		n := &ix.nodeList[id]
		list := ix.list(n.all)
		if withPerm {
			list = ix.list(n.perm)
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
