package authn

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
)

func TestNewKeyFileErrors(t *testing.T) {
	k := sharedKeys()
	f := writeKeyFiles(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string { return writeFile(t, f.dir, name, data) }
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"nothing configured", Options{}, "no credential source"},
		{"signing key missing", Options{SigningKeyFile: f.dir + "/nope.pem"}, "nope.pem"},
		{"short HMAC secret", Options{SigningKeyFile: write("short.secret", []byte("too short\n"))}, "short.secret: HMAC secret is 9 bytes"},
		{"RSA private key as signing key", Options{SigningKeyFile: write("rsa.key", pkcs8PEM(t, k.rsa))}, "rsa.key: *rsa.PrivateKey is not supported"},
		{"public key as signing key", Options{SigningKeyFile: f.rsaPub}, "rsa.pub.pem: PEM block \"PUBLIC KEY\""},
		{"broken PEM signing key", Options{SigningKeyFile: write("broken.pem", []byte("-----BEGIN PRIVATE KEY-----\nnope\n"))}, "broken.pem: invalid PEM"},
		{"public key file missing", Options{PublicKeyFiles: []string{f.dir + "/missing.pem"}}, "missing.pem"},
		{"public key file empty", Options{PublicKeyFiles: []string{write("empty.pem", nil)}}, "empty.pem: no PEM public key"},
		{"private key as public key", Options{PublicKeyFiles: []string{f.edPriv}}, "ed25519.pem: PEM block \"PRIVATE KEY\""},
		{"small RSA key", Options{PublicKeyFiles: []string{write("small.pem", pkixPEM(t, &small.PublicKey))}}, "small.pem: RSA key is 1024 bits"},
		{"JWKS URL without scheme", Options{JWKSURL: "issuer.test/jwks"}, "JWKSURL \"issuer.test/jwks\""},
		{"negative leeway", Options{SigningKeyFile: f.edPriv, Leeway: -1}, "Leeway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPublicKeyFileFormats(t *testing.T) {
	k := sharedKeys()
	dir := t.TempDir()
	multi := append(pkixPEM(t, k.ed.Public()), pemBytes(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey))...)
	multi = append(multi, certPEM(t, k.ec)...)
	keys, err := loadPublicKeys(writeFile(t, dir, "multi.pem", multi))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, key := range keys {
		got = append(got, key.algs[0])
	}
	if want := "EdDSA,RS256,ES256"; strings.Join(got, ",") != want {
		t.Errorf("algs: got %s, want %s", strings.Join(got, ","), want)
	}
}
