package authn

import (
	"net/http"
	"strings"
)

// maxTokenLen is the longest token accepted, in bytes.
const maxTokenLen = 8 << 10

// credential extracts the single token from h, or says why there is none.
// It never looks anywhere but the Authorization header.
func credential(h http.Header) (string, Reason) {
	vals := h.Values("Authorization")
	switch {
	case len(vals) == 0:
		return "", ReasonMissing
	case len(vals) > 1:
		return "", ReasonMultiple
	}
	v := vals[0]
	// Reject huge values before touching their content. The allowance covers
	// the scheme and surrounding whitespace; the token itself is checked below.
	if len(v) > maxTokenLen+64 {
		return "", ReasonTooLong
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", ReasonEmpty
	}
	token := v
	if scheme, rest, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(rest)
	} else if strings.EqualFold(v, "Bearer") {
		token = ""
	}
	switch {
	case token == "":
		return "", ReasonEmpty
	case len(token) > maxTokenLen:
		return "", ReasonTooLong
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return "", ReasonMalformed // whitespace, control or non-ASCII bytes
		}
	}
	return token, ""
}

// looksLikeJWT reports whether token has the compact JWS shape: exactly two
// dots, non-empty base64url header and payload, and a base64url (possibly
// empty) signature. It stops at the third dot, so it is cheap for any input.
func looksLikeJWT(token string) bool {
	dots := 0
	segLen := 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		if c == '.' {
			if segLen == 0 {
				return false
			}
			dots++
			if dots > 2 {
				return false
			}
			segLen = 0
			continue
		}
		if !isBase64URL(c) {
			return false
		}
		segLen++
	}
	return dots == 2
}

func isBase64URL(c byte) bool { return base64URL[c] }

// base64URL marks the bytes of the base64url alphabet (a table: this runs
// over every byte of every new token).
var base64URL = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()
