package authn

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors the key function returns; verifyJWT maps them to Reasons.
var (
	errUnknownKey  = errors.New("no key with this kid")
	errKeyMismatch = errors.New("key does not suit the token's alg")
	errNoKeyForAlg = errors.New("no configured key suits the token's alg")
	errBadKid      = errors.New("kid is not a string")
	errBadClaims   = errors.New("invalid claims")
	// errCrit: RFC 7515 §4.1.11 makes a recipient refuse a token whose
	// crit header names extensions it does not understand; latch
	// understands none, so any crit header is refused.
	errCrit = errors.New("crit header: no extension is understood")
)

// tokenClaims is the registered claims plus the configured subject and roles
// claims, whose names are only known at run time.
type tokenClaims struct {
	jwt.RegisteredClaims
	subjectClaim, rolesClaim string // set before parsing

	subject    string
	roles      []string
	issuedNano int64 // iat_ns, see issuedNanoClaim; 0 when absent
	// gen is the generationClaim; hasGen says it is present, genErr that
	// it is not a generation (an error only for latch's own tokens).
	gen      uint64
	hasGen   bool
	genErr   error
	claimErr error
	handoff  bool // handoffClaim is present
}

// generationClaim carries the user's session generation in latch's login
// tokens (MintSession): a decimal string, since a JSON number loses 64-bit
// precision in many decoders.
const generationClaim = "gen"

// issuedNanoClaim carries the issue time of the tokens latch mints to the
// nanosecond. iat has one-second precision, too coarse to tell a token
// issued just after a password change from one issued just before it.
const issuedNanoClaim = "iat_ns"

// UnmarshalJSON decodes the registered claims, then picks the subject and
// roles out of the same object.
func (c *tokenClaims) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &c.RegisteredClaims); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if v, ok := raw[c.subjectClaim]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &c.subject); err != nil {
			c.claimErr = fmt.Errorf("%w: subject claim is not a string", errBadClaims)
		}
	}
	if c.subject != "" && c.subjectClaim == "email" {
		// The subject is an email address: an issuer saying it did not
		// verify it is not taken at its word.
		if err := emailVerified(raw["email_verified"]); err != nil {
			c.claimErr = err
		}
	}
	if c.subject == "" {
		c.subject = c.Subject
	}
	if v, ok := raw[generationClaim]; ok {
		c.hasGen = true
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			c.genErr = fmt.Errorf("%w: %s claim is not a string", errBadClaims, generationClaim)
		} else if c.gen, err = strconv.ParseUint(s, 10, 64); err != nil {
			c.genErr = fmt.Errorf("%w: %s claim is not a generation", errBadClaims, generationClaim)
		}
	}
	_, c.handoff = raw[handoffClaim]
	if v, ok := raw[issuedNanoClaim]; ok {
		_ = json.Unmarshal(v, &c.issuedNano) // not an integer: ignored, iat stands
	}
	if v, ok := raw[c.rolesClaim]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &c.roles); err != nil {
			c.claimErr = fmt.Errorf("%w: roles claim is not an array of strings", errBadClaims)
		} else if slices.Contains(c.roles, "") {
			c.claimErr = fmt.Errorf("%w: roles claim holds an empty role", errBadClaims)
		}
	}
	return nil
}

// emailVerified refuses an email_verified claim (OpenID Connect Core §5.1)
// that says false: the boolean false, or the string "false" some issuers
// send. Absent or null means the issuer does not say, and is accepted; any
// other value is a malformed claim.
func emailVerified(v json.RawMessage) error {
	switch string(v) {
	case "", "null", "true", `"true"`:
		return nil
	case "false", `"false"`:
		return fmt.Errorf("%w: email_verified is false", errBadClaims)
	}
	return fmt.Errorf("%w: email_verified is neither true nor false", errBadClaims)
}

// Validate is called by golang-jwt after the registered claims pass.
func (c *tokenClaims) Validate() error {
	if c.claimErr != nil {
		return c.claimErr
	}
	if c.subject == "" {
		return fmt.Errorf("%w: no subject", errBadClaims)
	}
	return nil
}

