package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A browser session is two keys on one lease (see doc.go): its record
// under sessions/<key> and its entry in the user's index under
// usersessions/<email>/<key>. It is live only while both exist, so a
// change of the user's password, roles or existence ends every session of
// the user with one range delete of the index in the change's own
// transaction, however many sessions there are; the records left behind
// are deleted after it, and by their leases at the latest.

func (s *Store) sessionKey(key string) string { return s.prefix + spaceSessions + key }

func (s *Store) userSessionsPrefix(email string) string {
	return s.prefix + spaceUserSessions + url.PathEscape(email) + "/"
}

func (s *Store) userSessionKey(email, key string) string { return s.userSessionsPrefix(email) + key }

// sessionState is a session record as read.
type sessionState struct {
	rec   *resetstore.SessionRecord
	rev   int64 // ModRevision of the record
	lease clientv3.LeaseID
}

// readSession reads a session's record; nil if there is none. It does not
// look at the index: see liveSession.
func (s *Store) readSession(ctx context.Context, key string) (*sessionState, error) {
	resp, err := s.cli.Get(ctx, s.sessionKey(key))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.fail(ctx, nil)
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	kv := resp.Kvs[0]
	var r resetstore.SessionRecord
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return nil, fmt.Errorf("etcdstore: decoding session record: %w", err)
	}
	return &sessionState{rec: &r, rev: kv.ModRevision, lease: clientv3.LeaseID(kv.Lease)}, nil
}

// putSession are the ops writing a session's record and index entry on
// lease.
func (s *Store) putSession(key string, r *resetstore.SessionRecord, lease clientv3.LeaseID) []clientv3.Op {
	v, _ := json.Marshal(r) // only strings, numbers and times: cannot fail
	return []clientv3.Op{
		clientv3.OpPut(s.sessionKey(key), string(v), clientv3.WithLease(lease)),
		clientv3.OpPut(s.userSessionKey(r.Email, key), "", clientv3.WithLease(lease)),
	}
}

// endSessions are the ops ending every session of the user in a change's
// transaction: the index goes with one range delete, and the records of
// keys (the index as read) with it, up to room ops in all. The records of
// the keys returned in rest are left for dropSessionRecords after the
// commit; they are dead already.
func (s *Store) endSessions(email string, keys []string, room int) (ops []clientv3.Op, rest []string) {
	ops = []clientv3.Op{clientv3.OpDelete(s.userSessionsPrefix(email), clientv3.WithPrefix())}
	n := min(len(keys), max(room-1, 0))
	for _, k := range keys[:n] {
		ops = append(ops, clientv3.OpDelete(s.sessionKey(k)))
	}
	return ops, keys[n:]
}

// updateEnding is update for a change of the user's password, roles or
// existence: the transaction decide's ops make also ends every session of
// the user (endSessions, in the room those ops leave), and the records it
// had no room for are deleted after the commit (dropSessionRecords).
func (s *Store) updateEnding(ctx context.Context, email string,
	decide func(st *userState) (ops []clientv3.Op, extra []clientv3.Cmp, err error)) error {
	var rest []string
	err := s.update(ctx, email, func(st *userState) ([]clientv3.Op, []clientv3.Cmp, error) {
		ops, extra, err := decide(st)
		if err != nil {
			return nil, nil, err
		}
		end, r := s.endSessions(email, st.sessions, maxTxnOps-len(ops))
		rest = r
		return append(ops, end...), extra, nil
	})
	if err == nil {
		s.dropSessionRecords(ctx, rest)
	}
	return err
}

// dropSessionRecords deletes the records of ended sessions, in
// transactions of up to maxTxnOps. A failure is only logged: the sessions
// are already ended, and their leases remove the records.
func (s *Store) dropSessionRecords(ctx context.Context, keys []string) {
	for len(keys) > 0 {
		n := min(len(keys), maxTxnOps)
		ops := make([]clientv3.Op, 0, n)
		for _, k := range keys[:n] {
			ops = append(ops, clientv3.OpDelete(s.sessionKey(k)))
		}
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			s.log.Warn("deleting ended sessions' records failed; their leases will", "left", len(keys), "err", s.fail(ctx, err))
			return
		}
		keys = keys[n:]
	}
}

// sessionKeyFromIndex returns the session key ending a usersessions/ key.
func sessionKeyFromIndex(k string) (string, bool) {
	key := k[strings.LastIndexByte(k, '/')+1:]
	return key, latch.ValidSessionKey(key)
}

// CreateBrowserSession stores s under key, the hex SHA-256 of the session
// cookie's secret (latch.ValidSessionKey), with s.Email folded as AddUser
// folds it. The transaction is guarded by the user key's ModRevision, so
// a session never begins for a user changed since the check. Errors are
// resetstore.Store.CreateBrowserSession's: latch.ErrUserNotFound;
// latch.ErrSessionNotFound (wrapped) for a malformed key, an Expires not
// after the store's clock, or a Generation not the user's
// (resetstore.ErrStaleSession); resetstore.ErrSessionKeyInUse; and
// latch.ErrUnavailable. The session's keys are attached to the lease of
// its Expires' hour, as tokens are.
func (s *Store) CreateBrowserSession(ctx context.Context, key string, sess latch.BrowserSession) error {
	if err := resetstore.CheckSessionKey(key); err != nil {
		return err
	}
	rec, err := resetstore.NewSessionRecord(sess)
	if err != nil {
		return err
	}
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	var lease clientv3.LeaseID
	for attempt := 0; ; attempt++ {
		err = s.update(ctx, rec.Email, func(st *userState) ([]clientv3.Op, []clientv3.Cmp, error) {
			if st.rec == nil {
				return nil, nil, latch.ErrUserNotFound
			}
			now := s.now()
			if err := rec.CheckNew(st.rec, now); err != nil {
				return nil, nil, err
			}
			old, err := s.readSession(ctx, key)
			if err != nil {
				return nil, nil, err
			}
			if old != nil {
				return nil, nil, resetstore.ErrSessionKeyInUse
			}
			if lease, err = s.leaseFor(ctx, rec.Expires, now); err != nil {
				return nil, nil, err
			}
			return s.putSession(key, rec, lease),
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.sessionKey(key)), "=", 0)}, nil
		})
		if leaseNotFound(err) && attempt == 0 {
			s.forgetLease(lease)
			continue
		}
		return err
	}
}

