package resetstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/latch-dev/latch"
	bolt "go.etcd.io/bbolt"
)

// sessionID is a session key (latch.ValidSessionKey) decoded from hex: the
// form the session buckets use. It is the same array type as TokenHash, so
// the token index key layouts (expiryKey, userTokenKey) serve sessions too.
type sessionID = [sha256.Size]byte

// parseSessionKey decodes a session key, refusing any key
// CheckSessionKey refuses (upper-case hex included).
func parseSessionKey(key string) (sessionID, error) {
	var id sessionID
	if err := CheckSessionKey(key); err != nil {
		return id, err
	}
	_, _ = hex.Decode(id[:], []byte(key)) // cannot fail: CheckSessionKey passed
	return id, nil
}

func getSession(tx *bolt.Tx, id sessionID) (*SessionRecord, error) {
	v := tx.Bucket([]byte(bucketSessions)).Get(id[:])
	if v == nil {
		return nil, nil
	}
	var r SessionRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("resetstore: decoding session record: %w", err)
	}
	return &r, nil
}

func putSession(tx *bolt.Tx, id sessionID, r *SessionRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketSessions)).Put(id[:], v)
}

// deleteSession removes a session's record and both index entries. r may
// be nil if the record is already gone; then only the record's key goes.
func deleteSession(tx *bolt.Tx, id sessionID, r *SessionRecord) error {
	if r != nil {
		if err := tx.Bucket([]byte(bucketSessionExpiry)).Delete(expiryKey(r.Expires, id)); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketUserSessions)).Delete(userTokenKey(r.Email, id)); err != nil {
			return err
		}
	}
	return tx.Bucket([]byte(bucketSessions)).Delete(id[:])
}

// dropUserSessions deletes every session of the user through the per-user
// index, and returns how many it deleted. Every change of a user's
// password, roles or existence calls it in the transaction of the change.
func dropUserSessions(tx *bolt.Tx, email string) (int, error) {
	prefix := append([]byte(email), 0)
	idx := tx.Bucket([]byte(bucketUserSessions))
	var keys [][]byte
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	n := 0
	for _, k := range keys {
		// The index entry goes whatever its shape or its record's state.
		if err := idx.Delete(k); err != nil {
			return n, err
		}
		if len(k) != len(prefix)+sha256.Size {
			continue
		}
		id := sessionID(k[len(prefix):])
		r, err := getSession(tx, id)
		if err != nil {
			return n, err
		}
		if r == nil {
			continue // dangling index entry
		}
		if err := deleteSession(tx, id, r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// CreateBrowserSession stores s under key, the hex SHA-256 of the
// session cookie's secret (latch.ValidSessionKey), with s.Email folded as
// AddUser folds it. Errors:
//   - latch.ErrUserNotFound when no user has s.Email (wrapping
//     latch.ErrInvalidEmail too when the address is malformed);
//   - an error wrapping latch.ErrSessionNotFound when key is malformed,
//     when s.Expires is not after the store's clock, or (ErrStaleSession)
//     when s.Generation is not the user's current Generation: the
//     password was set, or the user deleted and re-created, since the
//     login was checked, so the session would begin already ended;
//   - ErrSessionKeyInUse when a session already has key (callers draw a
//     fresh secret; it does not happen by chance).
//
// The session ends with any change of the user's password, roles or
// existence (see DeleteUser, SetRoles, SetPassword, RedeemResetToken,
// Import), and at s.Expires. Sessions are not exported (see Export).
func (s *Store) CreateBrowserSession(ctx context.Context, key string, sess latch.BrowserSession) error {
	id, err := parseSessionKey(key)
	if err != nil {
		return err
	}
	rec, err := NewSessionRecord(sess)
	if err != nil {
		return err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	return s.update(func(tx *bolt.Tx) error {
		u, err := getUser(tx, rec.Email)
		if err != nil {
			return err
		}
		if err := rec.CheckNew(u, s.now()); err != nil {
			return err
		}
		if tx.Bucket([]byte(bucketSessions)).Get(id[:]) != nil {
			return ErrSessionKeyInUse
		}
		if err := putSession(tx, id, rec); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketSessionExpiry)).Put(expiryKey(rec.Expires, id), nil); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketUserSessions)).Put(userTokenKey(rec.Email, id), nil)
	})
}

// BrowserSession returns the session stored under key while it is live.
// latch.ErrSessionNotFound (possibly wrapped) when key is malformed, no
// session has it, or the store's clock is not before its Expires. The
// caller still compares its Generation with the user's.
func (s *Store) BrowserSession(ctx context.Context, key string) (latch.BrowserSession, error) {
	id, err := parseSessionKey(key)
	if err != nil {
		return latch.BrowserSession{}, err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return latch.BrowserSession{}, err
	}
	defer done()

	var r *SessionRecord
	err = s.db.View(func(tx *bolt.Tx) error {
		r, err = liveSession(tx, id, s.now())
		return err
	})
	if err != nil {
		return latch.BrowserSession{}, err
	}
	return r.Session(), nil
}

// liveSession returns the session's record if it is live at now.
func liveSession(tx *bolt.Tx, id sessionID, now time.Time) (*SessionRecord, error) {
	r, err := getSession(tx, id)
	switch {
	case err != nil:
		return nil, err
	case r == nil:
		return nil, latch.ErrSessionNotFound
	}
	if err := r.CheckLive(now); err != nil {
		return nil, err
	}
	return r, nil
}

// TouchBrowserSession records at as the session's LastSeen; nothing else
// changes. latch.ErrSessionNotFound (possibly wrapped) as BrowserSession
// reports it. Each call is one fsynced transaction: call it sparingly (the
// proxy does about once a minute per session).
func (s *Store) TouchBrowserSession(ctx context.Context, key string, at time.Time) error {
	id, err := parseSessionKey(key)
	if err != nil {
		return err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	return s.update(func(tx *bolt.Tx) error {
		r, err := liveSession(tx, id, s.now())
		if err != nil {
			return err
		}
		r.LastSeen = at.Round(0)
		return putSession(tx, id, r)
	})
}

// DeleteBrowserSession ends the session stored under key (a logout). It
// is idempotent: nil when there is no such session, expired or not. A
// malformed key is refused as BrowserSession refuses it (an error
// wrapping latch.ErrSessionNotFound), so that a caller passing something
// other than a key (the cookie's secret, say) finds out.
func (s *Store) DeleteBrowserSession(ctx context.Context, key string) error {
	id, err := parseSessionKey(key)
	if err != nil {
		return err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	return s.update(func(tx *bolt.Tx) error {
		r, err := getSession(tx, id)
		if err != nil || r == nil {
			return err
		}
		return deleteSession(tx, id, r)
	})
}
