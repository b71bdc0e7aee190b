package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func decodeUser(kv *mvccpb.KeyValue) (*resetstore.UserRecord, error) {
	var r resetstore.UserRecord
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return nil, fmt.Errorf("etcdstore: decoding user %q: %w", kv.Key, err)
	}
	return &r, nil
}

func (s *Store) putUser(r *resetstore.UserRecord) clientv3.Op {
	v, _ := json.Marshal(r) // only strings and times: cannot fail
	return clientv3.OpPut(s.userKey(r.Email), string(v))
}

// userState is a user as read, with what a transaction compares against.
type userState struct {
	rec *resetstore.UserRecord // nil if there is no such user
	rev int64                  // the user key's ModRevision
	// live and used are the hashes in the user's token index.
	live, used []resetstore.TokenHash
	// sessions are the keys in the user's session index.
	sessions []string
}

// readUser reads the user and the user's token and session indexes in one
// request.
func (s *Store) readUser(ctx context.Context, email string) (*userState, error) {
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.userKey(email)),
		clientv3.OpGet(s.userTokensPrefix(email), clientv3.WithPrefix()),
		clientv3.OpGet(s.userSessionsPrefix(email), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.fail(ctx, nil)
	st := &userState{}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
		if st.rec, err = decodeUser(kvs[0]); err != nil {
			return nil, err
		}
		st.rev = kvs[0].ModRevision
	}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		h, ok := hashFromKey(string(kv.Key))
		switch {
		case !ok:
		case string(kv.Value) == indexUsed:
			st.used = append(st.used, h)
		default:
			st.live = append(st.live, h)
		}
	}
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		if k, ok := sessionKeyFromIndex(string(kv.Key)); ok {
			st.sessions = append(st.sessions, k)
		}
	}
	return st, nil
}

// dropTokens are the ops deleting tokens and their index entries.
func (s *Store) dropTokens(email string, hashes []resetstore.TokenHash) []clientv3.Op {
	ops := make([]clientv3.Op, 0, 2*len(hashes))
	for _, h := range hashes {
		ops = append(ops, clientv3.OpDelete(s.tokenKey(h)), clientv3.OpDelete(s.userTokenKey(email, h)))
	}
	return ops
}

// errConflict means another writer changed a compared key first: read again.
var errConflict = errors.New("etcdstore: conflicting write")

// update runs a read-decide-write cycle on one user until its transaction
// wins the compare, at most maxAttempts times. decide gets the fresh state
// and returns the ops for a transaction guarded by the user's ModRevision
// (and by extra compares), or an error to stop with.
func (s *Store) update(ctx context.Context, email string,
	decide func(st *userState) (ops []clientv3.Op, extra []clientv3.Cmp, err error)) error {
	for range maxAttempts {
		st, err := s.readUser(ctx, email)
		if err != nil {
			return err
		}
		ops, extra, err := decide(st)
		if err != nil {
			return err
		}
		cmps := append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.userKey(email)), "=", st.rev)}, extra...)
		err = s.commit(ctx, cmps, ops)
		if !errors.Is(err, errConflict) {
			return err
		}
	}
	return fmt.Errorf("%w: %d conflicting writes in a row", latch.ErrUnavailable, maxAttempts)
}

// commit runs one guarded transaction: errConflict when a compare failed.
func (s *Store) commit(ctx context.Context, cmps []clientv3.Cmp, ops []clientv3.Op) error {
	start := time.Now()
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	s.metrics.Commit.Observe(time.Since(start).Seconds())
	if err != nil {
		return s.fail(ctx, err)
	}
	s.fail(ctx, nil)
	if !resp.Succeeded {
		return errConflict
	}
	return nil
}

// AddUser adds a user. An empty password means the user has none and can
// only get in through a reset link. It fails with latch.ErrUserExists
// if the email is taken, compared case-insensitively.
func (s *Store) AddUser(ctx context.Context, email string, roles []string, password string) (latch.User, error) {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return latch.User{}, err
	}
	// Hash first: argon2 must not use up the request timeout.
	var pw string
	if password != "" {
		if pw, err = resetstore.HashPassword(password, s.hash); err != nil {
			return latch.User{}, err
		}
	}
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return latch.User{}, err
	}
	defer done()

	now := s.now()
	rec := &resetstore.UserRecord{Email: key, Roles: slices.Clone(roles), Created: now, PasswordHash: pw,
		Generation: resetstore.NewGeneration(0)}
	if pw != "" {
		rec.PasswordChanged = now
	}
	// A user's tokens and sessions are deleted with the user, but an index
	// left by a damaged delete must not come back to life: clear them.
	err = s.commit(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.userKey(key)), "=", 0)},
		[]clientv3.Op{s.putUser(rec), clientv3.OpDelete(s.userTokensPrefix(key), clientv3.WithPrefix()),
			clientv3.OpDelete(s.userSessionsPrefix(key), clientv3.WithPrefix())})
	if errors.Is(err, errConflict) {
		return latch.User{}, latch.ErrUserExists
	}
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
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return latch.User{}, err
	}
	defer done()
	r, err := s.getUser(ctx, key)
	if err != nil {
		return latch.User{}, err
	}
	return r.User(), nil
}

