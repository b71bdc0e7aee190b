package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/proxy/authn"
)

const keygenSynopsis = "keygen [--type ed25519|hs256] --out FILE [--config FILE]"

// hs256SecretBytes is how many random bytes an HS256 secret holds. They are
// written base64-encoded (64 characters), as `openssl rand -base64 48`
// prints them; latch's loader uses the trimmed text itself as the secret,
// which must be at least 32 bytes.
const hs256SecretBytes = 48

// cmdKeygen writes a new signing key latch accepts as auth.signing_key_file:
// an Ed25519 private key in PKCS#8 PEM (the default, the same file serve
// creates as <data_dir>/signing.key) or an HS256 secret. The file is made
// with mode 0600 and never overwritten.
func cmdKeygen(e *env, args []string) error {
	fs := newFlags("keygen", keygenSynopsis, e.stderr)
	typ := fs.String("type", "ed25519", "key type: ed25519 (EdDSA; PKCS#8 PEM) or hs256 (an HMAC secret, 64 base64 characters)")
	out := fs.String("out", "", "the file to write (mode 0600); an existing file is never overwritten")
	path := fs.String("config", "", "configuration file (YAML): without --out, write the key it names (auth.signing_key_file, else <data_dir>/signing.key)")
	if done, err := parse(fs, args); done {
		return err
	}
	if *typ != "ed25519" && *typ != "hs256" {
		fmt.Fprintf(e.stderr, "latch keygen: --type %q: want ed25519 or hs256\n", *typ)
		fs.Usage()
		return errUsage
	}
	file := *out
	if file == "" && *path != "" {
		cfg, err := config.Load(*path, e.environ)
		if err != nil {
			return oneLine(err)
		}
		file = cfg.Auth.SigningKeyFile
		if file == "" {
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return fmt.Errorf("data_dir: %s cannot be created: %s", cfg.DataDir, reason(err))
			}
			file = filepath.Join(cfg.DataDir, "signing.key")
		}
	}
	if file == "" {
		fmt.Fprintln(e.stderr, "latch keygen: --out (or --config) is required")
		fs.Usage()
		return errUsage
	}
	if err := writeKey(file, *typ); err != nil {
		return err
	}
	// Load it the way serve does, so a key keygen writes is one latch takes.
	if _, err := authn.New(authn.Options{SigningKeyFile: file}); err != nil {
		return fmt.Errorf("keygen: the key written to %s does not load: %w", file, err)
	}
	fmt.Fprintf(e.stdout, "wrote %s (%s, mode 0600)\n", file, *typ)
	return nil
}

// writeKey creates file with a new key of typ, refusing an existing file
// (or a symlink, even a dangling one, at that name).
func writeKey(file, typ string) error {
	exists := fmt.Errorf("keygen: %s already exists; not overwriting it (remove it first to replace the key)", file)
	if _, err := os.Lstat(file); err == nil {
		return exists
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keygen: %s: %s", file, reason(err))
	}
	var err error
	switch typ {
	case "ed25519":
		err = ensureEd25519Key(file) // createKeyFile: never overwrites, mode 0600
	case "hs256":
		err = writeHS256(file)
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		return exists
	case err != nil:
		return fmt.Errorf("keygen: cannot write %s: %s", file, reason(err))
	}
	return nil
}

func writeHS256(file string) error {
	raw := make([]byte, hs256SecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	return createKeyFile(file, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"))
}
