package etcdstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Export calls fn with every user (ordered by email), then with every token
// that has not expired, used or not, all read at one revision. It stops at
// fn's first error and returns it. Browser sessions are not exported: they
// are ephemeral, and after a migration their users log in again.
func (s *Store) Export(ctx context.Context, fn func(resetstore.Record) error) error {
	ctx, done, err := s.enter(ctx)
	if err != nil {
		return err
	}
	defer done()

	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.prefix+spaceUsers, clientv3.WithPrefix()),
		clientv3.OpGet(s.prefix+spaceTokens, clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return s.fail(ctx, err)
	}
	s.fail(ctx, nil)
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		r, err := decodeUser(kv)
		if err != nil {
			return err
		}
		if err := fn(resetstore.Record{User: r}); err != nil {
			return err
		}
	}
	now := s.now()
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		h, ok := hashFromKey(string(kv.Key))
		if !ok {
			continue
		}
		t, err := decodeToken(kv)
		if err != nil {
			return err
		}
		if t.rec.Purpose != purposeReset || !now.Before(t.rec.Expires) {
			continue
		}
		if err := fn(resetstore.Record{Token: &resetstore.TokenRecord{Hash: h, Email: t.rec.Email,
			Created: t.rec.Created, Expires: t.rec.Expires, Used: t.rec.Used}}); err != nil {
			return err
		}
	}
	return nil
}

// Import writes recs: a user replaces the stored user of that email (its
// tokens stay; its browser sessions end, in the transaction writing it, as
// with any change of a user's password or roles; their records are left
// to their leases), a token replaces the stored token of that hash and gets the
// lease of its expiry's hour. A token whose user is neither stored nor
// earlier in recs is refused with an error wrapping
// latch.ErrUserNotFound; expired tokens are skipped. Records are
// written in transactions of up to a few dozen, so unlike the bbolt store's,
// a failed Import may have written some of them; running it again is safe.
func (s *Store) Import(ctx context.Context, recs []resetstore.Record) error {
	leave, err := s.gate(ctx)
	if err != nil {
		return err
	}
	defer leave()

	now := s.now()
	known := map[string]bool{} // users written by this Import
	var ops []clientv3.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
		defer cancel()
		err := s.commit(ctx, nil, ops)
		ops = ops[:0]
		return err
	}
	for _, rec := range recs {
		switch {
		case rec.User != nil:
			u := rec.User
			key, err := latch.NormalizeEmail(u.Email)
			if err != nil {
				return fmt.Errorf("importing user %q: %w", u.Email, err)
			}
			r := *u
			r.Email, r.Roles = key, slices.Clone(u.Roles)
			ops = append(ops, s.putUser(&r), clientv3.OpDelete(s.userSessionsPrefix(key), clientv3.WithPrefix()))
			known[key] = true
		case rec.Token != nil:
			t := rec.Token
			if !now.Before(t.Expires) {
				continue
			}
			key, err := latch.NormalizeEmail(t.Email)
			if err != nil {
				return fmt.Errorf("importing a token of %q: %w", t.Email, err)
			}
			rctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
			if !known[key] {
				if _, err := s.getUser(rctx, key); err != nil {
					cancel()
					return fmt.Errorf("importing a token of %q: %w", key, err)
				}
				known[key] = true
			}
			lease, err := s.leaseFor(rctx, t.Expires, now)
			cancel()
			if err != nil {
				return err
			}
			ops = append(ops, s.putToken(t.Hash, &tokenRecord{Email: key, Purpose: purposeReset,
				Created: t.Created, Expires: t.Expires, Used: t.Used}, lease)...)
		}
		if len(ops) >= maxTxnOps-2 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
