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

// Sweep deletes every token whose expiry has passed, used or not, and every
// browser session past its Expires, walking the two expiry indexes from
// their oldest entries. Used tokens are kept until their expiry so that
// replays report latch.ErrUsedToken. It returns how many records (tokens
// and sessions) it removed; on error, the count is of those already
// committed. Expiry is checked on every read, so Sweep only reclaims space.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	done, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer done()

	tokens, err := s.sweepIndex(ctx, bucketTokenExpiry, s.sweepToken)
	if tokens > 0 {
		s.log.Debug("swept expired reset tokens", "removed", tokens)
	}
	if err != nil {
		return tokens, err
	}
	sessions, err := s.sweepIndex(ctx, bucketSessionExpiry, s.sweepSession)
	if sessions > 0 {
		s.log.Debug("swept expired browser sessions", "removed", sessions)
	}
	return tokens + sessions, err
}

// sweepIndex deletes the entries of an expiry index (bucketTokenExpiry's
// layout) whose expiry is at or before the clock, at most s.sweepBatch per
// transaction, calling drop in the same transaction for each well-formed
// entry's 32-byte id. drop reports whether it removed a record; the count
// of those is returned.
func (s *Store) sweepIndex(ctx context.Context, index string, drop func(tx *bolt.Tx, id [32]byte) (bool, error)) (int, error) {
	removed := 0
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		n, seen := 0, 0
		// Keys below limit have expiry <= now: expired (see checkToken and
		// SessionRecord.CheckLive).
		limit := expiryKey(s.now().Add(1), TokenHash{})
		err := s.update(func(tx *bolt.Tx) error {
			n = 0
			var keys [][]byte
			c := tx.Bucket([]byte(index)).Cursor()
			for k, _ := c.First(); k != nil && len(keys) < s.sweepBatch; k, _ = c.Next() {
				if bytes.Compare(k, limit) >= 0 {
					break
				}
				keys = append(keys, bytes.Clone(k))
			}
			seen = len(keys)
			for _, k := range keys {
				if err := tx.Bucket([]byte(index)).Delete(k); err != nil {
					return err
				}
				id, ok := expiryKeyHash(k)
				if !ok {
					// A damaged index entry: it names no record, so it
					// only goes (and is not counted).
					s.log.Warn("removed a malformed expiry index entry", "index", index, "len", len(k))
					continue
				}
				ok, err := drop(tx, id)
				if err != nil {
					return err
				}
				if ok {
					n++
				}
			}
			return nil
		})
		if err != nil {
			return removed, err
		}
		removed += n
		if seen < s.sweepBatch {
			return removed, nil
		}
	}
}

// sweepToken deletes an expired token's record and its user index entry.
// It counts even when the record is already gone, as Sweep always has.
func (s *Store) sweepToken(tx *bolt.Tx, h TokenHash) (bool, error) {
	r, err := getToken(tx, h)
	if err != nil {
		return false, err
	}
	return true, deleteToken(tx, h, r)
}

// sweepSession deletes an expired session's record and its user index
// entry; a dangling expiry entry (no record) is not counted.
func (s *Store) sweepSession(tx *bolt.Tx, id sessionID) (bool, error) {
	r, err := getSession(tx, id)
	if err != nil || r == nil {
		return false, err
	}
	return true, deleteSession(tx, id, r)
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
			s.log.Warn("sweeping expired tokens and sessions failed", "err", err)
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

// expiryKeyHash returns the token hash or session key of an expiry index
// key (see bucketTokenExpiry, bucketSessionExpiry), or false if the key
// does not have that shape.
func expiryKeyHash(k []byte) (TokenHash, bool) {
	if len(k) != 8+len(TokenHash{}) {
		return TokenHash{}, false
	}
	return TokenHash(k[8:]), true
}