// keyLookup is the state of one verification: what the key function saw.
type keyLookup struct {
	a          *Authenticator
	ctx        context.Context
	kidUnknown bool // the token named a kid no configured key has
	jwksMissed bool // ... and the JWKS has never been fetched
	key        any  // what keyFunc returned: one key or a VerificationKeySet
}

// keyFunc returns the one key (or set of keys) a token may be verified with,
// always typed to match the token's alg.
func (l *keyLookup) keyFunc(t *jwt.Token) (any, error) {
	k, err := l.pick(t)
	l.key = k
	return k, err
}

func (l *keyLookup) pick(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	alg := t.Method.Alg()
	kid := ""
	if v, ok := t.Header["kid"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, errBadKid
		}
		kid = s
	}
	if kid != "" {
		k, found, err := l.a.keyByKid(kid, alg)
		if !found && l.a.opts.JWKSURL != "" {
			l.a.refreshEarly(l.ctx)
			k, found, err = l.a.keyByKid(kid, alg)
			if !found && !l.a.jwks.Load().fetched {
				l.jwksMissed = true
			}
		}
		if found {
			return k, err
		}
		l.kidUnknown = true
	}
	// No kid, or a kid nobody published: try every key that suits the alg.
	// JWKS keys are only candidates when the token names no kid.
	var cands []jwt.VerificationKey
	for _, k := range l.a.static {
		if k.allows(alg) && keyMatchesAlg(k.key, alg) {
			cands = append(cands, k.key)
		}
	}
	if kid == "" {
		for _, k := range l.a.jwks.Load().keys {
			if k.allows(alg) && keyMatchesAlg(k.key, alg) {
				cands = append(cands, k.key)
			}
		}
	}
	switch {
	case len(cands) == 1:
		return cands[0], nil
	case len(cands) > 1:
		return jwt.VerificationKeySet{Keys: cands}, nil
	case kid != "":
		return nil, errUnknownKey
	}
	return nil, errNoKeyForAlg
}

// keyByKid finds the key named kid among JWKS and static keys. found is
// true when some key has that kid; err is set when none of them suits alg.
func (a *Authenticator) keyByKid(kid, alg string) (key any, found bool, err error) {
	check := func(keys []verifyKey) (any, bool) {
		for _, k := range keys {
			if k.kid != kid {
				continue
			}
			found = true
			if k.allows(alg) && keyMatchesAlg(k.key, alg) {
				return k.key, true
			}
		}
		return nil, false
	}
	if k, ok := check(a.jwks.Load().byKid[kid]); ok {
		return k, true, nil
	}
	if k, ok := check(a.static); ok {
		return k, true, nil
	}
	if found {
		return nil, true, errKeyMismatch
	}
	return nil, false, nil
}

