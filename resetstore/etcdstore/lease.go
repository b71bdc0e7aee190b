package etcdstore

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Token keys are attached to leases shared per hour of expiry: a token
// expiring in [b, b+leaseBucket) uses the lease of bucket b, granted with a
// TTL reaching leaseGrace past b+leaseBucket. One lease serves every token of
// its hour, so a burst of issuances costs one grant per bucket, not one per
// token, and etcd's lease checkpoints stay few.
const (
	leaseBucket = time.Hour
	leaseGrace  = 10 * time.Minute
)

type leaseCache struct {
	// lock is a mutex a waiter can give up on: held across a grant, which
	// may wait for etcd up to the request timeout.
	lock    chan struct{}
	granted map[int64]grantedLease // by bucket start, Unix seconds
}

func newLeaseCache() leaseCache {
	return leaseCache{lock: make(chan struct{}, 1), granted: map[int64]grantedLease{}}
}

type grantedLease struct {
	id clientv3.LeaseID
	// until is the wall-clock time (time.Now, not the injected clock)
	// before which the lease certainly lives.
	until time.Time
}

// leaseFor returns a lease that outlives a token expiring at expires (on the
// injected clock, now being that clock's current time), granting one when
// the bucket has none yet. Leases of buckets that have passed are forgotten.
func (s *Store) leaseFor(ctx context.Context, expires, now time.Time) (clientv3.LeaseID, error) {
	bucket := expires.Truncate(leaseBucket)
	ttl := bucket.Add(leaseBucket).Add(leaseGrace).Sub(now)
	// The key must exist until the token's expiry in real time.
	need := time.Now().Add(expires.Sub(now))

	c := &s.leases
	select {
	case c.lock <- struct{}{}:
	case <-ctx.Done():
		return 0, s.fail(ctx, ctx.Err())
	}
	defer func() { <-c.lock }()
	if l, ok := c.granted[bucket.Unix()]; ok && !l.until.Before(need) {
		return l.id, nil
	}
	start := time.Now()
	resp, err := s.cli.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	// etcd may extend a TTL, never shorten it; count from before the request.
	l := grantedLease{id: resp.ID, until: start.Add(time.Duration(resp.TTL) * time.Second)}
	c.granted[bucket.Unix()] = l
	for b, g := range c.granted {
		if g.until.Before(start) {
			delete(c.granted, b)
		}
	}
	return l.id, nil
}

// forgetLease drops a lease etcd no longer knows (revoked by an operator,
// or expired while the process slept), so the next call grants a new one.
func (s *Store) forgetLease(id clientv3.LeaseID) {
	c := &s.leases
	c.lock <- struct{}{}
	defer func() { <-c.lock }()
	for b, g := range c.granted {
		if g.id == id {
			delete(c.granted, b)
		}
	}
}

func leaseNotFound(err error) bool { return errors.Is(err, rpctypes.ErrLeaseNotFound) }
