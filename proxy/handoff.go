package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// HandoffMode is what the upstream receives for an authenticated request.
// In every mode latch removes the identity headers a client sent and sets
// its own (Options.UserHeader, Options.RolesHeader), forwards a credential
// it did not recognise untouched, and never forwards its session cookie.
type HandoffMode uint8

const (
	// HandoffHeaders removes the credential latch consumed (its JWT or an
	// API token it matched in Authorization; the session cookie always):
	// the identity headers are all the upstream gets.
	HandoffHeaders HandoffMode = iota
	// HandoffJWT does as HandoffHeaders, then sends Authorization: Bearer
	// with a short-lived JWT latch signs for the upstream (its key at
	// <ns>/jwks.json), as Ory Oathkeeper's id_token mutator does. When the
	// request carries an Authorization latch did not recognise, that one
	// stays and no token is added.
	HandoffJWT
	// HandoffPassthrough forwards Authorization as the client sent it.
	HandoffPassthrough
)

var handoffNames = [...]string{HandoffHeaders: "headers", HandoffJWT: "jwt", HandoffPassthrough: "passthrough"}

func (m HandoffMode) String() string { return handoffNames[m] }

// HandoffRoute applies Mode to paths under Prefix, ASCII letters compared
// without regard to case.
type HandoffRoute struct {
	Prefix string
	Mode   HandoffMode
}

// ParseHandoff reads config entries "<path prefix> <mode>" (auth.handoff).
func ParseHandoff(entries []string) ([]HandoffRoute, error) {
	var out []HandoffRoute
	for i, e := range entries {
		prefix, mode, _ := strings.Cut(strings.TrimSpace(e), " ")
		m := slices.Index(handoffNames[:], strings.TrimSpace(mode))
		if !strings.HasPrefix(prefix, "/") || m < 0 {
			return nil, fmt.Errorf("auth.handoff[%d]: %q is not \"<path prefix> <headers|jwt|passthrough>\"", i, e)
		}
		// The prefix rule config applies (its message is the user's): no
		// query, fragment, escape or dot segments in a prefix.
		if strings.ContainsAny(prefix, "?#\\%;") || strings.Contains(prefix, "..") {
			return nil, fmt.Errorf("auth.handoff[%d]: %q does not start with a clean absolute path prefix", i, e)
		}
		out = append(out, HandoffRoute{Prefix: prefix, Mode: HandoffMode(m)})
	}
	return out, nil
}

// UpstreamMinter signs the tokens of HandoffJWT.
type UpstreamMinter interface {
	MintUpstream(sub string, roles []string, audience string, ttl time.Duration) (token string, exp time.Time, err error)
}

// sortHandoff lower-cases the prefixes and orders them longest first, so
// the first match is the longest.
func sortHandoff(routes []HandoffRoute, canMint bool) ([]HandoffRoute, error) {
	out := slices.Clone(routes)
	for i := range out {
		if out[i].Mode > HandoffPassthrough {
			return nil, fmt.Errorf("handoff route %q: unknown mode %d", out[i].Prefix, out[i].Mode)
		}
		if out[i].Mode == HandoffJWT && !canMint {
			return nil, errors.New("handoff mode jwt needs Options.UpstreamTokens")
		}
		out[i].Prefix = lowerASCII(out[i].Prefix)
	}
	slices.SortStableFunc(out, func(a, b HandoffRoute) int { return len(b.Prefix) - len(a.Prefix) })
	return out, nil
}

// handoffMode is the mode for the target: its key's, unless that is
// passthrough and another reading of the path (one a lenient backend may
// serve, see Target.Readings) falls under a mode that removes the consumed
// credential: then that one, so no reading gets latch's credential.
func (h *Handler) handoffMode(t *Target) HandoffMode {
	m := h.modeOf(t.Key)
	if m != HandoffPassthrough {
		return m
	}
	// Readings[0] lower-cased is the Key; the others are lower-case
	// already (see Resolve).
	for _, rd := range t.Readings[1:] {
		if rm := h.modeOf(rd); rm != HandoffPassthrough {
			return rm
		}
	}
	return m
}

// modeOf is the mode of the longest prefix of key (ASCII lower case).
func (h *Handler) modeOf(key string) HandoffMode {
	for _, r := range h.opts.Handoff {
		if strings.HasPrefix(key, r.Prefix) {
			return r.Mode
		}
	}
	return HandoffHeaders
}

// handOff sets what the upstream receives on the outgoing request's
// headers out, for the request's state st (see HandoffMode).
func (h *Handler) handOff(out http.Header, st *reqState) {
	dropSessionCookie(out)
	if st.identity == nil {
		return
	}
	switch st.handoff {
	case HandoffHeaders:
		if st.consumedAuthz {
			delete(out, "Authorization")
		}
	case HandoffJWT:
		if st.consumedAuthz {
			delete(out, "Authorization")
		}
		if st.upstreamToken != "" && len(out["Authorization"]) == 0 {
			out["Authorization"] = []string{"Bearer " + st.upstreamToken}
		}
	}
}

// jwks answers GET <ns>/jwks.json with Options.JWKS.
func (h *Handler) jwks(w http.ResponseWriter, r *http.Request) error {
	hd := w.Header()
	hd.Set("Content-Type", "application/jwk-set+json")
	hd.Set("Cache-Control", "public, max-age=300")
	hd.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(h.opts.JWKS)
	return nil
}