// verifyJWT verifies token's signature and claims and caches the identity
// under sum, the token's SHA-256 (authenticate looks there first).
func (a *Authenticator) verifyJWT(ctx context.Context, token string, sum [32]byte) (Identity, Reason, error) {
	claims := &tokenClaims{subjectClaim: a.opts.SubjectClaim, rolesClaim: a.opts.RolesClaim}
	lookup := &keyLookup{a: a, ctx: ctx}
	parsed, err := a.parser.ParseWithClaims(token, claims, lookup.keyFunc)
	own := err == nil && a.signedByOwn(parsed, token, lookup.key)
	if err == nil && own && claims.genErr != nil {
		err = claims.genErr // a login token whose gen cannot be read
	}
	if err == nil && own && claims.handoff {
		// latch signed it for an upstream (MintUpstream): whoever holds
		// it there must not be able to replay it to latch.
		err = fmt.Errorf("%w: latch's token for an upstream", jwt.ErrTokenInvalidAudience)
	}
	if err != nil {
		reason := reasonFor(err)
		if reason == ReasonBadClaims && errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && claims.ExpiresAt != nil {
			// golang-jwt reports a missing iss or aud as a missing claim.
			switch {
			case a.opts.Issuer != "" && claims.Issuer == "":
				reason = ReasonBadIssuer
			case a.opts.Audience != "" && len(claims.Audience) == 0:
				reason = ReasonBadAudience
			}
		}
		if reason == ReasonBadSignature && lookup.kidUnknown {
			// No static key fitted either: the kid is what went wrong.
			reason = ReasonUnknownKey
		}
		if lookup.jwksMissed && (reason == ReasonUnknownKey || reason == ReasonBadSignature) {
			// The key may well be in the JWKS we could not fetch.
			return Identity{}, "", fmt.Errorf("verify token: %w", errNotReady)
		}
		a.log.LogAttrs(ctx, slog.LevelDebug, "token rejected",
			slog.String("reason", string(reason)), slog.String("detail", err.Error()))
		return Identity{}, reason, nil
	}
	id := Identity{
		Subject:   claims.subject,
		Roles:     claims.roles,
		Kind:      KindJWT,
		ExpiresAt: claims.ExpiresAt.Time,
		Own:       own,
	}
	if own && claims.hasGen {
		id.Bound, id.Generation = true, claims.gen
	}
	if claims.IssuedAt != nil {
		id.IssuedAt = claims.IssuedAt.Time
		// iat_ns only refines iat within its second, never moves it, and
		// only in latch's own tokens: another issuer's iat_ns is not ours
		// to trust, so its iat keeps one-second precision (see the session
		// check, which refuses the second of a password change).
		if n := claims.issuedNano; own && n > 0 && n/1e9 == id.IssuedAt.Unix() {
			id.IssuedAt = time.Unix(0, n)
		}
	}
	a.cache.put(sum, id, a.now()) // put stores its own copy of the roles
	return id, "", nil
}

// signedByOwn reports whether latch's own key verified t: key is what the
// key function returned for it. When that was a set of keys holding the own
// key, the signature is checked again against the own key alone.
func (a *Authenticator) signedByOwn(t *jwt.Token, token string, key any) bool {
	if a.signing == nil || t == nil {
		return false
	}
	own := a.signing.verify.key
	switch k := key.(type) {
	case jwt.VerificationKeySet:
		if !slices.ContainsFunc(k.Keys, func(c jwt.VerificationKey) bool { return isOwnKey(c, own) }) {
			return false
		}
		dot := strings.LastIndexByte(token, '.')
		return dot > 0 && t.Method.Verify(token[:dot], t.Signature, own) == nil
	default:
		return isOwnKey(k, own)
	}
}

// isOwnKey reports whether k is own, latch's Ed25519 public key or HMAC
// secret.
func isOwnKey(k, own any) bool {
	if secret, ok := own.([]byte); ok {
		b, ok := k.([]byte)
		return ok && len(b) > 0 && subtle.ConstantTimeCompare(b, secret) == 1
	}
	return sameKey(k, own)
}

// reasonFor maps golang-jwt's errors to a Reason. The order matters: when
// several claims fail, the first match wins.
func reasonFor(err error) Reason {
	for _, m := range []struct {
		target error
		reason Reason
	}{
		{errCrit, ReasonMalformed},
		{errUnknownKey, ReasonUnknownKey},
		{errBadKid, ReasonMalformed},
		{jwt.ErrTokenMalformed, ReasonMalformed},
		{errKeyMismatch, ReasonBadSignature},
		{errNoKeyForAlg, ReasonBadSignature},
		{jwt.ErrTokenSignatureInvalid, ReasonBadSignature},
		{jwt.ErrTokenUnverifiable, ReasonBadSignature}, // e.g. an unknown alg
		{jwt.ErrTokenExpired, ReasonExpired},
		{jwt.ErrTokenNotValidYet, ReasonNotYetValid},
		{jwt.ErrTokenUsedBeforeIssued, ReasonNotYetValid},
		{jwt.ErrTokenInvalidIssuer, ReasonBadIssuer},
		{jwt.ErrTokenInvalidAudience, ReasonBadAudience},
	} {
		if errors.Is(err, m.target) {
			return m.reason
		}
	}
	return ReasonBadClaims // missing exp, no subject, bad roles, wrong claim types
}
