package etcdstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/latch-dev/latch/resetstore/etcdstore"
	"github.com/latch-dev/latch/resetstore/etcdstore/etcdtest"
	"github.com/latch-dev/latch/resetstore/storetest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestEtcdMetrics checks the reset families, named as the bbolt store's,
// and the etcd families after known traffic; Close unregisters them all.
func TestEtcdMetrics(t *testing.T) {
	c := etcdtest.Start(t, 1)
	reg := prometheus.NewRegistry()
	clock := storetest.NewClock()
	s := open(t, c, etcdstore.Options{Registerer: reg, Now: clock.Now, TokenTTL: time.Hour})
	mustAddUser(t, s, "ada@example.com", "")
	mustAddUser(t, s, "bob@example.com", "")
	used := mustIssue(t, s, "ada@example.com")
	s.IssueResetToken(ctx, "ada@example.com") // rate limited
	mustIssue(t, s, "bob@example.com")
	if _, err := s.RedeemResetToken(ctx, used, "Some-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	s.RedeemResetToken(ctx, used, "Other-Passw0rd!") // used
	s.ValidateResetToken(ctx, "nope")                // invalid
	clock.Advance(time.Hour)
	s.ValidateResetToken(ctx, used) // expired

	const want = `
# HELP latch_reset_rate_limited_total Reset token issuances refused by the per-user rate limit.
# TYPE latch_reset_rate_limited_total counter
latch_reset_rate_limited_total 1
# HELP latch_reset_tokens_active Reset tokens neither expired nor used.
# TYPE latch_reset_tokens_active gauge
latch_reset_tokens_active 0
# HELP latch_reset_tokens_issued_total Password reset tokens issued and committed.
# TYPE latch_reset_tokens_issued_total counter
latch_reset_tokens_issued_total 2
# HELP latch_reset_tokens_redeemed_total Password reset tokens redeemed (password changed).
# TYPE latch_reset_tokens_redeemed_total counter
latch_reset_tokens_redeemed_total 1
# HELP latch_reset_tokens_rejected_total Password reset tokens refused on validation or redemption, by reason.
# TYPE latch_reset_tokens_rejected_total counter
latch_reset_tokens_rejected_total{reason="expired"} 1
latch_reset_tokens_rejected_total{reason="invalid"} 1
latch_reset_tokens_rejected_total{reason="used"} 1
# HELP latch_store_etcd_request_errors_total Failed requests to etcd, by reason: unavailable (unreachable, no leader, timed out) or other.
# TYPE latch_store_etcd_request_errors_total counter
latch_store_etcd_request_errors_total{reason="other"} 0
latch_store_etcd_request_errors_total{reason="unavailable"} 0
# HELP latch_store_etcd_up 1 if the last request to etcd was answered, 0 if etcd could not be reached or did not answer in time.
# TYPE latch_store_etcd_up gauge
latch_store_etcd_up 1
`
	names := []string{"latch_reset_rate_limited_total", "latch_reset_tokens_active", "latch_reset_tokens_issued_total",
		"latch_reset_tokens_redeemed_total", "latch_reset_tokens_rejected_total",
		"latch_store_etcd_request_errors_total", "latch_store_etcd_up"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "latch_store_commit_duration_seconds"); err != nil || n != 1 {
		t.Errorf("commit histogram: %d series, %v", n, err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _ := testutil.GatherAndCount(reg); n != 0 {
		t.Errorf("%d series left after Close, want 0", n)
	}
}
