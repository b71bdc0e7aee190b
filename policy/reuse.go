package policy

import (
	"hash/maphash"
	"slices"
	"strings"
)

// A reload mostly keeps the policy in force: an operator edits a rule or
// two, or a ConfigMap is republished unchanged but for a comment. So that a
// reload costs what changed, and not what a start-up costs, build compares
// the new rules with the policy in force (prev) and keeps what depends only
// on unchanged input:
//
//   - rules prev held under the same model file are not trial-evaluated
//     again (trialEnforce, checkPatterns, the route enforcers' trial);
//   - compiled patterns and their literal prefixes are looked up by the
//     pattern's text (compilePatterns, buildIndex);
//   - unchanged g rules under the same model keep prev's role manager, and,
//     with the same rule subjects, prev's reach table (buildIndex).
//
// What is kept is read-only once built, so prev goes on deciding with it
// while the new state is built and after. Everything else (parsing, the
// index's lists in file order) is rebuilt, in a few allocations per policy.

// ruleSet is a set of rules of one type, which holds a rule once as
// Casbin does: two rules are the same when their fields joined with commas
// are. It maps the hash of that text to the first rule with it, so an entry
// is 12 bytes whatever the rule; the rare rule whose hash another rule
// already holds goes into other, by its text.
type ruleSet struct {
	seed  maphash.Seed
	rules [][]string       // the rules added, in order
	first map[uint64]int32 // hash -> index in rules
	other map[string]int32 // joined text -> index in rules, for hash collisions
}

func newRuleSet(seed maphash.Seed, size int) *ruleSet {
	return &ruleSet{seed: seed, rules: make([][]string, 0, size), first: make(map[uint64]int32, size)}
}

// hash is the hash of fields joined with commas.
func (rs *ruleSet) hash(fields []string) uint64 {
	var h maphash.Hash
	h.SetSeed(rs.seed)
	for i, f := range fields {
		if i > 0 {
			h.WriteByte(',')
		}
		h.WriteString(f)
	}
	return h.Sum64()
}

// find returns the index of the rule the same as fields, whose hash is h.
func (rs *ruleSet) find(h uint64, fields []string) (int32, bool) {
	i, ok := rs.first[h]
	if !ok {
		return 0, false
	}
	if sameRule(rs.rules[i], fields) {
		return i, true
	}
	i, ok = rs.other[strings.Join(fields, ",")]
	return i, ok
}

// add adds fields unless the set holds the same rule, and reports whether it
// did.
func (rs *ruleSet) add(fields []string) bool {
	return rs.addHashed(rs.hash(fields), fields)
}

func (rs *ruleSet) addHashed(h uint64, fields []string) bool {
	if _, dup := rs.find(h, fields); dup {
		return false
	}
	i := int32(len(rs.rules))
	rs.rules = append(rs.rules, fields)
	if _, taken := rs.first[h]; !taken {
		rs.first[h] = i
		return true
	}
	if rs.other == nil {
		rs.other = map[string]int32{}
	}
	rs.other[strings.Join(fields, ",")] = i
	return true
}

// sameRule reports whether a and b join to the same text.
func sameRule(a, b []string) bool {
	if slices.Equal(a, b) {
		return true
	}
	if len(a) == len(b) && !hasComma(a) && !hasComma(b) {
		return false
	}
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func hasComma(fields []string) bool {
	for _, f := range fields {
		if strings.IndexByte(f, ',') >= 0 {
			return true
		}
	}
	return false
}

// splitRules drops duplicate rules as Casbin does (the first one stays) and
// returns the p rules, in file order, as a set for the next build; the g
// rules in file order; and fresh: the p rules that known (the previous
// policy's set under the same model; nil for none) does not hold.
func splitRules(rules []rule, known *ruleSet, seed maphash.Seed) (policies *ruleSet, links [][]string, fresh []rule) {
	if known != nil {
		seed = known.seed // one hash per rule serves both sets
	}
	policies = newRuleSet(seed, len(rules))
	var linkSet *ruleSet
	for i, r := range rules {
		yield(i)
		if r.ptype == "g" {
			if linkSet == nil {
				linkSet = newRuleSet(seed, 0)
			}
			linkSet.add(r.fields)
			continue
		}
		h := policies.hash(r.fields)
		if !policies.addHashed(h, r.fields) {
			continue
		}
		if known == nil {
			fresh = append(fresh, r)
		} else if _, old := known.find(h, r.fields); !old {
			fresh = append(fresh, r)
		}
	}
	if linkSet != nil {
		links = linkSet.rules
	}
	return policies, links, fresh
}

// sameRules reports whether two rule lists hold the same rules in the same
// order.
func sameRules(a, b [][]string) bool {
	return slices.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

// fieldsOf returns the fields of rules.
func fieldsOf(rules []rule) [][]string {
	out := make([][]string, len(rules))
	for i, r := range rules {
		out[i] = r.fields
	}
	return out
}
