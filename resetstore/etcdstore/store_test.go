package etcdstore_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/resetstore"
	"github.com/latch-dev/latch/resetstore/etcdstore"
	"github.com/latch-dev/latch/resetstore/etcdstore/etcdtest"
	"github.com/latch-dev/latch/resetstore/storetest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// rawClient is a plain etcd client for looking at what the store wrote.
func rawClient(t *testing.T, c *etcdtest.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// leasesUsed returns the distinct leases of the keys under prefix.
func leasesUsed(t *testing.T, cli *clientv3.Client, prefix string) map[clientv3.LeaseID]int {
	t.Helper()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[clientv3.LeaseID]int{}
	for _, kv := range resp.Kvs {
		if kv.Lease != 0 {
			out[clientv3.LeaseID(kv.Lease)]++
		}
	}
	return out
}

// TestEtcdKeysAndLeases checks the layout in etcd: hashed token keys with
// JSON records, the per-user index, and leases shared per hour of expiry.
func TestEtcdKeysAndLeases(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := rawClient(t, c)
	clock := storetest.NewClock()
	s := open(t, c, etcdstore.Options{Now: clock.Now, MinInterval: -1, TokenTTL: 2 * time.Hour})
	p := s.Prefix()

	const users = 40
	var tokens []string
	for i := range users {
		mustAddUser(t, s, fmt.Sprintf("u%02d@example.com", i), "")
		tokens = append(tokens, mustIssue(t, s, fmt.Sprintf("u%02d@example.com", i)))
	}
	h, _ := resetstore.ParseToken(tokens[0])
	resp, err := cli.Get(ctx, p+"tokens/"+hex.EncodeToString(h[:]))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("token key: %v, %v", resp, err)
	}
	var rec map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil {
		t.Fatal(err)
	}
	if rec["email"] != "u00@example.com" || rec["expires"] != "2026-03-01T14:00:00Z" || rec["used"] != nil {
		t.Errorf("token record = %v", rec)
	}
	all, err := cli.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range all.Kvs {
		for _, tok := range tokens {
			if strings.Contains(string(kv.Key), tok) || strings.Contains(string(kv.Value), tok) {
				t.Fatalf("a raw token is stored at %s", kv.Key)
			}
		}
	}
	if n := len(leasesUsed(t, cli, p+"usertokens/u00@example.com/")); n != 1 {
		t.Errorf("u00's index: %d leased entries, want 1", n)
	}

	// 40 tokens expiring in one hour bucket share one lease.
	leases := leasesUsed(t, cli, p+"tokens/")
	if len(leases) != 1 {
		t.Fatalf("%d tokens on %d leases, want 1 lease", users, len(leases))
	}
	for id := range leases {
		ttl, err := cli.TimeToLive(ctx, id, clientv3.WithAttachedKeys())
		if err != nil {
			t.Fatal(err)
		}
		// Bucket [14:00, 15:00) ends 3h after 12:00, plus 10m of grace.
		if want := int64((3*time.Hour + 10*time.Minute) / time.Second); ttl.GrantedTTL != want {
			t.Errorf("lease TTL = %ds, want %ds", ttl.GrantedTTL, want)
		}
		if len(ttl.Keys) != 2*users {
			t.Errorf("lease holds %d keys, want %d (token and index entry per token)", len(ttl.Keys), 2*users)
		}
	}
	// An hour later the next tokens expire in the next bucket: one more lease.
	clock.Advance(time.Hour)
	for i := range 10 {
		mustIssue(t, s, fmt.Sprintf("u%02d@example.com", i))
	}
	if n := len(leasesUsed(t, cli, p+"tokens/")); n != 2 {
		t.Errorf("after a second bucket: %d leases, want 2", n)
	}

	// A lease revoked behind the store's back is replaced, not an error.
	for id := range leasesUsed(t, cli, p+"tokens/") {
		if _, err := cli.Revoke(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	tok := mustIssue(t, s, "u20@example.com")
	if email, _, err := s.ValidateResetToken(ctx, tok); err != nil || email != "u20@example.com" {
		t.Errorf("token issued after its lease was revoked: %q, %v", email, err)
	}
	if _, _, err := s.ValidateResetToken(ctx, tokens[30]); !errors.Is(err, latch.ErrInvalidToken) {
		t.Errorf("token whose lease was revoked: %v, want ErrInvalidToken", err)
	}
}

// TestEtcdReplicas runs two stores on one prefix, as two latch replicas do:
// what one writes the other sees, the rate limit is shared, and of 50
// redeemers split across both exactly one wins.
func TestEtcdReplicas(t *testing.T) {
	c := etcdtest.Start(t, 1)
	p := uniquePrefix()
	a := open(t, c, etcdstore.Options{Prefix: p})
	b := open(t, c, etcdstore.Options{Prefix: p})

	mustAddUser(t, a, "ada@example.com", "Old-Passw0rd!")
	if _, err := b.AddUser(ctx, "ADA@example.com", nil, ""); !errors.Is(err, latch.ErrUserExists) {
		t.Errorf("AddUser on B of A's user: %v, want ErrUserExists", err)
	}
	tok := mustIssue(t, a, "ada@example.com")
	var rl *latch.RateLimitError
	if _, _, err := b.IssueResetToken(ctx, "ada@example.com"); !errors.As(err, &rl) {
		t.Errorf("issue on B right after A: %v, want *RateLimitError", err)
	}
	if email, _, err := b.ValidateResetToken(ctx, tok); err != nil || email != "ada@example.com" {
		t.Errorf("B validates A's token: %q, %v", email, err)
	}

	const redeemers = 50
	var (
		wg      sync.WaitGroup
		begin   = make(chan struct{})
		mu      sync.Mutex
		winners []int
	)
	for i := range redeemers {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-begin
			_, err := s.RedeemResetToken(ctx, tok, fmt.Sprintf("Pw-%02d-Passw0rd!", i))
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, i)
				mu.Unlock()
			case !errors.Is(err, latch.ErrUsedToken):
				t.Errorf("redeemer %d: %v, want ErrUsedToken", i, err)
			}
		})
	}
	close(begin)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d redeemers won (%v), want exactly 1", len(winners), winners)
	}
	pw := fmt.Sprintf("Pw-%02d-Passw0rd!", winners[0])
	for name, s := range map[string]*etcdstore.Store{"A": a, "B": b} {
		if _, ok, err := s.VerifyPassword(ctx, "ada@example.com", pw); !ok || err != nil {
			t.Errorf("winner's password on %s: %v, %v", name, ok, err)
		}
		if _, ok, _ := s.VerifyPassword(ctx, "ada@example.com", "Old-Passw0rd!"); ok {
			t.Errorf("old password still works on %s", name)
		}
	}
}

