package policy

import (
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

// ruleKey identifies a rule as Casbin does when it drops a duplicate: two
// rules of one type are the same when their fields joined with commas are.
// Rules of one type have the same number of fields, so when no field holds a
// comma the fields themselves are the key; the rare rule with a comma in a
// field is keyed by the joined text, which no comma-free key can equal (its
// first field has no comma).
type ruleKey [5]string

func keyOf(fields []string) ruleKey {
	var k ruleKey
	if len(fields) > len(k) {
		return ruleKey{strings.Join(fields, ",")}
	}
	for i, f := range fields {
		if strings.IndexByte(f, ',') >= 0 {
			return ruleKey{strings.Join(fields, ",")}
		}
		k[i] = f
	}
	return k
}

// splitRules drops duplicate rules as Casbin does (the first one stays) and
// returns the p rules and the g rules in file order, with the set of p rules
// for the next build, and fresh: the p rules that known (the previous
// policy's set under the same model; nil for none) does not hold.
func splitRules(rules []rule, known map[ruleKey]struct{}) (policies, links [][]string, set map[ruleKey]struct{}, fresh []rule) {
	policies = make([][]string, 0, len(rules))
	set = make(map[ruleKey]struct{}, len(rules))
	var seenLinks map[ruleKey]struct{}
	for i, r := range rules {
		yield(i)
		k := keyOf(r.fields)
		if r.ptype == "g" {
			if seenLinks == nil {
				seenLinks = map[ruleKey]struct{}{}
			}
			if _, dup := seenLinks[k]; !dup {
				seenLinks[k] = struct{}{}
				links = append(links, r.fields)
			}
			continue
		}
		if _, dup := set[k]; dup {
			continue
		}
		set[k] = struct{}{}
		policies = append(policies, r.fields)
		if _, old := known[k]; !old {
			fresh = append(fresh, r)
		}
	}
	return policies, links, set, fresh
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
