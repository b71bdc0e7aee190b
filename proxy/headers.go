package proxy

import (
	"net/http"
	"strings"
)

// rewriteHeaders are request headers with which some frameworks and
// servers let a client replace the path they route on (Symfony and IIS
// X-Original-URL and X-Rewrite-URL, Spring's and Traefik's
// X-Forwarded-Prefix, X-Forwarded-Path); a client's copy is never
// forwarded, since latch decided on the request line's path.
var rewriteHeaders = []string{"X-Original-Url", "X-Original-Uri", "X-Rewrite-Url", "X-Forwarded-Prefix",
	"X-Forwarded-Path", "X-Forwarded-Uri", "X-Envoy-Original-Path"}

// stripIdentityHeaders removes every request header that a backend could read as
// one of the given names: any case, and with '_' in place of '-' (many
// servers, CGI and nginx among them, map both to the same variable). It
// runs on every request, authenticated or not, before anything is injected.
func stripIdentityHeaders(h http.Header, names []string) {
	for k := range h {
		if matchesAny(k, names) {
			delete(h, k)
		}
	}
}

func matchesAny(key string, names []string) bool {
	for _, n := range names {
		if len(key) != len(n) {
			continue
		}
		same := true
		for i := 0; i < len(key); i++ {
			a, b := fold(key[i]), fold(n[i])
			if a != b {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

// fold maps a header name byte to a form where case and '_' versus '-' do
// not matter.
func fold(c byte) byte {
	if c == '_' {
		return '-'
	}
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// rolesValue renders roles for the roles header: comma-separated, with
// anything that could split or forge a header dropped.
func rolesValue(roles []string) string {
	if len(roles) == 1 && roles[0] != "" && !strings.ContainsAny(roles[0], ",\r\n\x00") {
		return roles[0] // the common case, without an allocation
	}
	clean := make([]string, 0, len(roles))
	for _, r := range roles {
		if r != "" && !strings.ContainsAny(r, ",\r\n\x00") {
			clean = append(clean, r)
		}
	}
	return strings.Join(clean, ",")
}
