package resetstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/latch-dev/latch"
	bolt "go.etcd.io/bbolt"
)

// Record is one entry of an Export, and what Import reads: exactly one of
// User and Token is set. Records carry password hashes and token hashes,
// never passwords or tokens, so copying them between backends (latch store
// migrate) keeps every password and every live reset link working.
type Record struct {
	User  *UserRecord
	Token *TokenRecord
}

// UserRecord is a stored user with everything a backend keeps. Its JSON
// form is the value both backends store (bbolt's users bucket, etcd's users/
// keys), so a migration copies it unchanged.
type UserRecord struct {
	// Email is the lowercased email address.
	Email string `json:"email"`
	// Roles are the user's roles; nil means none.
	Roles []string `json:"roles,omitempty"`
	// PasswordHash is the PHC-encoded argon2id hash; empty means no password.
	PasswordHash string `json:"password_hash,omitempty"`
	// Created is when the user was added.
	Created time.Time `json:"created"`
	// PasswordChanged is when the password was last set; zero if never.
	PasswordChanged time.Time `json:"password_changed,omitzero"`
	// ResetIssued is when the user's last reset token was issued (the rate
	// limit counts from it); zero if never.
	ResetIssued time.Time `json:"reset_issued,omitzero"`
	// Generation identifies the user's state for sessions: a random
	// non-zero number drawn again (never to the same value) whenever the
	// password is set and when the user is created, so a deleted and
	// re-created user has another one. latch's login tokens carry it and
	// are refused once it differs. Zero in records written before it
	// existed; they keep it until their next change.
	Generation uint64 `json:"gen,omitempty"`
}

// User is the record as callers see it: without the hash.
func (r *UserRecord) User() latch.User {
	return latch.User{
		Email:           r.Email,
		Roles:           cloneRoles(r.Roles),
		HasPassword:     r.PasswordHash != "",
		Created:         r.Created,
		PasswordChanged: r.PasswordChanged,
		Generation:      r.Generation,
	}
}

// clone copies r so the caller cannot alias the stored roles.
func (r *UserRecord) clone() *UserRecord {
	c := *r
	c.Roles = cloneRoles(r.Roles)
	return &c
}

// TokenRecord is a stored reset token.
type TokenRecord struct {
	// Hash is the SHA-256 of the token's raw bytes.
	Hash TokenHash
	// Email is the lowercased email of the token's user.
	Email string
	// Created and Expires bound the token's life.
	Created, Expires time.Time
	// Used is when the token was redeemed; zero if it was not.
	Used time.Time
}

// Export calls fn with every user (ordered by email), then with every token
// that has not expired, used or not, all from one consistent read. It stops
// at fn's first error and returns it. Browser sessions are not exported:
// they are ephemeral, and after a migration their users log in again.
func (s *Store) Export(ctx context.Context, fn func(Record) error) error {
	done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	now := s.now()
	return s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket([]byte(bucketUsers)).ForEach(func(k, v []byte) error {
			var r UserRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("resetstore: decoding user %q: %w", k, err)
			}
			return fn(Record{User: &r})
		})
		if err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketTokens)).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var r tokenRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("resetstore: decoding token record: %w", err)
			}
			if len(k) != len(TokenHash{}) || r.Purpose != purposeReset || !now.Before(r.Expires) {
				return nil
			}
			return fn(Record{Token: &TokenRecord{Hash: TokenHash(k), Email: r.Email,
				Created: r.Created, Expires: r.Expires, Used: r.Used}})
		})
	})
}

// Import writes recs in one transaction: a user replaces the stored user of
// that email (its tokens stay, its browser sessions end, as with any change
// of a user's password or roles), a token replaces the stored token of that
// hash. A token whose user is neither stored nor earlier in recs is refused
// with an error wrapping latch.ErrUserNotFound, and then nothing is written;
// expired tokens are skipped. Emails are normalised as AddUser does.
func (s *Store) Import(ctx context.Context, recs []Record) error {
	done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	now := s.now()
	return s.update(func(tx *bolt.Tx) error {
		for _, rec := range recs {
			switch {
			case rec.User != nil:
				u := rec.User
				key, err := latch.NormalizeEmail(u.Email)
				if err != nil {
					return fmt.Errorf("importing user %q: %w", u.Email, err)
				}
				r := u.clone()
				r.Email = key
				if _, err := dropUserSessions(tx, key); err != nil {
					return err
				}
				if err := putUser(tx, r); err != nil {
					return err
				}
			case rec.Token != nil:
				t := rec.Token
				if !now.Before(t.Expires) {
					continue
				}
				key, err := latch.NormalizeEmail(t.Email)
				if err != nil {
					return fmt.Errorf("importing a token of %q: %w", t.Email, err)
				}
				if _, err := getUser(tx, key); err != nil {
					return fmt.Errorf("importing a token of %q: %w", key, err)
				}
				if old, err := getToken(tx, t.Hash); err != nil {
					return err
				} else if old != nil {
					if err := deleteToken(tx, t.Hash, old); err != nil {
						return err
					}
				}
				r := &tokenRecord{Email: key, Purpose: purposeReset, Created: t.Created, Expires: t.Expires, Used: t.Used}
				if err := putToken(tx, t.Hash, r); err != nil {
					return err
				}
				if err := tx.Bucket([]byte(bucketTokenExpiry)).Put(expiryKey(r.Expires, t.Hash), nil); err != nil {
					return err
				}
				if err := tx.Bucket([]byte(bucketUserTokens)).Put(userTokenKey(key, t.Hash), nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