// TestEtcdDeleteUserManyTokens deletes a user holding more used tokens
// than one etcd transaction may touch.
func TestEtcdDeleteUserManyTokens(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := rawClient(t, c)
	s := open(t, c, etcdstore.Options{MinInterval: -1})
	mustAddUser(t, s, "ada@example.com", "")
	for i := range 130 {
		if _, err := s.RedeemResetToken(ctx, mustIssue(t, s, "ada@example.com"), fmt.Sprintf("Pw-%03d-Passw0rd!", i)); err != nil {
			t.Fatal(err)
		}
	}
	mustIssue(t, s, "ada@example.com")
	if err := s.DeleteUser(ctx, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, s.Prefix(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Errorf("keys left after DeleteUser: %v, %v; want 0", resp.Count, err)
	}
}

// TestEtcdUnavailable stops etcd: calls fail with ErrUnavailable within the
// request timeout, the up gauge falls to 0, and everything works again once
// etcd is back, without reopening the store.
func TestEtcdUnavailable(t *testing.T) {
	c := etcdtest.Start(t, 1)
	reg := prometheus.NewRegistry()
	const timeout = 500 * time.Millisecond
	s := open(t, c, etcdstore.Options{Registerer: reg, RequestTimeout: timeout, MinInterval: -1})
	mustAddUser(t, s, "ada@example.com", "Ada-Passw0rd!")
	tok := mustIssue(t, s, "ada@example.com")
	now := time.Now()
	sess := mustCreateSession(t, s, now, "ada@example.com", time.Hour)
	ada, err := s.GetUser(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if up := gaugeValue(t, reg, "latch_store_etcd_up"); up != 1 {
		t.Errorf("latch_store_etcd_up = %v, want 1", up)
	}

	c.Stop(0)
	calls := map[string]func() error{
		"GetUser":            func() error { _, err := s.GetUser(ctx, "ada@example.com"); return err },
		"VerifyPassword":     func() error { _, _, err := s.VerifyPassword(ctx, "ada@example.com", "Ada-Passw0rd!"); return err },
		"IssueResetToken":    func() error { _, _, err := s.IssueResetToken(ctx, "ada@example.com"); return err },
		"ValidateResetToken": func() error { _, _, err := s.ValidateResetToken(ctx, tok); return err },
		"RedeemResetToken":   func() error { _, err := s.RedeemResetToken(ctx, tok, "New-Passw0rd!"); return err },
		"ActiveTokens":       func() error { _, err := s.ActiveTokens(ctx); return err },
		"AddUser":            func() error { _, err := s.AddUser(ctx, "bob@example.com", nil, ""); return err },
		"CreateBrowserSession": func() error {
			return s.CreateBrowserSession(ctx, newSessionKey(), latch.BrowserSession{Email: ada.Email,
				Generation: ada.Generation, Created: now, LastSeen: now, Expires: now.Add(time.Hour)})
		},
		"BrowserSession":       func() error { _, err := s.BrowserSession(ctx, sess); return err },
		"TouchBrowserSession":  func() error { return s.TouchBrowserSession(ctx, sess, now) },
		"DeleteBrowserSession": func() error { return s.DeleteBrowserSession(ctx, sess) },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if took := time.Since(start); took > timeout+time.Second {
			t.Errorf("%s took %v with etcd down, want about %v", name, took, timeout)
		}
		if !errors.Is(err, latch.ErrUnavailable) {
			t.Errorf("%s with etcd down: %v, want ErrUnavailable", name, err)
		}
	}
	if up := gaugeValue(t, reg, "latch_store_etcd_up"); up != 0 {
		t.Errorf("latch_store_etcd_up with etcd down = %v, want 0", up)
	}
	errs, err := testutil.GatherAndCount(reg, "latch_store_etcd_request_errors_total")
	if err != nil || errs != 2 {
		t.Errorf("request error series: %d, %v", errs, err)
	}

	c.Restart(0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.GetUser(ctx, "ada@example.com")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover after etcd came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The token may or may not have been redeemed by the call that timed
	// out; either way it answers consistently now.
	if _, err := s.RedeemResetToken(ctx, tok, "New-Passw0rd!"); err != nil && !errors.Is(err, latch.ErrUsedToken) {
		t.Errorf("redeem after recovery: %v", err)
	}
	if _, ok, err := s.VerifyPassword(ctx, "ada@example.com", "New-Passw0rd!"); !ok || err != nil {
		t.Errorf("new password after recovery: %v, %v", ok, err)
	}
	if up := gaugeValue(t, reg, "latch_store_etcd_up"); up != 1 {
		t.Errorf("latch_store_etcd_up after recovery = %v, want 1", up)
	}
}

// gaugeValue gathers reg and returns the value of the gauge name.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
