package policy

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/casbin/casbin/v2/util"
	"github.com/casbin/govaluate"
)

// Casbin's keyMatch2 and regexMatch compile a regular expression on every
// call. latch's own enforcers call these stand-ins instead: the same
// function of the same arguments, but with the expressions of the loaded
// policy's patterns compiled once. The matcher text is rewritten to call
// them (Casbin cannot replace a built-in function), and anything the table
// does not hold goes to Casbin's own function, errors and panics included.
const (
	cachedKeyMatch2  = "latchKeyMatch2"
	cachedRegexMatch = "latchRegexMatch"
)

// keyMatch2Param is util.KeyMatch2's own expression for a :name segment.
var keyMatch2Param = regexp.MustCompile(`:[^/]+`)

// keyMatch2Expr is the regular expression util.KeyMatch2 builds from a
// pattern, step for step.
func keyMatch2Expr(pattern string) string {
	pattern = strings.ReplaceAll(pattern, "/*", "/.*")
	pattern = keyMatch2Param.ReplaceAllString(pattern, "$1[^/]+$2")
	return "^" + pattern + "$"
}

// patterns holds the compiled expressions of one policy's patterns. It is
// built before the policy is installed and only read afterwards, so its size
// is fixed by the policy file, never by requests.
type patterns struct {
	keyMatch2 map[string]pattern // pattern as written -> keyMatch2Expr compiled
	regex     map[string]pattern // expression -> compiled
}

// pattern is one compiled expression and its literal prefix, for the index.
type pattern struct {
	kp     *keyPattern    // for the simple keyMatch2 patterns; nil for the others
	re     *regexp.Regexp // when kp is nil
	prefix string
}

func (p *pattern) match(key string) bool {
	if p.kp != nil {
		return p.kp.match(key)
	}
	return p.re.MatchString(key)
}

// compile compiles the expression e, or returns false when it does not
// compile.
func compile(e string, keyMatch2 bool) (pattern, bool) {
	if keyMatch2 {
		if kp, ok := parseKeyPattern(e); ok {
			return pattern{kp: &kp, prefix: kp.lits[0]}, true
		}
	}
	re, err := regexp.Compile(e)
	if err != nil {
		return pattern{}, false
	}
	return pattern{re: re, prefix: literalPrefix(e)}, true
}

// compilePatterns compiles the values of every p column the matcher passes
// as the pattern (second) argument of keyMatch2 or regexMatch. A value that
// does not compile is left out, so Casbin's function reports it.
func compilePatterns(spec *modelSpec, policies [][]string, prev *patterns) *patterns {
	if prev == nil {
		prev = &patterns{}
	}
	pt := &patterns{keyMatch2: make(map[string]pattern, len(prev.keyMatch2)), regex: make(map[string]pattern, len(prev.regex))}
	pCols := tokens(spec.values["p"])
	for _, call := range patternCall.FindAllStringSubmatch(spec.values["m"], -1) {
		var table, old map[string]pattern
		expr := func(v string) string { return v }
		switch call[1] {
		case "keyMatch2":
			table, old, expr = pt.keyMatch2, prev.keyMatch2, keyMatch2Expr
		case "regexMatch":
			table, old = pt.regex, prev.regex
		default:
			continue
		}
		col := slices.Index(pCols, call[3])
		if col < 0 {
			continue
		}
		for i, p := range policies {
			yield(i)
			v := p[col]
			if _, done := table[v]; done {
				continue
			}
			// A reload mostly keeps the patterns in force: reuse what the
			// policy in force compiled from the same text.
			if re, ok := old[v]; ok {
				table[v] = re
				continue
			}
			if p, ok := compile(expr(v), call[1] == "keyMatch2"); ok {
				table[v] = p
			}
		}
	}
	return pt
}

// functions returns the stand-ins, to add to an enforcer whose matcher went
// through rewriteCalls.
func (pt *patterns) functions() map[string]govaluate.ExpressionFunction {
	return map[string]govaluate.ExpressionFunction{
		cachedKeyMatch2: func(args ...any) (any, error) {
			if p, ok := lookup(pt.keyMatch2, args); ok {
				return p.match(args[0].(string)), nil
			}
			return util.KeyMatch2Func(args...)
		},
		cachedRegexMatch: func(args ...any) (any, error) {
			if p, ok := lookup(pt.regex, args); ok {
				return p.match(args[0].(string)), nil
			}
			return util.RegexMatchFunc(args...)
		},
	}
}

// lookup returns the compiled pattern for a (key, pattern) call; ok is
// false when the table does not hold the pattern or the call is anything
// else.
func lookup(table map[string]pattern, args []any) (_ pattern, ok bool) {
	if len(args) != 2 {
		return pattern{}, false
	}
	if _, ok := args[0].(string); !ok {
		return pattern{}, false
	}
	v, ok := args[1].(string)
	if !ok {
		return pattern{}, false
	}
	p, ok := table[v]
	return p, ok
}

// rewriteCalls renames calls of keyMatch2 and regexMatch in a matcher to
// the stand-ins.
func rewriteCalls(expr string) string {
	names := map[string]string{"keyMatch2": cachedKeyMatch2, "regexMatch": cachedRegexMatch}
	return rewriteIdents(expr, func(name string, call bool) string {
		if to, ok := names[name]; ok && call {
			return to
		}
		return name
	})
}

// rewriteIdents returns expr with every name outside string literals
// (keyMatch2, r.obj, p.sub: letters, digits, _ and dots) replaced by f's
// answer; call tells whether the name is called, that is followed by "(".
func rewriteIdents(expr string, f func(name string, call bool) string) string {
	var b strings.Builder
	var quote byte
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(expr) {
				b.WriteByte(c)
				i++
				c = expr[i]
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case isIdentStart(c) && (i == 0 || !isIdentChar(expr[i-1])):
			j := i
			for j < len(expr) && (isIdentChar(expr[j]) || expr[j] == '.') {
				j++
			}
			b.WriteString(f(expr[i:j], strings.HasPrefix(strings.TrimLeft(expr[j:], " \t"), "(")))
			i = j
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' }

// literalPrefix returns a string that every input the regular expression
// matches must start with; "" when it cannot tell. It only trusts
// expressions anchored at the start of the text (^ outside any group) and
// case-sensitive literals right after the anchor.
func literalPrefix(expr string) string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return ""
	}
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return ""
	}
	var b strings.Builder
	for _, sub := range re.Sub[1:] {
		if sub.Op != syntax.OpLiteral || sub.Flags&syntax.FoldCase != 0 {
			break
		}
		for _, r := range sub.Rune {
			if r == utf8.RuneError { // also what invalid UTF-8 in the input reads as
				return b.String()
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
