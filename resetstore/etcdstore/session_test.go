package etcdstore_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore/etcdstore"
	"github.com/latch-dev/latch/resetstore/etcdstore/etcdtest"
	"github.com/latch-dev/latch/resetstore/storetest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newSessionKey() string {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// mustCreateSession starts a session for the user as stored now, expiring
// ttl after now, and returns its key.
func mustCreateSession(t *testing.T, s *etcdstore.Store, now time.Time, email string, ttl time.Duration) string {
	t.Helper()
	u, err := s.GetUser(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	key := newSessionKey()
	if err := s.CreateBrowserSession(ctx, key, latch.BrowserSession{Email: u.Email, Generation: u.Generation,
		Created: now, LastSeen: now, Expires: now.Add(ttl)}); err != nil {
		t.Fatalf("CreateBrowserSession(%q): %v", email, err)
	}
	return key
}

// getKV reads one key with the raw client; nil if it does not exist.
func getKV(t *testing.T, cli *clientv3.Client, key string) *struct {
	Value []byte
	Lease clientv3.LeaseID
} {
	t.Helper()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	return &struct {
		Value []byte
		Lease clientv3.LeaseID
	}{resp.Kvs[0].Value, clientv3.LeaseID(resp.Kvs[0].Lease)}
}

// countKeys counts the keys under prefix.
func countKeys(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// TestEtcdSessionKeysAndLeases checks a session's layout in etcd: a JSON
// record and an index entry, both on the lease of its Expires' hour, which
// a touch keeps; revoking that lease (what its TTL running out does) ends
// the session.
func TestEtcdSessionKeysAndLeases(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	cli := rawClient(t, c)
	clock := storetest.NewClock()
	s := open(t, c, etcdstore.Options{Now: clock.Now})
	p := s.Prefix()
	mustAddUser(t, s, "Ada@Example.com", "")
	begin := clock.Now()
	key := mustCreateSession(t, s, begin, "ada@example.com", 7*24*time.Hour+30*time.Minute)

	rec := getKV(t, cli, p+"sessions/"+key)
	idx := getKV(t, cli, p+"usersessions/ada@example.com/"+key)
	if rec == nil || idx == nil {
		t.Fatalf("session keys: record %v, index %v; want both", rec, idx)
	}
	var fields map[string]any
	if err := json.Unmarshal(rec.Value, &fields); err != nil {
		t.Fatal(err)
	}
	if fields["email"] != "ada@example.com" || fields["expires"] != "2026-03-08T12:30:00Z" ||
		fields["created"] != "2026-03-01T12:00:00Z" || fields["gen"] == nil {
		t.Errorf("session record = %v", fields)
	}
	if rec.Lease == 0 || idx.Lease != rec.Lease {
		t.Fatalf("leases: record %x, index %x; want one lease for both", rec.Lease, idx.Lease)
	}
	ttl, err := cli.TimeToLive(ctx, rec.Lease)
	if err != nil {
		t.Fatal(err)
	}
	// Bucket [12:00, 13:00) seven days on ends 7d1h after 12:00, plus 10m.
	if want := int64((7*24*time.Hour + time.Hour + 10*time.Minute) / time.Second); ttl.GrantedTTL != want {
		t.Errorf("lease TTL = %ds, want %ds", ttl.GrantedTTL, want)
	}

	clock.Advance(time.Minute)
	if err := s.TouchBrowserSession(ctx, key, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if after := getKV(t, cli, p+"sessions/"+key); after == nil || after.Lease != rec.Lease {
		t.Errorf("touched record: %v, want it on lease %x still", after, rec.Lease)
	}

	if _, err := cli.Revoke(ctx, rec.Lease); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BrowserSession(ctx, key); !errors.Is(err, latch.ErrSessionNotFound) {
		t.Errorf("session whose lease was revoked: %v, want ErrSessionNotFound", err)
	}
	if n := countKeys(t, cli, p); n != 1 {
		t.Errorf("%d keys left after the lease went, want 1 (the user)", n)
	}
	// A session created after the revocation gets a new lease.
	key = mustCreateSession(t, s, clock.Now(), "ada@example.com", time.Hour)
	if _, err := s.BrowserSession(ctx, key); err != nil {
		t.Errorf("session created after its hour's lease was revoked: %v", err)
	}
}

// TestEtcdSessionNeedsIndexEntry: a record without its index entry (what
// a change of the user leaves until the records are deleted) is no
// session: not readable, not touchable, and a touch does not revive it.
func TestEtcdSessionNeedsIndexEntry(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	cli := rawClient(t, c)
	clock := storetest.NewClock()
	s := open(t, c, etcdstore.Options{Now: clock.Now})
	mustAddUser(t, s, "ada@example.com", "")
	key := mustCreateSession(t, s, clock.Now(), "ada@example.com", time.Hour)
	if _, err := cli.Delete(ctx, s.Prefix()+"usersessions/ada@example.com/"+key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BrowserSession(ctx, key); !errors.Is(err, latch.ErrSessionNotFound) {
		t.Errorf("BrowserSession without index entry: %v, want ErrSessionNotFound", err)
	}
	if err := s.TouchBrowserSession(ctx, key, clock.Now()); !errors.Is(err, latch.ErrSessionNotFound) {
		t.Errorf("TouchBrowserSession without index entry: %v, want ErrSessionNotFound", err)
	}
	if _, err := s.BrowserSession(ctx, key); !errors.Is(err, latch.ErrSessionNotFound) {
		t.Errorf("BrowserSession after the touch: %v, want ErrSessionNotFound", err)
	}
	if err := s.DeleteBrowserSession(ctx, key); err != nil {
		t.Errorf("DeleteBrowserSession of the record: %v", err)
	}
	if n := countKeys(t, cli, s.Prefix()+"sessions/"); n != 0 {
		t.Errorf("%d session records after DeleteBrowserSession, want 0", n)
	}
}

// TestEtcdSessionsBeyondOneTxn: a user with more sessions than one etcd
// transaction may touch loses all of them to one password change, one
// reset, one role change and a delete, and no session key is left behind.
func TestEtcdSessionsBeyondOneTxn(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	cli := rawClient(t, c)
	clock := storetest.NewClock()
	s := open(t, c, etcdstore.Options{Now: clock.Now, MinInterval: -1})
	p := s.Prefix()
	mustAddUser(t, s, "ada@example.com", "")
	mustAddUser(t, s, "bob@example.com", "")
	bobs := mustCreateSession(t, s, clock.Now(), "bob@example.com", time.Hour)
	const n = 130 // over maxTxnOps, and over etcd's default --max-txn-ops (128)
	changes := []struct {
		name string
		fn   func() error
	}{
		{"SetPassword", func() error { return s.SetPassword(ctx, "ada@example.com", "New-Passw0rd!") }},
		{"RedeemResetToken", func() error {
			_, err := s.RedeemResetToken(ctx, mustIssue(t, s, "ada@example.com"), "Pw-Passw0rd!")
			return err
		}},
		{"SetRoles", func() error { _, err := s.SetRoles(ctx, "ada@example.com", []string{"viewer"}); return err }},
		{"DeleteUser", func() error { return s.DeleteUser(ctx, "ada@example.com") }},
	}
	for _, ch := range changes {
		var keys []string
		for range n {
			keys = append(keys, mustCreateSession(t, s, clock.Now(), "ada@example.com", time.Hour))
		}
		if err := ch.fn(); err != nil {
			t.Fatalf("%s: %v", ch.name, err)
		}
		for i, k := range keys {
			if _, err := s.BrowserSession(ctx, k); !errors.Is(err, latch.ErrSessionNotFound) {
				t.Errorf("%s: session %d: %v, want ErrSessionNotFound", ch.name, i, err)
			}
		}
		if got := countKeys(t, cli, p+"sessions/"); got != 1 {
			t.Errorf("%s: %d session records left, want 1 (bob's)", ch.name, got)
		}
		if got := countKeys(t, cli, p+"usersessions/"); got != 1 {
			t.Errorf("%s: %d session index entries left, want 1 (bob's)", ch.name, got)
		}
		if _, err := s.BrowserSession(ctx, bobs); err != nil {
			t.Errorf("%s: bob's session: %v", ch.name, err)
		}
	}
}