// unexpiredSession reads the session under key and returns it if its
// Expires is after the store's clock. It does not look at the index: see
// liveSession.
func (s *Store) unexpiredSession(ctx context.Context, key string) (*sessionState, error) {
	st, err := s.readSession(ctx, key)
	switch {
	case err != nil:
		return nil, err
	case st == nil:
		return nil, latch.ErrSessionNotFound
	}
	if err := st.rec.CheckLive(s.now()); err != nil {
		return nil, err
	}
	return st, nil
}

// liveSession reads the session under key and returns it if it is live:
// unexpired and its index entry present.
func (s *Store) liveSession(ctx context.Context, key string) (*sessionState, error) {
	st, err := s.unexpiredSession(ctx, key)
	if err != nil {
		return nil, err
	}
	resp, err := s.cli.Get(ctx, s.userSessionKey(st.rec.Email, key), clientv3.WithCountOnly())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if resp.Count == 0 {
		return nil, latch.ErrSessionNotFound // ended by a change of its user
	}
	return st, nil
}

// BrowserSession returns the session stored under key while it is live:
// latch.ErrSessionNotFound (possibly wrapped) when key is malformed, no
// session has it, it was ended, or the store's clock is not before its
// Expires; latch.ErrUnavailable when etcd does not answer. It costs two
// linearizable reads (the record, then its index entry). The caller still
// compares its Generation with the user's.
func (s *Store) BrowserSession(ctx context.Context, key string) (latch.BrowserSession, error) {
	if err := resetstore.CheckSessionKey(key); err != nil {
		return latch.BrowserSession{}, err
	}
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return latch.BrowserSession{}, err
	}
	defer done()
	st, err := s.liveSession(ctx, key)
	if err != nil {
		return latch.BrowserSession{}, err
	}
	return st.rec.Session(), nil
}

// TouchBrowserSession records at as the session's LastSeen; nothing else
// changes, its lease included. The write is guarded by the record's
// ModRevision and by its index entry, so it never revives a session a
// change of its user ended. Errors as BrowserSession's.
func (s *Store) TouchBrowserSession(ctx context.Context, key string, at time.Time) error {
	if err := resetstore.CheckSessionKey(key); err != nil {
		return err
	}
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	for range maxAttempts {
		st, err := s.unexpiredSession(ctx, key)
		if err != nil {
			return err
		}
		idx := s.userSessionKey(st.rec.Email, key)
		r := *st.rec
		r.LastSeen = at.Round(0)
		v, _ := json.Marshal(&r)
		start := time.Now()
		resp, err := s.cli.Txn(ctx).If(
			clientv3.Compare(clientv3.ModRevision(s.sessionKey(key)), "=", st.rev),
			clientv3.Compare(clientv3.CreateRevision(idx), ">", 0),
		).Then(
			clientv3.OpPut(s.sessionKey(key), string(v), clientv3.WithLease(st.lease)),
		).Else(
			clientv3.OpGet(idx, clientv3.WithCountOnly()),
		).Commit()
		s.metrics.Commit.Observe(time.Since(start).Seconds())
		if leaseNotFound(err) {
			return resetstore.ErrSessionExpired // its lease ran out: past Expires
		}
		if err != nil {
			return s.fail(ctx, err)
		}
		s.fail(ctx, nil)
		if resp.Succeeded {
			return nil
		}
		if resp.Responses[0].GetResponseRange().Count == 0 {
			return latch.ErrSessionNotFound // ended by a change of its user
		}
		// The record changed (another touch): read it again.
	}
	return fmt.Errorf("%w: %d conflicting writes in a row", latch.ErrUnavailable, maxAttempts)
}

// DeleteBrowserSession ends the session stored under key (a logout),
// deleting its record and index entry in one transaction. It is
// idempotent: nil when there is no such session, expired or not. A
// malformed key is refused with an error wrapping latch.ErrSessionNotFound,
// as the bbolt store refuses it.
func (s *Store) DeleteBrowserSession(ctx context.Context, key string) error {
	if err := resetstore.CheckSessionKey(key); err != nil {
		return err
	}
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	st, err := s.readSession(ctx, key)
	if err != nil || st == nil {
		return err
	}
	// A record's email never changes, so no compare is needed: deleting
	// what is already gone changes nothing.
	return s.commit(ctx, nil, []clientv3.Op{
		clientv3.OpDelete(s.sessionKey(key)),
		clientv3.OpDelete(s.userSessionKey(st.rec.Email, key)),
	})
}
