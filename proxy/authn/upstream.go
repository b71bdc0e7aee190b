package authn

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrHMACSigningKey is returned by MintUpstream and JWKS when latch's
// signing key is an HMAC secret: a token for the upstream must be
// verifiable with a key latch can publish, and a secret cannot be.
var ErrHMACSigningKey = errors.New("authn: the signing key is an HMAC secret, which cannot be published; tokens for the upstream need an Ed25519 key")

// maxUpstreamTokens bounds the cache of tokens minted for the upstream.
const maxUpstreamTokens = 10000

// CanPublish reports whether latch's signing key is an Ed25519 key, the
// only kind MintUpstream can sign with and JWKS can publish. It is false
// for an HMAC secret and when no signing key is configured; JWKS's error
// says which (ErrHMACSigningKey or ErrNoSigningKey). Start-up checks it
// once, so a configuration that cannot work fails before serving.
func (a *Authenticator) CanPublish() bool {
	return a.signing != nil && a.signing.alg == "EdDSA"
}

// publishable returns the error of MintUpstream and JWKS when the signing
// key cannot be published, nil when it can.
func (a *Authenticator) publishable() error {
	switch {
	case a.signing == nil:
		return ErrNoSigningKey
	case !a.CanPublish():
		return ErrHMACSigningKey
	}
	return nil
}

// JWKS returns the JSON Web Key Set (RFC 7517) holding latch's public
// signing key, for the upstream to verify MintUpstream's tokens with:
//
//	{"keys":[{"kty":"OKP","crv":"Ed25519","x":"...","kid":"...","alg":"EdDSA","use":"sig"}]}
//
// kid is the key's RFC 7638 thumbprint, the kid header of every token latch
// signs. The document never changes while the process runs; serve it as
// application/jwk-set+json. It returns ErrHMACSigningKey for an HMAC secret
// and ErrNoSigningKey without a signing key.
func (a *Authenticator) JWKS() ([]byte, error) {
	if err := a.publishable(); err != nil {
		return nil, err
	}
	pub, ok := a.signing.verify.key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("authn: JWKS: public key is %T, want ed25519.PublicKey", a.signing.verify.key)
	}
	type okpKey struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
	}
	doc := struct {
		Keys []okpKey `json:"keys"`
	}{Keys: []okpKey{{Kty: "OKP", Crv: "Ed25519", X: b64(pub), Kid: a.signing.kid, Alg: "EdDSA", Use: "sig"}}}
	return json.Marshal(doc)
}

// handoffClaim marks the tokens MintUpstream signs (its value is true).
// Authenticate refuses latch's own tokens carrying it, so a token handed
// to one upstream cannot be replayed through latch, to it or to another.
const handoffClaim = "latch_handoff"

// upstreamClaims are the claims of a token for the upstream.
type upstreamClaims struct {
	jwt.RegisteredClaims
	Email   string   `json:"email,omitempty"`
	Roles   []string `json:"roles"`
	Handoff bool     `json:"latch_handoff"` // handoffClaim
}

// MintUpstream signs a token that hands sub's identity to an upstream
// service, in place of the credential latch consumed. It carries iss (the
// issuer latch writes in its own tokens: Options.Issuer, or DefaultIssuer),
// sub, aud (an array holding audience only), iat, nbf, exp (= now + ttl,
// to the second), a random jti, roles (an array, empty when roles is nil),
// email (= sub, only when sub contains '@') and latch_handoff (true). The
// header names the key in kid, as published by JWKS.
//
// Only an Ed25519 key can sign these: it returns ErrHMACSigningKey for an
// HMAC secret and ErrNoSigningKey without a signing key (see CanPublish).
//
// Such a token is no credential for latch: Authenticate refuses latch's own
// tokens carrying latch_handoff (bad_audience), so an upstream cannot replay
// it through latch. audience must not be latch's own audience
// (Options.Audience, or DefaultAudience), or the upstream would accept
// latch's login tokens as well.
//
// MintUpstream is meant to be called on every proxied request. The token
// for a (sub, roles, audience, ttl) is reused until half its lifetime has
// passed, so an upstream always receives one with at least half of ttl
// left; at most 10,000 tokens are remembered (the cache starts over when
// full). Roles in another order make another token.
func (a *Authenticator) MintUpstream(sub string, roles []string, audience string, ttl time.Duration) (token string, exp time.Time, err error) {
	if err := a.publishable(); err != nil {
		return "", time.Time{}, err
	}
	switch {
	case sub == "":
		return "", time.Time{}, errors.New("authn: mint upstream: empty subject")
	case audience == "":
		return "", time.Time{}, errors.New("authn: mint upstream: empty audience")
	case audience == a.ownAudience():
		return "", time.Time{}, fmt.Errorf("authn: mint upstream: audience %q is latch's own; the upstream needs its own audience", audience)
	case ttl < time.Second:
		return "", time.Time{}, fmt.Errorf("authn: mint upstream: ttl %v is shorter than a second", ttl)
	}
	var buf [256]byte
	key := upstreamKey(buf[:0], sub, audience, ttl, roles)
	now := a.now()
	if t, ok := a.upstream.get(key, now); ok {
		return t.token, t.exp, nil
	}
	t, err := a.mintUpstream(sub, roles, audience, ttl, now)
	if err != nil {
		return "", time.Time{}, err
	}
	a.upstream.put(string(key), t)
	return t.token, t.exp, nil
}

