package proxy

import (
	"errors"
	"strings"
)

// PathError says why a request path was refused. Its text is safe to show
// a client.
type PathError struct{ Reason string }

func (e *PathError) Error() string { return "the request path " + e.Reason }

var (
	errPathNotAbsolute = &PathError{"must start with /"}
	errPathBackslash   = &PathError{"must not contain a backslash"}
	errPathEncodedSep  = &PathError{"must not contain an encoded '/', '\\', ';', '%' or control character"}
	errPathBadEscape   = &PathError{"holds a malformed percent-escape"}
	errPathControl     = &PathError{"must not contain control characters"}
	errPathSemicolon   = &PathError{"must not contain ';' (path parameters are not accepted)"}
	errPathAboveRoot   = &PathError{"climbs above the root with '..'"}
	errPathNonASCII    = &PathError{"must be percent-encoded ASCII"}
)

// Canonical returns the one form of an escaped request path that latch
// both authorizes and forwards:
//
//   - percent-encoded unreserved characters (ALPHA, DIGIT, "-._~") and the
//     characters a segment holds unencoded with one meaning ("!$&'()*+,=:@")
//     are decoded, so %2e is "." and %40 is "@"; other escapes stay encoded
//     with upper-case hex;
//   - an encoded '/', '\', ';', '%' (double encoding) or control character,
//     a raw '\', ';' or control character, and a malformed escape are
//     refused, as is a path not starting with '/';
//   - repeated slashes are merged and "." and ".." segments are resolved;
//     ".." above the root is refused;
//   - a trailing slash is kept, and a path ending in "." or ".." resolves to
//     a directory (a trailing slash), as RFC 3986 section 5.2.4 does.
//
// Case is preserved: backends differ there, so the policy check is made on
// every reading of the path (see Resolve). The query string is never part
// of the input.
func Canonical(escaped string) (string, error) {
	if isCanonical(escaped) {
		return escaped, nil // most paths: no copy
	}
	return canonicalize(escaped)
}

// isCanonical reports, in one pass without allocating, whether p is
// already its own canonical form: it starts with '/', holds no escape and
// no refused byte, and has no empty, "." or ".." segment (an empty last
// segment is a trailing slash, which is kept). For such a p, canonicalize
// returns p unchanged (FuzzCanonical checks that the two agree).
func isCanonical(p string) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c != '/' {
				if c == '%' || c == '\\' || c == ';' || c < 0x20 || c >= 0x7f {
					return false
				}
				continue
			}
		}
		switch seg := p[segStart:i]; seg {
		case "":
			if i < len(p) {
				return false // "//"
			}
		case ".", "..":
			return false
		}
		segStart = i + 1
	}
	return true
}

// canonicalize is Canonical for a path that needs work.
func canonicalize(escaped string) (string, error) {
	if !strings.HasPrefix(escaped, "/") {
		return "", errPathNotAbsolute
	}
	// Decode unreserved escapes and vet every byte.
	var b strings.Builder
	b.Grow(len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		switch {
		case c == '%':
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", errPathBadEscape
			}
			d := unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			i += 2
			switch {
			case isUnreserved(d) || isPathSafe(d):
				b.WriteByte(d)
			case d == '/' || d == '\\' || d == ';' || d == '%' || d < 0x20 || d == 0x7f:
				return "", errPathEncodedSep
			default:
				b.WriteByte('%')
				b.WriteByte(upperHex[d>>4])
				b.WriteByte(upperHex[d&15])
			}
		case c == '\\':
			return "", errPathBackslash
		case c == ';':
			return "", errPathSemicolon
		case c < 0x20 || c == 0x7f:
			return "", errPathControl
		case c >= 0x80:
			return "", errPathNonASCII
		default:
			b.WriteByte(c)
		}
	}
	return resolve(b.String())
}

// resolve merges slashes and removes dot segments from an absolute path
// whose bytes are already vetted.
func resolve(p string) (string, error) { return resolveDots(p, false) }

// resolveDots is resolve; with clamp, ".." at the root stays at the root
// (as path.Clean and RFC 3986 section 5.2.4 do) instead of failing.
func resolveDots(p string, clamp bool) (string, error) {
	segs := make([]string, 0, 8)
	dir := strings.HasSuffix(p, "/")
	for _, s := range strings.Split(p[1:], "/") {
		switch s {
		case "":
			continue
		case ".":
			dir = true
			continue
		case "..":
			if len(segs) == 0 {
				if !clamp {
					return "", errPathAboveRoot
				}
			} else {
				segs = segs[:len(segs)-1]
			}
			dir = true
			continue
		}
		segs = append(segs, s)
		dir = false
	}
	if strings.HasSuffix(p, "/") {
		dir = true
	}
	out := "/" + strings.Join(segs, "/")
	if dir && len(segs) > 0 {
		out += "/"
	}
	return out, nil
}

// Protected reports whether the canonical path lies under one of the
// prefixes, ASCII letters compared without regard to case. The prefix "/api/admin/"
// also covers "/api/admin" itself.
func Protected(canonical string, prefixes []string) bool {
	for _, p := range prefixes {
		if hasPrefixFold(canonical, p) || hasPrefixFold(canonical+"/", p) {
			return true
		}
	}
	return false
}

// unescape decodes a canonical path's remaining escapes for URL.Path.
func unescape(canonical string) (string, error) {
	if !strings.Contains(canonical, "%") {
		return canonical, nil
	}
	var b strings.Builder
	for i := 0; i < len(canonical); i++ {
		if canonical[i] == '%' {
			if i+2 >= len(canonical) {
				return "", errors.New("truncated escape")
			}
			b.WriteByte(unhex(canonical[i+1])<<4 | unhex(canonical[i+2]))
			i += 2
			continue
		}
		b.WriteByte(canonical[i])
	}
	return b.String(), nil
}

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// isPathSafe reports whether c may stand in a path segment unencoded with
// the same meaning to every backend (RFC 3986 pchar: the sub-delims but
// ';', which latch refuses, and ':' and '@'). Its escape is decoded, so the
// policy and a handler's path parameters read "a%40b" as "a@b", as
// backends do.
func isPathSafe(c byte) bool {
	return strings.IndexByte("!$&'()*+,=:@", c) >= 0
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
