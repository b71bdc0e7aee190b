package resetstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/latch-dev/latch"
	bolt "go.etcd.io/bbolt"
)

// cloneRoles copies roles so callers cannot alias stored state; none is nil.
func cloneRoles(roles []string) []string {
	if len(roles) == 0 {
		return nil
	}
	return slices.Clone(roles)
}

func getUser(tx *bolt.Tx, key string) (*UserRecord, error) {
	v := tx.Bucket([]byte(bucketUsers)).Get([]byte(key))
	if v == nil {
		return nil, latch.ErrUserNotFound
	}
	var r UserRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("resetstore: decoding user %q: %w", key, err)
	}
	return &r, nil
}

func putUser(tx *bolt.Tx, r *UserRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketUsers)).Put([]byte(r.Email), v)
}

// AddUser adds a user. An empty password means the user has none and can
// only get in through a reset link. It fails with latch.ErrUserExists if the email
// is taken, compared case-insensitively.
func (s *Store) AddUser(ctx context.Context, email string, roles []string, password string) (latch.User, error) {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return latch.User{}, err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return latch.User{}, err
	}
	defer done()

	now := s.now()
	rec := &UserRecord{Email: key, Roles: cloneRoles(roles), Created: now, Generation: NewGeneration(0)}
	if password != "" {
		if rec.PasswordHash, err = HashPassword(password, s.hash); err != nil {
			return latch.User{}, err
		}
		rec.PasswordChanged = now
	}
	err = s.update(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(bucketUsers)).Get([]byte(key)) != nil {
			return latch.ErrUserExists
		}
		return putUser(tx, rec)
	})
	if err != nil {
		return latch.User{}, err
	}
	s.log.Debug("user added", "email", key)
	return rec.User(), nil
}

// GetUser returns the user with that email (any case).
func (s *Store) GetUser(ctx context.Context, email string) (latch.User, error) {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return latch.User{}, err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return latch.User{}, err
	}
	defer done()

	var u latch.User
	err = s.db.View(func(tx *bolt.Tx) error {
		r, err := getUser(tx, key)
		if err != nil {
			return err
		}
		u = r.User()
		return nil
	})
	return u, err
}

// ListUsers returns every user, ordered by email.
func (s *Store) ListUsers(ctx context.Context) ([]latch.User, error) {
	done, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()

	var users []latch.User
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketUsers)).ForEach(func(k, v []byte) error {
			var r UserRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("resetstore: decoding user %q: %w", k, err)
			}
			users = append(users, r.User())
			return nil
		})
	})
	return users, err
}

// DeleteUser removes the user, all of the user's reset tokens and all of
// the user's browser sessions, in one transaction.
func (s *Store) DeleteUser(ctx context.Context, email string) error {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	err = s.update(func(tx *bolt.Tx) error {
		users := tx.Bucket([]byte(bucketUsers))
		if users.Get([]byte(key)) == nil {
			return latch.ErrUserNotFound
		}
		if _, err := dropUserTokens(tx, key, false); err != nil {
			return err
		}
		if _, err := dropUserSessions(tx, key); err != nil {
			return err
		}
		return users.Delete([]byte(key))
	})
	if err == nil {
		s.log.Debug("user deleted", "email", key)
	}
	return err
}

// SetRoles replaces the user's roles and, in the same transaction, ends
// all of the user's browser sessions. It keeps the user's Generation: a
// login token serves the roles stored now (see proxy's session check), so
// a role change takes effect without ending it.
func (s *Store) SetRoles(ctx context.Context, email string, roles []string) (latch.User, error) {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return latch.User{}, err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return latch.User{}, err
	}
	defer done()

	var u latch.User
	err = s.update(func(tx *bolt.Tx) error {
		r, err := getUser(tx, key)
		if err != nil {
			return err
		}
		r.Roles = cloneRoles(roles)
		u = r.User()
		if _, err := dropUserSessions(tx, key); err != nil {
			return err
		}
		return putUser(tx, r)
	})
	return u, err
}

// SetPassword sets the user's password and, in the same transaction,
// expires all of the user's unused reset tokens and ends all of the user's
// browser sessions. The password must not be empty.
func (s *Store) SetPassword(ctx context.Context, email, password string) error {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return err
	}
	if password == "" {
		return ErrEmptyPassword
	}
	done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	// Hash before the transaction: argon2 must not hold the write lock.
	h, err := HashPassword(password, s.hash)
	if err != nil {
		return err
	}
	now := s.now()
	err = s.update(func(tx *bolt.Tx) error {
		r, err := getUser(tx, key)
		if err != nil {
			return err
		}
		r.PasswordHash, r.PasswordChanged = h, now
		r.Generation = NewGeneration(r.Generation)
		if err := putUser(tx, r); err != nil {
			return err
		}
		if _, err := dropUserSessions(tx, key); err != nil {
			return err
		}
		_, err = dropUserTokens(tx, key, true)
		return err
	})
	if err == nil {
		s.log.Debug("password set", "email", key)
	}
	return err
}

// VerifyPassword reports whether password is the user's password. The
// returned User, Generation included, is the record the hash was read with,
// so a token minted from it is tied to the state before the (slow) check:
// a password set meanwhile ends it. A denial
// is not an error: an unknown or malformed email, a user without a password
// and a wrong password all return false with a nil error, after an argon2id
// computation of about the same cost. err is only for a store failure.
func (s *Store) VerifyPassword(ctx context.Context, email, password string) (latch.User, bool, error) {
	done, err := s.enter(ctx)
	if err != nil {
		return latch.User{}, false, err
	}
	defer done()

	var rec *UserRecord
	if key, kerr := latch.NormalizeEmail(email); kerr == nil {
		err = s.db.View(func(tx *bolt.Tx) error {
			r, err := getUser(tx, key)
			if err == latch.ErrUserNotFound {
				return nil
			}
			rec = r
			return err
		})
		if err != nil {
			return latch.User{}, false, err
		}
	}
	return VerifyUser(rec, password, s.dummyHash)
}