func (a *Authenticator) mintUpstream(sub string, roles []string, audience string, ttl time.Duration, now time.Time) (upstreamToken, error) {
	iat := now.Truncate(time.Second) // JWT times have second precision
	exp := iat.Add(ttl.Truncate(time.Second))
	c := upstreamClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    a.ownIssuer(),
			Subject:   sub,
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(iat),
			NotBefore: jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        newJTI(),
		},
		Roles:   append([]string{}, roles...), // never null
		Handoff: true,
	}
	if strings.Contains(sub, "@") {
		c.Email = sub
	}
	token, err := a.sign(c) // EdDSA: MintUpstream checked publishable
	if err != nil {
		return upstreamToken{}, fmt.Errorf("authn: mint upstream: %w", err)
	}
	return upstreamToken{token: token, iat: iat, exp: exp}, nil
}

// ownIssuer is the iss latch writes in the tokens it signs.
func (a *Authenticator) ownIssuer() string {
	if a.opts.Issuer != "" {
		return a.opts.Issuer
	}
	return DefaultIssuer
}

// ownAudience is the aud latch writes in the tokens it signs for itself.
func (a *Authenticator) ownAudience() string {
	if a.opts.Audience != "" {
		return a.opts.Audience
	}
	return DefaultAudience
}

// upstreamKey appends the cache key of (sub, audience, ttl, roles) to b:
// each string preceded by its length, so no two lists share a key.
func upstreamKey(b []byte, sub, audience string, ttl time.Duration, roles []string) []byte {
	b = binary.AppendVarint(b, int64(ttl))
	b = binary.AppendUvarint(b, uint64(len(sub)))
	b = append(b, sub...)
	b = binary.AppendUvarint(b, uint64(len(audience)))
	b = append(b, audience...)
	for _, r := range roles {
		b = binary.AppendUvarint(b, uint64(len(r)))
		b = append(b, r...)
	}
	return b
}

// upstreamToken is one token MintUpstream handed out.
type upstreamToken struct {
	token    string
	iat, exp time.Time
}

// upstreamCache remembers the tokens MintUpstream signed, so a request
// costs a map lookup rather than a signature.
type upstreamCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]upstreamToken
}

func newUpstreamCache(max int) *upstreamCache {
	return &upstreamCache{max: max, entries: map[string]upstreamToken{}}
}

// get returns the token cached under key if less than half its lifetime
// has passed at now. A clock that went back before
// the token's iat also makes it unusable, since its nbf is then ahead.
func (c *upstreamCache) get(key []byte, now time.Time) (upstreamToken, bool) {
	c.mu.RLock()
	t, ok := c.entries[string(key)] // no allocation for the lookup
	c.mu.RUnlock()
	if !ok || now.Before(t.iat) || !now.Before(t.iat.Add(t.exp.Sub(t.iat)/2)) {
		return upstreamToken{}, false
	}
	return t, true
}

// put stores t under key, first forgetting everything when the cache is
// full: cheaper than choosing victims, and the next requests re-mint.
func (c *upstreamCache) put(key string, t upstreamToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[key] = t
}

func (c *upstreamCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
