package authn

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the fixed time every test clock starts at.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: testNow} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testKeys is one set of freshly generated keys, shared by the tests of a
// run because RSA generation is slow under -race.
type testKeys struct {
	ed      ed25519.PrivateKey
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey // P-256
	ec384   *ecdsa.PrivateKey
	hmac    []byte
	otherEd ed25519.PrivateKey // configured nowhere
}

var sharedKeys = sync.OnceValue(func() *testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &testKeys{hmac: make([]byte, 48)}
	var err error
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	_, k.otherEd, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, err = rand.Read(k.hmac)
	must(err)
	for i, b := range k.hmac { // printable, so the file reads like a secret
		k.hmac[i] = 'a' + b%26
	}
	return k
})

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pemBytes(t testing.TB, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkixPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemBytes(t, "PUBLIC KEY", der)
}

func pkcs8PEM(t testing.TB, priv any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pemBytes(t, "PRIVATE KEY", der)
}

func certPEM(t *testing.T, priv *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pemBytes(t, "CERTIFICATE", der)
}

// files writes the shared keys to a fresh directory.
type keyFiles struct {
	dir, edPriv, hmac, rsaPub, ecCert, rsaPubPEM string
}

func writeKeyFiles(t *testing.T) keyFiles {
	t.Helper()
	k := sharedKeys()
	dir := t.TempDir()
	rsaPub := pkixPEM(t, &k.rsa.PublicKey)
	return keyFiles{
		dir:       dir,
		edPriv:    writeFile(t, dir, "ed25519.pem", pkcs8PEM(t, k.ed)),
		hmac:      writeFile(t, dir, "hmac.secret", append(append([]byte{}, k.hmac...), '\n')),
		rsaPub:    writeFile(t, dir, "rsa.pub.pem", rsaPub),
		ecCert:    writeFile(t, dir, "ec.crt", certPEM(t, k.ec)),
		rsaPubPEM: string(rsaPub),
	}
}

// claims returns valid claims for the test issuer and audience; set
// overrides (a nil value deletes the claim).
func claims(set map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss":   "https://issuer.test",
		"aud":   "latch-test",
		"sub":   "user-123",
		"email": "ada@example.com",
		"roles": []string{"reader", "writer"},
		"iat":   testNow.Add(-time.Minute).Unix(),
		"exp":   testNow.Add(time.Hour).Unix(),
	}
	for k, v := range set {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}
