package authn

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Mint signs a token for sub with latch's own key (EdDSA for an Ed25519 key,
// HS256 for an HMAC secret). It sets iss, aud, sub, email (= sub), the roles
// claim (Options.RolesClaim), iat, nbf, exp (= now + ttl) and a random jti,
// and names the key in the kid header. It returns ErrNoSigningKey when
// Options.SigningKeyFile is empty.
func (a *Authenticator) Mint(sub string, roles []string, ttl time.Duration) (token string, exp time.Time, err error) {
	if a.signing == nil {
		return "", time.Time{}, ErrNoSigningKey
	}
	if sub == "" {
		return "", time.Time{}, errors.New("authn: mint: empty subject")
	}
	if ttl < time.Second {
		return "", time.Time{}, fmt.Errorf("authn: mint: ttl %v is shorter than a second", ttl)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("authn: mint: %w", err)
	}
	// JWT times have second precision; truncate so exp is what is encoded.
	// iat_ns keeps the issue time to the nanosecond (see issuedNanoClaim).
	precise := a.now()
	now := precise.Truncate(time.Second)
	exp = now.Add(ttl.Truncate(time.Second))
	iss, aud := a.opts.Issuer, a.opts.Audience
	if iss == "" {
		iss = DefaultIssuer
	}
	if aud == "" {
		aud = DefaultAudience
	}
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
		"jti":               hex.EncodeToString(jti[:]),
	}
	var method jwt.SigningMethod = jwt.SigningMethodEdDSA
	if a.signing.alg == "HS256" {
		method = jwt.SigningMethodHS256
	}
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = a.signing.kid
	token, err = t.SignedString(a.signing.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("authn: mint: %w", err)
	}
	return token, exp, nil
}
