package resetstore

import bolt "go.etcd.io/bbolt"

// Bucket names for tests that count records.
const (
	BucketUsers       = bucketUsers
	BucketTokens      = bucketTokens
	BucketTokenExpiry = bucketTokenExpiry
	BucketUserTokens  = bucketUserTokens

	BucketSessions      = bucketSessions
	BucketSessionExpiry = bucketSessionExpiry
	BucketUserSessions  = bucketUserSessions
)

// BucketLen returns the number of keys in the named bucket.
func BucketLen(s *Store, name string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket([]byte(name)).Stats().KeyN
		return nil
	})
	return n, err
}

// SetBatchHook installs f to be called by the issuer goroutine with each
// group's size before its transaction. Call it before issuing.
func SetBatchHook(s *Store, f func(n int)) { s.testHookBatch = f }

// RawBucket returns a copy of every value in the named bucket, for tests that
// check what reaches the disk.
func RawBucket(s *Store, name string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}

// SetSweepBatch sets how many records one Sweep transaction deletes.
func SetSweepBatch(s *Store, n int) { s.sweepBatch = n }

// QueueLen reports how many issuance requests wait for the issuer.
func QueueLen(s *Store) int { return len(s.issueq) }

// PutRaw writes key -> value into the named bucket as it is, for tests of
// damaged files.
func PutRaw(s *Store, name string, key, value []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(name)).Put(key, value) })
}
