// Command boltcommit is the baseline for durable reset issuance: one bbolt
// write transaction (with its fsync) per record, sequentially, on the disk
// it is pointed at. Each record is what an issuance writes: a JSON token
// record keyed by a 32-byte hash, an expiry-index entry and a per-user
// index entry. It prints {"commits":N,"seconds":S} on stdout.
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

type record struct {
	Email   string    `json:"email"`
	Purpose string    `json:"purpose"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

func main() {
	dir := flag.String("dir", os.TempDir(), "directory for the data file (the disk under test)")
	dur := flag.Duration("duration", 3*time.Second, "how long to commit")
	flag.Parse()
	if err := run(*dir, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "boltcommit:", err)
		os.Exit(1)
	}
}

func run(dir string, dur time.Duration) error {
	path := filepath.Join(dir, "boltcommit.db")
	defer os.Remove(path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	buckets := []string{"tokens", "token_expiry", "user_tokens"}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	n := 0
	start := time.Now()
	for time.Since(start) < dur {
		var raw [32]byte
		_, _ = rand.Read(raw[:])
		h := sha256.Sum256(raw[:])
		email := fmt.Sprintf("user%02d@example.com", n%64)
		now := time.Now()
		v, _ := json.Marshal(record{Email: email, Purpose: "reset", Created: now, Expires: now.Add(24 * time.Hour)})
		exp := make([]byte, 8+len(h))
		binary.BigEndian.PutUint64(exp, uint64(now.Add(24*time.Hour).UnixNano()))
		copy(exp[8:], h[:])
		ut := append(append([]byte(email), 0), h[:]...)
		if err := db.Update(func(tx *bolt.Tx) error {
			if err := tx.Bucket([]byte("tokens")).Put(h[:], v); err != nil {
				return err
			}
			if err := tx.Bucket([]byte("token_expiry")).Put(exp, nil); err != nil {
				return err
			}
			return tx.Bucket([]byte("user_tokens")).Put(ut, nil)
		}); err != nil {
			return err
		}
		n++
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"commits": n, "seconds": time.Since(start).Seconds()})
}
