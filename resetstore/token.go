package resetstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latch-dev/latch"
	bolt "go.etcd.io/bbolt"
)

const (
	tokenBytes   = 32
	purposeReset = "reset"
)

// TokenHash is the SHA-256 of a reset token's raw bytes: the only form of a
// token any backend stores.
type TokenHash = [sha256.Size]byte

// tokenRecord is the JSON value in bucketTokens.
type tokenRecord struct {
	Email   string    `json:"email"`
	Purpose string    `json:"purpose"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Used    time.Time `json:"used,omitzero"`
}

// newToken returns a fresh token and its hash.
func NewToken() (string, TokenHash, error) {
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", TokenHash{}, fmt.Errorf("resetstore: reading random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), sha256.Sum256(raw), nil
}

// parseToken decodes a token as handed out and returns its hash.
func ParseToken(token string) (TokenHash, error) {
	if base64.RawURLEncoding.DecodedLen(len(token)) != tokenBytes {
		return TokenHash{}, errTokenMalformed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != tokenBytes {
		return TokenHash{}, errTokenMalformed
	}
	return sha256.Sum256(raw), nil
}

func expiryKey(expires time.Time, h TokenHash) []byte {
	k := make([]byte, 8+len(h))
	binary.BigEndian.PutUint64(k, uint64(max(expires.UnixNano(), 0)))
	copy(k[8:], h[:])
	return k
}

func userTokenKey(email string, h TokenHash) []byte {
	k := make([]byte, 0, len(email)+1+len(h))
	k = append(k, email...)
	k = append(k, 0)
	return append(k, h[:]...)
}

func getToken(tx *bolt.Tx, h TokenHash) (*tokenRecord, error) {
	v := tx.Bucket([]byte(bucketTokens)).Get(h[:])
	if v == nil {
		return nil, nil
	}
	var r tokenRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("resetstore: decoding token record: %w", err)
	}
	return &r, nil
}

func putToken(tx *bolt.Tx, h TokenHash, r *tokenRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketTokens)).Put(h[:], v)
}

// deleteToken removes a token's record and both index entries. r may be nil
// if the record is already gone; then only the given index entries go.
func deleteToken(tx *bolt.Tx, h TokenHash, r *tokenRecord) error {
	if r != nil {
		if err := tx.Bucket([]byte(bucketTokenExpiry)).Delete(expiryKey(r.Expires, h)); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketUserTokens)).Delete(userTokenKey(r.Email, h)); err != nil {
			return err
		}
	}
	return tx.Bucket([]byte(bucketTokens)).Delete(h[:])
}

// dropUserTokens deletes the user's tokens through the per-user index,
// keeping used ones (until their expiry) if keepUsed. It returns how many
// it deleted.
func dropUserTokens(tx *bolt.Tx, email string, keepUsed bool) (int, error) {
	prefix := append([]byte(email), 0)
	var hashes []TokenHash
	c := tx.Bucket([]byte(bucketUserTokens)).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == len(prefix)+sha256.Size {
			hashes = append(hashes, TokenHash(k[len(prefix):]))
		}
	}
	n := 0
	for _, h := range hashes {
		r, err := getToken(tx, h)
		if err != nil {
			return n, err
		}
		if r == nil { // dangling index entry
			if err := tx.Bucket([]byte(bucketUserTokens)).Delete(userTokenKey(email, h)); err != nil {
				return n, err
			}
			continue
		}
		if keepUsed && !r.Used.IsZero() {
			continue
		}
		if err := deleteToken(tx, h, r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// IssueResetToken creates a reset token for the user, deleting the user's
// earlier unused tokens, and returns it with its expiry. It returns only
// after the token is committed to disk. Concurrent calls share transactions
// (group commit). A ctx cancelled before the group's transaction starts
// returns ctx.Err() and changes nothing; once the transaction has started the
// call waits for its outcome. Errors: latch.ErrInvalidEmail, latch.ErrUserNotFound,
// *latch.RateLimitError if the user was issued a token less than
// Options.MinInterval ago.
func (s *Store) IssueResetToken(ctx context.Context, email string) (string, time.Time, error) {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return "", time.Time{}, err
	}
	done, err := s.enter(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	defer done()

	token, h, err := NewToken()
	if err != nil {
		return "", time.Time{}, err
	}
	res, err := s.submitIssue(ctx, key, h)
	if err != nil {
		return "", time.Time{}, err
	}
	return token, res, nil
}

// issueInTx applies one issuance inside a group transaction. reqErr is the
// request's own refusal (unknown user, rate limited), returned before
// anything is written so the transaction can go on for the others; txErr is a
// storage failure that must abort the transaction.
func (s *Store) issueInTx(tx *bolt.Tx, email string, h TokenHash, now time.Time) (expires time.Time, reqErr, txErr error) {
	u, err := getUser(tx, email)
	if errors.Is(err, latch.ErrUserNotFound) {
		return time.Time{}, err, nil
	}
	if err != nil {
		return time.Time{}, nil, err
	}
	if err := u.CheckRateLimit(now, s.minInterval); err != nil {
		return time.Time{}, err, nil
	}
	if _, err := dropUserTokens(tx, email, true); err != nil {
		return time.Time{}, nil, err
	}
	rec := &tokenRecord{Email: email, Purpose: purposeReset, Created: now, Expires: now.Add(s.ttl)}
	if err := putToken(tx, h, rec); err != nil {
		return time.Time{}, nil, err
	}
	if err := tx.Bucket([]byte(bucketTokenExpiry)).Put(expiryKey(rec.Expires, h), nil); err != nil {
		return time.Time{}, nil, err
	}
	if err := tx.Bucket([]byte(bucketUserTokens)).Put(userTokenKey(email, h), nil); err != nil {
		return time.Time{}, nil, err
	}
	u.ResetIssued = now
	if err := putUser(tx, u); err != nil {
		return time.Time{}, nil, err
	}
	return rec.Expires, nil, nil
}

// checkToken returns the token's record if it can be redeemed now.
func checkToken(tx *bolt.Tx, h TokenHash, now time.Time) (*tokenRecord, error) {
	r, err := getToken(tx, h)
	switch {
	case err != nil:
		return nil, err
	case r == nil || r.Purpose != purposeReset:
		return nil, errTokenUnknown
	case !now.Before(r.Expires):
		return nil, ErrTokenExpired
	case !r.Used.IsZero():
		return nil, latch.ErrUsedToken
	}
	return r, nil
}

// ValidateResetToken reports the user a token belongs to and when it
// expires, without using it. Errors: latch.ErrInvalidToken (malformed, unknown,
// superseded or expired), latch.ErrUsedToken.
func (s *Store) ValidateResetToken(ctx context.Context, token string) (string, time.Time, error) {
	done, err := s.enter(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	defer done()

	h, err := ParseToken(token)
	if err != nil {
		s.metrics.Reject(err)
		return "", time.Time{}, err
	}
	var r *tokenRecord
	err = s.db.View(func(tx *bolt.Tx) error {
		r, err = checkToken(tx, h, s.now())
		return err
	})
	if err != nil {
		s.metrics.Reject(err)
		return "", time.Time{}, err
	}
	return r.Email, r.Expires, nil
}

// RedeemResetToken uses the token to set its user's password, and returns
// the user's email. Checking the token, marking it used, setting the
// password, expiring the user's other tokens and ending the user's browser
// sessions happen in one transaction,
// so a token works exactly once however many callers race for it. Errors:
// ErrEmptyPassword, latch.ErrInvalidToken, latch.ErrUsedToken.
func (s *Store) RedeemResetToken(ctx context.Context, token, newPassword string) (string, error) {
	if newPassword == "" {
		return "", ErrEmptyPassword
	}
	done, err := s.enter(ctx)
	if err != nil {
		return "", err
	}
	defer done()

	h, err := ParseToken(token)
	if err != nil {
		s.metrics.Reject(err)
		return "", err
	}
	// Refuse bad tokens before paying for argon2; the transaction below
	// checks again.
	err = s.db.View(func(tx *bolt.Tx) error {
		_, err := checkToken(tx, h, s.now())
		return err
	})
	if err != nil {
		s.metrics.Reject(err)
		return "", err
	}
	// Hash before the transaction: argon2 must not hold the write lock.
	pw, err := HashPassword(newPassword, s.hash)
	if err != nil {
		return "", err
	}

	var email string
	err = s.update(func(tx *bolt.Tx) error {
		now := s.now()
		r, err := checkToken(tx, h, now)
		if err != nil {
			return err
		}
		u, err := getUser(tx, r.Email)
		if errors.Is(err, latch.ErrUserNotFound) {
			return errTokenUnknown // user deleted; DeleteUser removes tokens, so only on damage
		}
		if err != nil {
			return err
		}
		r.Used = now
		if err := putToken(tx, h, r); err != nil {
			return err
		}
		u.PasswordHash, u.PasswordChanged = pw, now
		u.Generation = NewGeneration(u.Generation)
		if err := putUser(tx, u); err != nil {
			return err
		}
		if _, err := dropUserTokens(tx, u.Email, true); err != nil {
			return err
		}
		if _, err := dropUserSessions(tx, u.Email); err != nil {
			return err
		}
		email = u.Email
		return nil
	})
	if err != nil {
		s.metrics.Reject(err)
		return "", err
	}
	s.metrics.Redeemed.Inc()
	s.log.Info("password reset redeemed", "email", email)
	return email, nil
}
