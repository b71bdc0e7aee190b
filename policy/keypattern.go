package policy

import "strings"

// keyPattern matches what the regular expression keyMatch2Expr builds from
// the usual keyMatch2 pattern matches, without a regular expression: literal
// text, :name parameters that run to the next slash, and a /* tail, as in
// /api/admin/projects/:id/*. A compiled regexp of such a pattern holds a few
// KiB; a policy of ten thousand of them would hold tens of MiB that every
// garbage collection scans. Patterns of any other shape keep the regexp.
//
// The expression is ^lit0[^/]+lit1[^/]+...litN(.*)?$ and each parameter is
// followed by a literal starting with "/", by the end, or by the tail, so
// matching is a walk with no choices: a parameter takes the bytes up to the
// next slash (at least one), a literal must follow there, and the tail takes
// the rest of the line. On bytes this is the regexp's answer on runes:
// literals are printable ASCII, [^/] matches any rune but "/" (newline and
// invalid UTF-8 included) and no multi-byte rune holds a "/" byte; "."
// matches any rune but a newline, and no multi-byte rune holds a newline
// byte.
type keyPattern struct {
	lits []string // the literals; a parameter sits between each two
	tail bool     // the expression ends with .* (the pattern with /*)
}

// parseKeyPattern reads an expression keyMatch2Expr built; ok is false when
// it is not of the shape keyPattern matches.
func parseKeyPattern(expr string) (kp keyPattern, ok bool) {
	body, ok := strings.CutPrefix(expr, "^")
	if !ok {
		return kp, false
	}
	if body, ok = strings.CutSuffix(body, "$"); !ok {
		return kp, false
	}
	if rest, tail := strings.CutSuffix(body, ".*"); tail {
		if !strings.HasSuffix(rest, "/") {
			return kp, false
		}
		body, kp.tail = rest, true
	}
	for i, lit := range strings.Split(body, "[^/]+") {
		if i > 0 && lit != "" && lit[0] != '/' {
			return kp, false
		}
		for j := 0; j < len(lit); j++ {
			if c := lit[j]; c < ' ' || c > '~' || strings.IndexByte(`\.+*?()|[]{}^$`, c) >= 0 {
				return kp, false
			}
		}
		kp.lits = append(kp.lits, lit)
	}
	if last := kp.lits[len(kp.lits)-1]; kp.tail && len(kp.lits) > 1 && last == "" {
		return kp, false // [^/]+.* would not be a walk (and cannot come from keyMatch2Expr)
	}
	return kp, true
}

func (kp *keyPattern) match(key string) bool {
	pos := 0
	for i, lit := range kp.lits {
		if i > 0 { // a parameter: one or more bytes up to the next slash
			end := strings.IndexByte(key[pos:], '/')
			if end < 0 {
				end = len(key) - pos
			}
			if end == 0 {
				return false
			}
			pos += end
		}
		if !strings.HasPrefix(key[pos:], lit) {
			return false
		}
		pos += len(lit)
	}
	if kp.tail {
		return strings.IndexByte(key[pos:], '\n') < 0
	}
	return pos == len(key)
}
