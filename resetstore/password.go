package resetstore

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// HashParams are the argon2id parameters used for new password hashes.
// Each hash records its own parameters (PHC string format), so changing
// them later does not invalidate stored passwords. Every zero field takes
// its default, which follows OWASP's argon2id recommendation
// (m=19 MiB, t=2, p=1).
type HashParams struct {
	// Time is the number of passes over memory; zero means 2.
	Time uint32
	// MemoryKiB is the memory cost in KiB; zero means 19456 (19 MiB).
	MemoryKiB uint32
	// Threads is the degree of parallelism; zero means 1.
	Threads uint8
	// SaltLen is the random salt length in bytes; zero means 16.
	SaltLen uint32
	// KeyLen is the derived key length in bytes; zero means 32.
	KeyLen uint32
}

func (p HashParams) withDefaults() HashParams {
	if p.Time == 0 {
		p.Time = 2
	}
	if p.MemoryKiB == 0 {
		p.MemoryKiB = 19 * 1024
	}
	if p.Threads == 0 {
		p.Threads = 1
	}
	if p.SaltLen == 0 {
		p.SaltLen = 16
	}
	if p.KeyLen == 0 {
		p.KeyLen = 32
	}
	return p
}

// Bounds applied when decoding a stored hash, so a damaged record cannot
// make verification allocate without limit.
const (
	maxHashMemoryKiB = 4 * 1024 * 1024
	maxHashTime      = 64
	maxHashKeyLen    = 1024
	maxHashSaltLen   = 1024
)

var errBadHash = errors.New("resetstore: stored password hash is malformed")

var b64 = base64.RawStdEncoding

// HashPassword returns the PHC-encoded argon2id hash of password with p
// (zero fields take their defaults), the form every backend stores:
// $argon2id$v=19$m=<KiB>,t=<time>,p=<threads>$<salt>$<key>
func HashPassword(password string, p HashParams) (string, error) {
	p = p.withDefaults()
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("resetstore: reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// decodeHash parses a PHC-encoded argon2id hash.
func decodeHash(encoded string) (p HashParams, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errBadHash
	}
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &threads); err != nil {
		return p, nil, nil, errBadHash
	}
	if p.MemoryKiB == 0 || p.MemoryKiB > maxHashMemoryKiB || p.Time == 0 || p.Time > maxHashTime ||
		threads == 0 || threads > 255 {
		return p, nil, nil, errBadHash
	}
	p.Threads = uint8(threads)
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) == 0 || len(salt) > maxHashSaltLen {
		return p, nil, nil, errBadHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) == 0 || len(key) > maxHashKeyLen {
		return p, nil, nil, errBadHash
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// checkPassword reports whether password matches the encoded hash, comparing
// in constant time. It runs the full argon2id computation whatever the result.
func checkPassword(encoded, password string) (bool, error) {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
