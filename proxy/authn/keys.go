package authn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
)

const (
	minHMACSecretLen = 32
	minRSABits       = 2048
)

// verifyKey is one key a token may be verified with.
type verifyKey struct {
	kid  string
	algs []string // algorithms this key may verify; derived from its type
	key  any      // ed25519.PublicKey, *rsa.PublicKey, *ecdsa.PublicKey or []byte (HMAC)
}

func (k verifyKey) allows(alg string) bool { return slices.Contains(k.algs, alg) }

// signingKey is latch's own key, used by Mint.
type signingKey struct {
	alg    string // "EdDSA" or "HS256"
	kid    string
	secret any // ed25519.PrivateKey or []byte
	verify verifyKey
}

// loadSigningKey reads an Ed25519 PKCS#8 private key PEM or an HMAC secret.
func loadSigningKey(path string) (*signingKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key file %s: %w", path, err)
	}
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		block, _ := pem.Decode(trimmed)
		if block == nil {
			return nil, fmt.Errorf("signing key file %s: invalid PEM", path)
		}
		if block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("signing key file %s: PEM block %q, want \"PRIVATE KEY\" (PKCS#8 Ed25519)", path, block.Type)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signing key file %s: %w", path, err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("signing key file %s: %T is not supported, want an Ed25519 private key", path, k)
		}
		pub := priv.Public().(ed25519.PublicKey)
		kid := okpThumbprint(pub)
		return &signingKey{
			alg: "EdDSA", kid: kid, secret: priv,
			verify: verifyKey{kid: kid, algs: []string{"EdDSA"}, key: pub},
		}, nil
	}
	if len(trimmed) < minHMACSecretLen {
		return nil, fmt.Errorf("signing key file %s: HMAC secret is %d bytes, want at least %d", path, len(trimmed), minHMACSecretLen)
	}
	secret := bytes.Clone(trimmed)
	// The kid must not reveal the secret, so it is a MAC of a fixed string.
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("latch kid"))
	kid := "hs256-" + hex.EncodeToString(m.Sum(nil)[:8])
	return &signingKey{
		alg: "HS256", kid: kid, secret: secret,
		verify: verifyKey{kid: kid, algs: []string{"HS256"}, key: secret},
	}, nil
}

// loadPublicKeys reads every PEM block in path as a public key.
func loadPublicKeys(path string) ([]verifyKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key file %s: %w", path, err)
	}
	var keys []verifyKey
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var pub any
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			return nil, fmt.Errorf("public key file %s: PEM block %q is not a public key or certificate", path, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("public key file %s: %w", path, err)
		}
		k, err := newVerifyKey(pub, "")
		if err != nil {
			return nil, fmt.Errorf("public key file %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("public key file %s: no PEM public key found", path)
	}
	return keys, nil
}

// newVerifyKey checks pub's type and strength and derives its algorithms.
// A kid of "" is replaced by the key's RFC 7638 thumbprint.
func newVerifyKey(pub any, kid string) (verifyKey, error) {
	var algs []string
	var thumb string
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return verifyKey{}, fmt.Errorf("RSA key is %d bits, want at least %d", k.N.BitLen(), minRSABits)
		}
		algs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
		thumb = rsaThumbprint(k)
	case *ecdsa.PublicKey:
		alg, crv := ecAlg(k.Curve)
		if alg == "" {
			return verifyKey{}, errors.New("ECDSA key curve is not P-256, P-384 or P-521")
		}
		algs = []string{alg}
		raw, err := k.Bytes()
		if err != nil {
			return verifyKey{}, err
		}
		size := (len(raw) - 1) / 2
		thumb = thumbprint(map[string]string{"crv": crv, "kty": "EC", "x": b64(raw[1 : 1+size]), "y": b64(raw[1+size:])})
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return verifyKey{}, errors.New("Ed25519 key has the wrong size")
		}
		algs = []string{"EdDSA"}
		thumb = okpThumbprint(k)
	default:
		return verifyKey{}, fmt.Errorf("%T keys are not supported, want RSA, ECDSA or Ed25519", pub)
	}
	if kid == "" {
		kid = thumb
	}
	return verifyKey{kid: kid, algs: algs, key: pub}, nil
}

// ecAlg maps a curve to its JWS algorithm and JWK crv name.
func ecAlg(c elliptic.Curve) (alg, crv string) {
	switch c {
	case elliptic.P256():
		return "ES256", "P-256"
	case elliptic.P384():
		return "ES384", "P-384"
	case elliptic.P521():
		return "ES512", "P-521"
	}
	return "", ""
}

// keyMatchesAlg is the last line of defence: the key handed to golang-jwt
// must have the Go type, and for ECDSA the curve, that alg requires.
func keyMatchesAlg(key any, alg string) bool {
	switch k := key.(type) {
	case []byte:
		return alg == "HS256"
	case ed25519.PublicKey:
		return alg == "EdDSA"
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		want, _ := ecAlg(k.Curve)
		return want != "" && want == alg
	}
	return false
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// thumbprint computes an RFC 7638 JWK thumbprint from the required members.
// json.Marshal sorts map keys, which is the canonical order RFC 7638 needs.
func thumbprint(members map[string]string) string {
	b, _ := json.Marshal(members)
	sum := sha256.Sum256(b)
	return b64(sum[:])
}

func rsaThumbprint(k *rsa.PublicKey) string {
	e := big64(k.E)
	return thumbprint(map[string]string{"e": b64(e), "kty": "RSA", "n": b64(k.N.Bytes())})
}

func okpThumbprint(k ed25519.PublicKey) string {
	return thumbprint(map[string]string{"crv": "Ed25519", "kty": "OKP", "x": b64(k)})
}

// big64 is the minimal big-endian encoding of a positive int.
func big64(v int) []byte {
	var out []byte
	for ; v > 0; v >>= 8 {
		out = append([]byte{byte(v)}, out...)
	}
	return out
}

// warnIfExposed logs when a secret key file is readable by group or others.
func warnIfExposed(log *slog.Logger, path string) {
	fi, err := os.Stat(path)
	if err != nil || !exposed(fi) {
		return
	}
	log.Warn("signing key file is readable by group or others", slog.String("file", path), slog.String("mode", fi.Mode().Perm().String()))
}

// exposed reports whether a key file may be read or written by others, or
// by a group other than the process's own groups. A file of mode 0440
// owned by one of the process's groups, as the kubelet mounts a Secret
// with fsGroup set, is not.
func exposed(fi os.FileInfo) bool {
	perm := fi.Mode().Perm()
	if perm&0o007 != 0 || perm&0o020 != 0 {
		return true
	}
	if perm&0o040 == 0 {
		return false
	}
	gid, ok := fileGroup(fi)
	if !ok {
		return true
	}
	if gid == os.Getgid() {
		return false
	}
	groups, _ := os.Getgroups()
	return !slices.Contains(groups, gid)
}
