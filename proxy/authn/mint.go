package authn

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Mint signs a token for sub with latch's own key (EdDSA for an Ed25519 key,
// HS256 for an HMAC secret). It sets iss, aud, sub, email (= sub), the roles
// claim (Options.RolesClaim), iat, nbf, exp (= now + ttl) and a random jti,
// and names the key in the kid header. It returns ErrNoSigningKey when
// Options.SigningKeyFile is empty.
//
// A token from Mint is not tied to a stored user (it is what `latch token`
// prints, for operators): its roles are the ones given. Login tokens come
// from MintSession.
func (a *Authenticator) Mint(sub string, roles []string, ttl time.Duration) (token string, exp time.Time, err error) {
	return a.mint(sub, roles, ttl, nil)
}

// MintSession is Mint for a login: the token also carries gen, the user's
// session generation as read with the password hash, in the gen claim.
// Authenticate reports such a token of latch's own key as Bound, with its
// Generation, so the session check can refuse it once the user's state has
// changed (password set, user deleted) and serve the stored roles.
func (a *Authenticator) MintSession(sub string, roles []string, gen uint64, ttl time.Duration) (token string, exp time.Time, err error) {
	return a.mint(sub, roles, ttl, &gen)
}

func (a *Authenticator) mint(sub string, roles []string, ttl time.Duration, gen *uint64) (token string, exp time.Time, err error) {
	if a.signing == nil {
		return "", time.Time{}, ErrNoSigningKey
	}
	if sub == "" {
		return "", time.Time{}, errors.New("authn: mint: empty subject")
	}
	if ttl < time.Second {
		return "", time.Time{}, fmt.Errorf("authn: mint: ttl %v is shorter than a second", ttl)
	}
	// JWT times have second precision; truncate so exp is what is encoded.
	// iat_ns keeps the issue time to the nanosecond (see issuedNanoClaim).
	precise := a.now()
	now := precise.Truncate(time.Second)
	exp = now.Add(ttl.Truncate(time.Second))
	iss, aud := a.ownIssuer(), a.ownAudience()
	if roles == nil {
		roles = []string{}
	}
	claims := jwt.MapClaims{
		"iss":               iss,
		"aud":               aud,
		"sub":               sub,
		"email":             sub,
		a.opts.SubjectClaim: sub,
		a.opts.RolesClaim:   roles,
		"iat":               now.Unix(),
		issuedNanoClaim:     precise.UnixNano(),
		"nbf":               now.Unix(),
		"exp":               exp.Unix(),
		"jti":               newJTI(),
	}
	if gen != nil {
		claims[generationClaim] = strconv.FormatUint(*gen, 10)
	}
	token, err = a.sign(claims)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("authn: mint: %w", err)
	}
	return token, exp, nil
}

// sign signs claims with latch's own key (EdDSA for an Ed25519 key, HS256
// for an HMAC secret), naming the key in the kid header: every token latch
// signs, for itself (mint) or for an upstream (mintUpstream).
func (a *Authenticator) sign(claims jwt.Claims) (string, error) {
	var method jwt.SigningMethod = jwt.SigningMethodEdDSA
	if a.signing.alg == "HS256" {
		method = jwt.SigningMethodHS256
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = a.signing.kid
	return t.SignedString(a.signing.secret)
}

// newJTI returns a random jti: 16 bytes in hex.
func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
