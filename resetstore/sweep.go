package resetstore

import (
	"bytes"
	"context"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// defaultSweepBatch bounds how many records one Sweep transaction deletes.
const defaultSweepBatch = 1000

// Sweep deletes every token whose expiry has passed, used or not, walking the
// expiry index from its oldest entry. Used tokens are kept until their
// expiry so that replays report latch.ErrUsedToken. It returns how many records it
// removed; on error, the count is of those already committed.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	done, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer done()

	removed := 0
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		n, seen := 0, 0
		now := s.now()
		// Keys below limit have expiry <= now: expired (see checkToken).
		limit := expiryKey(now.Add(1), TokenHash{})
		err := s.update(func(tx *bolt.Tx) error {
			n = 0
			var keys [][]byte
			c := tx.Bucket([]byte(bucketTokenExpiry)).Cursor()
			for k, _ := c.First(); k != nil && len(keys) < s.sweepBatch; k, _ = c.Next() {
				if bytes.Compare(k, limit) >= 0 {
					break
				}
				keys = append(keys, bytes.Clone(k))
			}
			seen = len(keys)
			for _, k := range keys {
				if err := tx.Bucket([]byte(bucketTokenExpiry)).Delete(k); err != nil {
					return err
				}
				h, ok := expiryKeyHash(k)
				if !ok {
					// A damaged index entry: it names no token, so it
					// only goes (and is not counted).
					s.log.Warn("removed a malformed token expiry index entry", "len", len(k))
					continue
				}
				r, err := getToken(tx, h)
				if err != nil {
					return err
				}
				if err := deleteToken(tx, h, r); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return removed, err
		}
		removed += n
		if seen < s.sweepBatch {
			if removed > 0 {
				s.log.Debug("swept expired reset tokens", "removed", removed)
			}
			return removed, nil
		}
	}
}

// RunSweeper calls Sweep every interval (zero or negative means one minute)
// until ctx is done or the store is closed. Errors are logged, not returned.
func (s *Store) RunSweeper(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Sweep(ctx); err != nil {
			if errors.Is(err, ErrClosed) || ctx.Err() != nil {
				return
			}
			s.log.Warn("sweeping reset tokens failed", "err", err)
		}
	}
}

// ActiveTokens counts tokens that are neither expired nor used.
func (s *Store) ActiveTokens(ctx context.Context) (int, error) {
	done, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer done()

	n := 0
	now := s.now()
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketTokenExpiry)).Cursor()
		// First key whose expiry is strictly after now.
		for k, _ := c.Seek(expiryKey(now.Add(1), TokenHash{})); k != nil; k, _ = c.Next() {
			h, ok := expiryKeyHash(k)
			if !ok {
				continue // a damaged index entry; Sweep removes it
			}
			r, err := getToken(tx, h)
			if err != nil {
				return err
			}
			if r != nil && r.Used.IsZero() {
				n++
			}
		}
		return nil
	})
	return n, err
}

// expiryKeyHash returns the token hash of an expiry index key (see
// bucketTokenExpiry), or false if the key does not have that shape.
func expiryKeyHash(k []byte) (TokenHash, bool) {
	if len(k) != 8+len(TokenHash{}) {
		return TokenHash{}, false
	}
	return TokenHash(k[8:]), true
}
