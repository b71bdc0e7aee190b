package proxy

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Target is the one reading of a request path that latch acts on. Every
// later step takes its path from here: local routing and handler path
// parameters (Key), protection (Protected), the policy's input (Readings)
// and the forwarded path (Escaped and Path).
type Target struct {
	// Escaped is the canonical path (see Canonical), as forwarded in
	// URL.RawPath.
	Escaped string
	// Path is Escaped with its remaining escapes decoded (URL.Path).
	Path string
	// Key is Escaped with ASCII letters lower-cased and nothing else
	// changed; latch's own routes match it and read their parameters from
	// it. Non-ASCII bytes stay percent-encoded.
	Key string
	// Readings are the paths the policy must allow, all escaped: the
	// canonical path, its ASCII lower-case form when that differs (a
	// case-insensitive backend reads both the same), and its lenient
	// reading when that differs (see LenientReading). A request is allowed
	// only if every reading is.
	Readings []string
	// Protected reports whether any reading lies under a protected prefix.
	Protected bool
}

// Resolve makes the Target of an escaped request path for the protected
// prefixes. It fails, with a *PathError a client may see, when Canonical
// refuses the path.
func Resolve(escaped string, protect []string) (Target, error) {
	c, err := Canonical(escaped)
	if err != nil {
		return Target{}, err
	}
	t := Target{Escaped: c}
	if t.Path, err = unescape(c); err != nil {
		return Target{}, errPathBadEscape
	}
	t.Key = lowerASCII(c)
	t.Readings = append(make([]string, 0, 3), c)
	if t.Key != c {
		t.Readings = append(t.Readings, t.Key)
	}
	if u, ok := LenientReading(c); ok && u != t.Key {
		t.Readings = append(t.Readings, u)
	}
	for _, p := range t.Readings {
		if Protected(p, protect) {
			t.Protected = true
			break
		}
	}
	return t, nil
}

// LenientReading returns the canonical path as a lenient backend would read
// it: one that folds case with Unicode rules (Java's equalsIgnoreCase,
// Python's re.IGNORECASE, Go's strings.ToLower) or normalizes to NFKC, and
// trims spaces around path segments and dots after them (Windows and IIS
// drop trailing dots and spaces; Spring's AntPathMatcher trims tokens).
// Every percent-encoded rune with an ASCII reading (see asciiReading) is
// replaced by it, ASCII letters are lower-cased, segments are trimmed, and
// dot segments are resolved again, ".." at the root staying there. ok is
// false when nothing changed that way.
func LenientReading(canonical string) (reading string, ok bool) {
	if !strings.Contains(canonical, "%") && !strings.Contains(canonical, "./") && !strings.HasSuffix(canonical, ".") {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(canonical))
	var buf [utf8.UTFMax]byte
	for i := 0; i < len(canonical); {
		c := canonical[i]
		if c != '%' || i+2 >= len(canonical) || unhex(canonical[i+1])<<4|unhex(canonical[i+2]) < utf8.RuneSelf {
			if c != '%' {
				c = lowerByte(c)
			}
			b.WriteByte(c)
			i++
			continue
		}
		// Gather the encoded bytes of one rune (at most UTFMax escapes).
		n, j := 0, i
		for n < len(buf) && j+2 < len(canonical) && canonical[j] == '%' {
			buf[n] = unhex(canonical[j+1])<<4 | unhex(canonical[j+2])
			n++
			j += 3
			if utf8.FullRune(buf[:n]) {
				break
			}
		}
		r, size := utf8.DecodeRune(buf[:n])
		if s := asciiReading(r); s != "" && r != utf8.RuneError {
			b.WriteString(strings.ReplaceAll(s, " ", "%20"))
			ok = true
			i += 3 * size
			continue
		}
		// Not a rune with an ASCII reading: keep its first byte as it was.
		b.WriteString(canonical[i : i+3])
		i += 3
	}
	s, trimmed := trimSegments(b.String())
	if !ok && !trimmed {
		return "", false
	}
	// A reading whose dots climb above the root is clamped there, as
	// path.Clean does: /..%20/api/admin reads as /api/admin.
	r, _ := resolveDots(s, true)
	return r, true
}

// trimSegments removes spaces (%20) around each segment of an escaped path
// and dots after it, as lenient backends do; a segment that would be left
// empty is kept as it was. changed reports whether any segment changed.
func trimSegments(p string) (out string, changed bool) {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		t := seg
		for more := true; more; {
			switch {
			case strings.HasPrefix(t, "%20"):
				t = t[3:]
			case strings.HasSuffix(t, "%20"):
				t = t[:len(t)-3]
			case strings.HasSuffix(t, ".") && t != "." && t != "..":
				t = t[:len(t)-1]
			default:
				more = false
			}
		}
		if t != seg && t != "" {
			segs[i] = t
			changed = true
		}
	}
	if !changed {
		return p, false
	}
	return strings.Join(segs, "/"), true
}

// asciiReading returns what a non-ASCII rune reads as in ASCII, lower-cased,
// for a backend that folds case with Unicode rules or normalizes to NFKC;
// "" when it has none. It is derived from Go's unicode tables: the rune's
// simple case-folding orbit (unicode.SimpleFold, which takes U+212A KELVIN
// SIGN to 'k' and U+017F LONG S to 's'), its upper, lower and title case
// mappings (U+0130 'İ' lower-cases to 'i', U+0131 'ı' upper-cases to 'I'),
// and its NFKC form (U+FF41 FULLWIDTH 'ａ' is 'a', U+FB00 'ﬀ' is "ff"),
// kept only when that is made of letters, digits, '-', '.', '_', '~', '/'
// and spaces (no-break spaces are spaces in NFKC; see trimSegments).
func asciiReading(r rune) string {
	if r < utf8.RuneSelf {
		return ""
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return string(rune(lowerByte(byte(f))))
		}
	}
	for _, f := range [...]rune{unicode.ToLower(r), unicode.ToUpper(r), unicode.ToTitle(r)} {
		if f < utf8.RuneSelf {
			return string(rune(lowerByte(byte(f))))
		}
	}
	var buf [utf8.UTFMax]byte
	s := norm.NFKC.String(string(buf[:utf8.EncodeRune(buf[:], r)]))
	if s == "" {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isUnreserved(c) && c != '/' && c != ' ' {
			return ""
		}
	}
	return lowerASCII(s)
}

// lowerASCII lower-cases ASCII letters only, leaving the hex digits of
// percent-escapes as they are; every other byte is kept. strings.ToLower is
// not used on paths: it folds with Unicode rules.
func lowerASCII(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			i += 2
			continue
		}
		if 'A' <= c && c <= 'Z' {
			if b == nil {
				b = []byte(s)
			}
			b[i] = c + 'a' - 'A'
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasPrefixFold reports whether s starts with prefix, ASCII letters
// compared without regard to case (strings.EqualFold would also fold
// non-ASCII runes).
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lowerByte(s[i]) != lowerByte(prefix[i]) {
			return false
		}
	}
	return true
}