func (s *Store) getUser(ctx context.Context, key string) (*resetstore.UserRecord, error) {
	resp, err := s.cli.Get(ctx, s.userKey(key))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.fail(ctx, nil)
	if len(resp.Kvs) == 0 {
		return nil, latch.ErrUserNotFound
	}
	return decodeUser(resp.Kvs[0])
}

// ListUsers returns every user, ordered by email.
func (s *Store) ListUsers(ctx context.Context) ([]latch.User, error) {
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	resp, err := s.cli.Get(ctx, s.prefix+spaceUsers, clientv3.WithPrefix())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.fail(ctx, nil)
	var users []latch.User
	for _, kv := range resp.Kvs {
		r, err := decodeUser(kv)
		if err != nil {
			return nil, err
		}
		users = append(users, r.User())
	}
	return users, nil
}

// maxTxnOps keeps a transaction under etcd's default limit of 128
// operations (--max-txn-ops).
const maxTxnOps = 120

// DeleteUser removes the user and all of the user's reset tokens, and ends
// all of the user's browser sessions in the same transaction.
func (s *Store) DeleteUser(ctx context.Context, email string) error {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return err
	}
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	err = s.updateEnding(ctx, key, func(st *userState) ([]clientv3.Op, []clientv3.Cmp, error) {
		if st.rec == nil {
			return nil, nil, latch.ErrUserNotFound
		}
		// Used tokens beyond one transaction's worth go first, in their own
		// transactions: they are dead anyway.
		used := st.used
		for len(used) > 0 && len(st.live)+len(used) > maxTxnOps-3 {
			n := min(len(used), maxTxnOps/2)
			if _, err := s.cli.Txn(ctx).Then(s.dropTokens(key, used[:n])...).Commit(); err != nil {
				return nil, nil, s.fail(ctx, err)
			}
			used = used[n:]
		}
		ops := []clientv3.Op{clientv3.OpDelete(s.userKey(key)), clientv3.OpDelete(s.userTokensPrefix(key), clientv3.WithPrefix())}
		for _, h := range append(st.live, used...) {
			ops = append(ops, clientv3.OpDelete(s.tokenKey(h)))
		}
		return ops, nil, nil
	})
	if err == nil {
		s.log.Debug("user deleted", "email", key)
	}
	return err
}

// SetRoles replaces the user's roles and, in the same transaction, ends
// all of the user's browser sessions. It keeps the user's Generation (see
// resetstore.Store.SetRoles).
func (s *Store) SetRoles(ctx context.Context, email string, roles []string) (latch.User, error) {
	key, err := latch.NormalizeEmail(email)
	if err != nil {
		return latch.User{}, err
	}
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return latch.User{}, err
	}
	defer done()

	var u latch.User
	err = s.updateEnding(ctx, key, func(st *userState) ([]clientv3.Op, []clientv3.Cmp, error) {
		if st.rec == nil {
			return nil, nil, latch.ErrUserNotFound
		}
		st.rec.Roles = slices.Clone(roles)
		u = st.rec.User()
		return []clientv3.Op{s.putUser(st.rec)}, nil, nil
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
		return resetstore.ErrEmptyPassword
	}
	// Hash first: argon2 must not use up the request timeout.
	h, err := resetstore.HashPassword(password, s.hash)
	if err != nil {
		return err
	}
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	now := s.now()
	err = s.updateEnding(ctx, key, func(st *userState) ([]clientv3.Op, []clientv3.Cmp, error) {
		if st.rec == nil {
			return nil, nil, latch.ErrUserNotFound
		}
		st.rec.PasswordHash, st.rec.PasswordChanged = h, now
		st.rec.Generation = resetstore.NewGeneration(st.rec.Generation)
		return append([]clientv3.Op{s.putUser(st.rec)}, s.dropTokens(key, st.live)...), nil, nil
	})
	if err == nil {
		s.log.Debug("password set", "email", key)
	}
	return err
}

// VerifyPassword reports whether password is the user's password. The
// returned User, Generation included, is the record the hash was read
// with (see resetstore.Store.VerifyPassword). A denial
// is not an error: an unknown or malformed email, a user without a password
// and a wrong password all return false with a nil error, after an argon2id
// computation of about the same cost. err is only for a store failure.
func (s *Store) VerifyPassword(ctx context.Context, email, password string) (latch.User, bool, error) {
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return latch.User{}, false, err
	}
	defer done()

	var rec *resetstore.UserRecord
	if key, kerr := latch.NormalizeEmail(email); kerr == nil {
		rec, err = s.getUser(ctx, key)
		if errors.Is(err, latch.ErrUserNotFound) {
			rec, err = nil, nil
		}
		if err != nil {
			return latch.User{}, false, err
		}
	}
	return resetstore.VerifyUser(rec, password, s.dummyHash)
}
