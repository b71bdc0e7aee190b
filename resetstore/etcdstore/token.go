package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const purposeReset = "reset"

// tokenRecord is the JSON value of a tokens/ key: the fields and names of
// the bbolt store's record.
type tokenRecord struct {
	Email   string    `json:"email"`
	Purpose string    `json:"purpose"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Used    time.Time `json:"used,omitzero"`
}

// errTokenUnknown refines ErrInvalidToken as resetstore does.
var errTokenUnknown = fmt.Errorf("%w: unknown", latch.ErrInvalidToken)

// tokenState is a token as read.
type tokenState struct {
	rec   *tokenRecord
	rev   int64 // ModRevision
	lease clientv3.LeaseID
}

func (s *Store) putToken(h resetstore.TokenHash, r *tokenRecord, lease clientv3.LeaseID) []clientv3.Op {
	v, _ := json.Marshal(r) // only strings and times: cannot fail
	idx := indexLive
	if !r.Used.IsZero() {
		idx = indexUsed
	}
	return []clientv3.Op{
		clientv3.OpPut(s.tokenKey(h), string(v), clientv3.WithLease(lease)),
		clientv3.OpPut(s.userTokenKey(r.Email, h), idx, clientv3.WithLease(lease)),
	}
}

func decodeToken(kv *mvccpb.KeyValue) (*tokenState, error) {
	var r tokenRecord
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return nil, fmt.Errorf("etcdstore: decoding token record: %w", err)
	}
	return &tokenState{rec: &r, rev: kv.ModRevision, lease: clientv3.LeaseID(kv.Lease)}, nil
}

// readToken reads a token's record; nil if there is none.
func (s *Store) readToken(ctx context.Context, h resetstore.TokenHash) (*tokenState, error) {
	resp, err := s.cli.Get(ctx, s.tokenKey(h))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.fail(ctx, nil)
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return decodeToken(resp.Kvs[0])
}

// checkToken refuses a token that cannot be redeemed at now.
func checkToken(t *tokenState, now time.Time) error {
	switch {
	case t == nil || t.rec.Purpose != purposeReset:
		return errTokenUnknown
	case !now.Before(t.rec.Expires):
		return resetstore.ErrTokenExpired
	case !t.rec.Used.IsZero():
		return latch.ErrUsedToken
	}
	return nil
}

// IssueResetToken creates a reset token for the user, deleting the user's
// earlier unused tokens, and returns it with its expiry. Errors:
// latch.ErrInvalidEmail, ErrUserNotFound, *RateLimitError if the user
// was issued a token less than Options.MinInterval ago (by any replica),
// ErrUnavailable.
func (s *Store) IssueResetToken(ctx context.Context, email string) (string, time.Time, error) {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return "", time.Time{}, err
	}
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	defer done()

	token, h, err := resetstore.NewToken()
	if err != nil {
		return "", time.Time{}, err
	}
	var expires time.Time
	var lease clientv3.LeaseID
	for attempt := 0; ; attempt++ {
		err = s.update(ctx, key, func(st *userState) ([]clientv3.Op, []clientv3.Cmp, error) {
			if st.rec == nil {
				return nil, nil, latch.ErrUserNotFound
			}
			now := s.now()
			if err := st.rec.CheckRateLimit(now, s.minInterval); err != nil {
				return nil, nil, err
			}
			expires = now.Add(s.ttl)
			l, err := s.leaseFor(ctx, expires, now)
			if err != nil {
				return nil, nil, err
			}
			lease = l
			st.rec.ResetIssued = now
			ops := s.putToken(h, &tokenRecord{Email: key, Purpose: purposeReset, Created: now, Expires: expires}, lease)
			ops = append(ops, s.putUser(st.rec))
			return append(ops, s.dropTokens(key, st.live)...), nil, nil
		})
		if leaseNotFound(err) && attempt == 0 {
			s.forgetLease(lease)
			continue
		}
		break
	}
	var rl *latch.RateLimitError
	switch {
	case errors.As(err, &rl):
		s.metrics.RateLimited.Inc()
		return "", time.Time{}, err
	case err != nil:
		return "", time.Time{}, err
	}
	s.metrics.Issued.Inc()
	return token, expires, nil
}

// ValidateResetToken reports the user a token belongs to and when it
// expires, without using it. Errors: latch.ErrInvalidToken (malformed,
// unknown, superseded or expired), ErrUsedToken, ErrUnavailable.
func (s *Store) ValidateResetToken(ctx context.Context, token string) (string, time.Time, error) {
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	defer done()

	h, err := resetstore.ParseToken(token)
	if err != nil {
		s.metrics.Reject(err)
		return "", time.Time{}, err
	}
	t, err := s.readToken(ctx, h)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := checkToken(t, s.now()); err != nil {
		s.metrics.Reject(err)
		return "", time.Time{}, err
	}
	return t.rec.Email, t.rec.Expires, nil
}

// RedeemResetToken uses the token to set its user's password, and returns
// the user's email. One transaction, guarded by the token's and the user's
// ModRevision, marks the token used, sets the password, expires the
// user's other tokens and ends the user's browser sessions, so a token works exactly once however many callers,
// in however many replicas, race for it. Errors: resetstore.ErrEmptyPassword,
// ErrInvalidToken, ErrUsedToken, ErrUnavailable.
func (s *Store) RedeemResetToken(ctx context.Context, token, newPassword string) (string, error) {
	if newPassword == "" {
		return "", resetstore.ErrEmptyPassword
	}
	leave, err := s.gate(ctx)
	if err != nil {
		return "", err
	}
	defer leave()

	h, err := resetstore.ParseToken(token)
	if err != nil {
		s.metrics.Reject(err)
		return "", err
	}
	// Refuse bad tokens before paying for argon2; the transaction checks
	// again. Each step has its own request timeout: argon2 runs between.
	rctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	t, err := s.readToken(rctx, h)
	cancel()
	if err != nil {
		return "", err
	}
	if err := checkToken(t, s.now()); err != nil {
		s.metrics.Reject(err)
		return "", err
	}
	email := t.rec.Email
	pw, err := resetstore.HashPassword(newPassword, s.hash)
	if err != nil {
		return "", err
	}
	ctx, cancel = context.WithTimeout(ctx, s.reqTimeout)
	defer cancel()

	first := true
	err = s.updateEnding(ctx, email, func(st *userState) ([]clientv3.Op, []clientv3.Cmp, error) {
		if !first { // a compare failed: the token may have been used meanwhile
			if t, err = s.readToken(ctx, h); err != nil {
				return nil, nil, err
			}
		}
		first = false
		now := s.now()
		if err := checkToken(t, now); err != nil {
			return nil, nil, err
		}
		if st.rec == nil || t.rec.Email != email {
			return nil, nil, errTokenUnknown // user deleted; DeleteUser removes tokens, so only on damage
		}
		used := *t.rec
		used.Used = now
		st.rec.PasswordHash, st.rec.PasswordChanged = pw, now
		st.rec.Generation = resetstore.NewGeneration(st.rec.Generation)
		ops := append(s.putToken(h, &used, t.lease), s.putUser(st.rec))
		var others []resetstore.TokenHash
		for _, o := range st.live {
			if o != h {
				others = append(others, o)
			}
		}
		ops = append(ops, s.dropTokens(email, others)...)
		return ops, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.tokenKey(h)), "=", t.rev)}, nil
	})
	if leaseNotFound(err) {
		// The token's lease ran out between the read and the write: it has
		// expired (leases outlive the tokens on them).
		err = resetstore.ErrTokenExpired
	}
	if err != nil {
		s.metrics.Reject(err)
		return "", err
	}
	s.metrics.Redeemed.Inc()
	s.log.Info("password reset redeemed", "email", email)
	return email, nil
}

// ActiveTokens counts tokens that are neither expired nor used.
func (s *Store) ActiveTokens(ctx context.Context) (int, error) {
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	resp, err := s.cli.Get(ctx, s.prefix+spaceTokens, clientv3.WithPrefix())
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	s.fail(ctx, nil)
	now := s.now()
	n := 0
	for _, kv := range resp.Kvs {
		t, err := decodeToken(kv)
		if err != nil {
			return 0, err
		}
		if checkToken(t, now) == nil {
			n++
		}
	}
	return n, nil
}

// RunSweeper probes etcd every Options.ProbeInterval until ctx is done or
// the store is closed, keeping latch_store_etcd_up current. It sweeps
// nothing: leases remove expired tokens (see doc.go). every is ignored; it
// is the bbolt store's sweep interval.
func (s *Store) RunSweeper(ctx context.Context, every time.Duration) {
	t := time.NewTicker(s.probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.Ping(ctx)
		if errors.Is(err, resetstore.ErrClosed) {
			return
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("etcd is not answering", "err", err)
		}
	}
}
