package main

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/proxy/authn"
)

// ensureSigningKey creates <data_dir>/signing.key (Ed25519, PKCS#8 PEM,
// mode 0600) when no auth.signing_key_file is configured and the file is
// not there yet: the one step that writes a key, which serve (and the
// commands that sign with the default key) take before authOptions is
// used. With a configured key it does nothing.
func ensureSigningKey(cfg *config.Config) error {
	if cfg.Auth.SigningKeyFile != "" {
		return nil
	}
	p := signingKeyPath(cfg)
	if err := ensureEd25519Key(p); err != nil {
		return fmt.Errorf("signing key %s: %w", p, err)
	}
	return nil
}

// ensureEd25519Key creates an Ed25519 private key in PKCS#8 PEM at path,
// mode 0600, unless a file is already there.
func ensureEd25519Key(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	return createKeyFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// createKeyFile writes data to a new file at path, mode 0600: to a
// temporary file, synced, then linked into place, so a crash never leaves
// a half-written key that the next start refuses. It fails with
// fs.ErrExist if path exists: it never overwrites a key.
func createKeyFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".signing-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

const pidFile = "latch.pid"

// writePID records the serving process in the data dir, so a CLI command
// that finds the store locked can name it.
func writePID(dataDir string) error {
	return os.WriteFile(filepath.Join(dataDir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
}

func removePID(dataDir string) error {
	err := os.Remove(filepath.Join(dataDir, pidFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// holderPID is the pid the data dir's pid file names, or "".
func holderPID(dataDir string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, pidFile))
	if err != nil {
		return ""
	}
	pid := strings.TrimSpace(string(b))
	if _, err := strconv.Atoi(pid); err != nil {
		return ""
	}
	return pid
}

// holder describes who holds the data dir's store, for a lock error.
func holder(dataDir string) string {
	pid := holderPID(dataDir)
	if pid == "" {
		return ""
	}
	return fmt.Sprintf(" (held by latch serve, pid %s; while it runs, manage users through its /.latch/users API)", pid)
}

// reason is the cause at the bottom of err in plain words: the system
// call's "permission denied" rather than "open /x: permission denied".
func reason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Err + " (" + dns.Name + ")"
	}
	return err.Error()
}

// whoAmI names the user latch runs as, for "make it writable by ...".
func whoAmI() string { return "uid " + strconv.Itoa(os.Geteuid()) }

// prepareDataDir creates dir if needed and proves latch can write in it.
func prepareDataDir(dir string) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return dataDirErr(dir, "is a file, not a directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return dataDirErr(dir, "cannot be created: "+reason(err))
	}
	f, err := os.CreateTemp(dir, ".latch-write-test-*")
	if err != nil {
		return dataDirErr(dir, "is not writable: "+reason(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// checkStoreFile checks, for the bbolt backend, that an existing store file
// is a regular file latch may read and write, without opening it (serve may
// hold its lock).
func checkStoreFile(cfg *config.Config) error {
	if cfg.Store.Backend == "etcd" {
		return nil
	}
	p := cfg.StorePath()
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // serve creates it
	case err != nil:
		return dataDirErr(cfg.DataDir, "holds a store file latch cannot read: "+reason(err))
	case !fi.Mode().IsRegular():
		return dataDirErr(cfg.DataDir, "holds "+p+", which is not a regular file; move it away")
	}
	if err := canReadWrite(p); err != nil {
		return dataDirErr(cfg.DataDir, "holds "+p+", which latch cannot read and write: "+reason(err))
	}
	return nil
}

// checkDataDir reports what prepareDataDir would, without creating or
// writing anything: for latch check.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return dataDirErr(dir, "is a file, not a directory")
	case err == nil:
		if err := canCreateIn(dir); err != nil {
			return dataDirErr(dir, "is not writable: "+reason(err))
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return dataDirErr(dir, "cannot be created: "+reason(err))
	}
	// Missing: serve creates it, so the nearest existing parent must be a
	// directory latch may write in.
	parent := filepath.Dir(dir)
	for {
		fi, err := os.Stat(parent)
		switch {
		case err == nil && !fi.IsDir():
			return dataDirErr(dir, "cannot be created: "+syscall.ENOTDIR.Error())
		case err == nil:
			if err := canCreateIn(parent); err != nil {
				return dataDirErr(dir, "cannot be created: "+reason(err)+" in "+parent)
			}
			return nil
		case !errors.Is(err, fs.ErrNotExist):
			return dataDirErr(dir, "cannot be created: "+reason(err))
		}
		if next := filepath.Dir(parent); next != parent {
			parent = next
			continue
		}
		return dataDirErr(dir, "cannot be created: no parent directory exists")
	}
}

func dataDirErr(dir, what string) error {
	return fmt.Errorf("data_dir: %s %s; create it writable by %s, or point data_dir (LATCH_DATA_DIR) at a directory latch may write", dir, what, whoAmI())
}

// explainSigningKey returns err, which came from creating or loading the
// signing key or from building the authenticator, in the user's terms
// when the signing key is what is at fault (checkSigningKey); otherwise
// err itself. Called only on failure, so a good key is read once.
func explainSigningKey(cfg *config.Config, err error) error {
	if kerr := checkSigningKey(cfg); kerr != nil {
		return kerr
	}
	return err
}

// checkSigningKey reports why the signing key latch would use cannot be
// loaded, in the user's terms, or nil. It only reads: a default key
// (<data_dir>/signing.key) that does not exist yet is fine, serve creates
// it.
func checkSigningKey(cfg *config.Config) error {
	path, label := cfg.Auth.SigningKeyFile, "auth.signing_key_file: "
	fix := "create an Ed25519 key with: openssl genpkey -algorithm ed25519 -out " + path +
		" (or leave auth.signing_key_file empty and latch creates <data_dir>/signing.key)"
	if path == "" {
		path, label = filepath.Join(cfg.DataDir, "signing.key"), "signing key: "
		fix = "remove it and latch creates a new one (tokens it signed stop working), or set auth.signing_key_file"
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s%s does not exist; %s", label, path, fix)
	case err != nil:
		return fmt.Errorf("%scannot read %s: %s; make it a file readable by %s", label, path, reason(err), whoAmI())
	}
	if _, err := authn.New(authn.Options{SigningKeyFile: path}); err == nil {
		return nil
	}
	trimmed := bytes.TrimSpace(data)
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		if len(trimmed) < 32 {
			return fmt.Errorf("%s%s is an HMAC secret of %d bytes, want at least 32; make one with: openssl rand -base64 48 > %s, or %s",
				label, path, len(trimmed), path, fix)
		}
		return fmt.Errorf("%s%s is not a usable signing key; %s", label, path, fix)
	}
	return fmt.Errorf("%s%s holds %s, want an Ed25519 private key (PKCS#8 PEM, \"PRIVATE KEY\"); %s", label, path, pemContents(trimmed), fix)
}

// pemContents says what a PEM file that is not an Ed25519 key holds.
func pemContents(data []byte) string {
	block, _ := pem.Decode(data)
	if block == nil {
		return "a broken PEM block"
	}
	if block.Type != "PRIVATE KEY" {
		return fmt.Sprintf("a PEM %q block", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return "a PRIVATE KEY block that is not a PKCS#8 key"
	}
	switch k.(type) {
	case *rsa.PrivateKey:
		return "an RSA key"
	case *ecdsa.PrivateKey:
		return "an ECDSA key"
	case *ecdh.PrivateKey:
		return "an X25519 key"
	}
	return "an unsupported key"
}
