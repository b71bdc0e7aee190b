package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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

// holder describes who holds the data dir's store, for a lock error.
func holder(dataDir string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, pidFile))
	if err != nil {
		return ""
	}
	pid := strings.TrimSpace(string(b))
	if _, err := strconv.Atoi(pid); err != nil {
		return ""
	}
	return fmt.Sprintf(" (held by latch serve, pid %s; while it runs, manage users through its /api/admin/user-admin API)", pid)
}
