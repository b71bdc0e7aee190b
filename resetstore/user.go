package resetstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	bolt "go.etcd.io/bbolt"
)

// User is a user account as callers see it. It never carries the password
// hash.
type User struct {
	// Email is the lowercased email address, the user's unique key.
	Email string
	// Roles are the user's roles in the order last set; nil means none.
	Roles []string
	// HasPassword is false for a user who can only get in through a reset
	// link.
	HasPassword bool
	// Created is when the user was added.
	Created time.Time
	// PasswordChanged is when the password was last set; zero if never
	// (AddUser with a password counts as setting it).
	PasswordChanged time.Time
	// Generation is the user's session generation (see
	// UserRecord.Generation): what a login token is tied to.
	Generation uint64
}

// cloneRoles copies roles so callers cannot alias stored state; none is nil.
func cloneRoles(roles []string) []string {
	if len(roles) == 0 {
		return nil
	}
	return slices.Clone(roles)
}

const maxEmailLen = 254

// normalizeEmail lower-cases the ASCII letters of email (only those:
// Unicode folding would make "admİn@example.com", U+0130, the same user as
// "admin@example.com" while the policy and the logs see two) and checks it has the shape local@domain
// without spaces or control characters.
func normalizeEmail(email string) (string, error) {
	if email == "" || len(email) > maxEmailLen {
		return "", ErrInvalidEmail
	}
	at := strings.IndexByte(email, '@')
	if at <= 0 || at == len(email)-1 || strings.Count(email, "@") != 1 {
		return "", ErrInvalidEmail
	}
	for _, r := range email {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return "", ErrInvalidEmail
		}
	}
	b := []byte(email)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b), nil
}

func getUser(tx *bolt.Tx, key string) (*UserRecord, error) {
	v := tx.Bucket([]byte(bucketUsers)).Get([]byte(key))
	if v == nil {
		return nil, ErrUserNotFound
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
// only get in through a reset link. It fails with ErrUserExists if the email
// is taken, compared case-insensitively.
func (s *Store) AddUser(ctx context.Context, email string, roles []string, password string) (User, error) {
	key, err := normalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return User{}, err
	}
	defer done()

	now := s.now()
	rec := &UserRecord{Email: key, Roles: cloneRoles(roles), Created: now, Generation: NewGeneration(0)}
	if password != "" {
		if rec.PasswordHash, err = hashPassword(password, s.hash); err != nil {
			return User{}, err
		}
		rec.PasswordChanged = now
	}
	err = s.update(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(bucketUsers)).Get([]byte(key)) != nil {
			return ErrUserExists
		}
		return putUser(tx, rec)
	})
	if err != nil {
		return User{}, err
	}
	s.log.Debug("user added", "email", key)
	return rec.User(), nil
}

// GetUser returns the user with that email (any case).
func (s *Store) GetUser(ctx context.Context, email string) (User, error) {
	key, err := normalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return User{}, err
	}
	defer done()

	var u User
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
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	done, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()

	var users []User
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

// DeleteUser removes the user and all of the user's reset tokens.
func (s *Store) DeleteUser(ctx context.Context, email string) error {
	key, err := normalizeEmail(email)
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
			return ErrUserNotFound
		}
		if _, err := dropUserTokens(tx, key, false); err != nil {
			return err
		}
		return users.Delete([]byte(key))
	})
	if err == nil {
		s.log.Debug("user deleted", "email", key)
	}
	return err
}

// SetRoles replaces the user's roles. It keeps the user's Generation: a
// session serves the roles stored now (see proxy's session check), so a
// role change takes effect without ending it.
func (s *Store) SetRoles(ctx context.Context, email string, roles []string) (User, error) {
	key, err := normalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return User{}, err
	}
	defer done()

	var u User
	err = s.update(func(tx *bolt.Tx) error {
		r, err := getUser(tx, key)
		if err != nil {
			return err
		}
		r.Roles = cloneRoles(roles)
		u = r.User()
		return putUser(tx, r)
	})
	return u, err
}

// SetPassword sets the user's password and expires all of the user's unused
// reset tokens. The password must not be empty.
func (s *Store) SetPassword(ctx context.Context, email, password string) error {
	key, err := normalizeEmail(email)
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
	h, err := hashPassword(password, s.hash)
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
func (s *Store) VerifyPassword(ctx context.Context, email, password string) (User, bool, error) {
	done, err := s.enter(ctx)
	if err != nil {
		return User{}, false, err
	}
	defer done()

	var rec *UserRecord
	if key, kerr := normalizeEmail(email); kerr == nil {
		err = s.db.View(func(tx *bolt.Tx) error {
			r, err := getUser(tx, key)
			if err == ErrUserNotFound {
				return nil
			}
			rec = r
			return err
		})
		if err != nil {
			return User{}, false, err
		}
	}
	return VerifyUser(rec, password, s.dummyHash)
}
