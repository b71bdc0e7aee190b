package authn

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// jwk holds the RFC 7517/7518 members authn understands.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS decodes a JWK Set. Keys that are not usable signature keys are
// skipped and described in skipped, so one odd key never hides the others;
// an error means the document as a whole is unusable.
func parseJWKS(data []byte) (keys []verifyKey, skipped []string, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("decode JWKS: %w", err)
	}
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		k, err := j.verifyKey()
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d (kid %.64q): %v", i, j.Kid, err))
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, errors.New("JWKS holds no usable signature keys")
	}
	return keys, skipped, nil
}

func (j jwk) verifyKey() (verifyKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return verifyKey{}, fmt.Errorf("use %q is not \"sig\"", j.Use)
	}
	var pub any
	switch j.Kty {
	case "RSA":
		n, err := decodeB64(j.N)
		if err != nil || len(n) == 0 {
			return verifyKey{}, errors.New("bad RSA modulus n")
		}
		e, err := decodeB64(j.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return verifyKey{}, errors.New("bad RSA exponent e")
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		if exp < 3 || exp%2 == 0 {
			return verifyKey{}, errors.New("bad RSA exponent e")
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return verifyKey{}, fmt.Errorf("EC curve %q is not supported", j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, errX := decodeB64(j.X)
		y, errY := decodeB64(j.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return verifyKey{}, errors.New("bad EC coordinates")
		}
		point := append(append([]byte{4}, x...), y...)
		k, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return verifyKey{}, fmt.Errorf("bad EC point: %w", err)
		}
		pub = k
	case "OKP":
		if j.Crv != "Ed25519" {
			return verifyKey{}, fmt.Errorf("OKP curve %q is not supported", j.Crv)
		}
		x, err := decodeB64(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return verifyKey{}, errors.New("bad Ed25519 key x")
		}
		pub = ed25519.PublicKey(x)
	default:
		// "oct" lands here on purpose: a symmetric key from a URL would let
		// whoever serves the URL mint tokens, and invite alg confusion.
		return verifyKey{}, fmt.Errorf("kty %q is not supported", j.Kty)
	}
	k, err := newVerifyKey(pub, j.Kid)
	if err != nil {
		return verifyKey{}, err
	}
	if j.Alg != "" {
		if !k.allows(j.Alg) {
			return verifyKey{}, fmt.Errorf("alg %q does not suit a %s key", j.Alg, j.Kty)
		}
		k.algs = []string{j.Alg}
	}
	return k, nil
}

// decodeB64 decodes base64url, tolerating the padding some servers add.
func decodeB64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
