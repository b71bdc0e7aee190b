package resetstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latch-dev/latch/resetstore"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s, clock := openStore(t, resetstore.Options{Registerer: reg, TokenTTL: time.Hour})
	ctx := context.Background()
	mustAddUser(t, s, "pat@example.com", "")
	mustAddUser(t, s, "quinn@example.com", "")
	mustAddUser(t, s, "rita@example.com", "")

	used := mustIssue(t, s, "pat@example.com")
	if _, err := s.RedeemResetToken(ctx, used, "pw-Passw0rd!"); err != nil {
		t.Fatal(err)
	}
	_, _ = s.RedeemResetToken(ctx, used, "pw-Passw0rd!")   // used
	_, _, _ = s.ValidateResetToken(ctx, "garbage")         // invalid
	_, _, _ = s.IssueResetToken(ctx, "pat@example.com")    // rate limited
	_, _, _ = s.IssueResetToken(ctx, "nobody@example.com") // not found: not counted
	expiring := mustIssue(t, s, "quinn@example.com")
	mustIssue(t, s, "rita@example.com")
	clock.Advance(30 * time.Minute)
	clock.Advance(30 * time.Minute)
	_, _, _ = s.ValidateResetToken(ctx, expiring) // expired

	const want = `
# HELP latch_reset_rate_limited_total Reset token issuances refused by the per-user rate limit.
# TYPE latch_reset_rate_limited_total counter
latch_reset_rate_limited_total 1
# HELP latch_reset_tokens_active Reset tokens neither expired nor used.
# TYPE latch_reset_tokens_active gauge
latch_reset_tokens_active 0
# HELP latch_reset_tokens_issued_total Password reset tokens issued and committed.
# TYPE latch_reset_tokens_issued_total counter
latch_reset_tokens_issued_total 3
# HELP latch_reset_tokens_redeemed_total Password reset tokens redeemed (password changed).
# TYPE latch_reset_tokens_redeemed_total counter
latch_reset_tokens_redeemed_total 1
# HELP latch_reset_tokens_rejected_total Password reset tokens refused on validation or redemption, by reason.
# TYPE latch_reset_tokens_rejected_total counter
latch_reset_tokens_rejected_total{reason="expired"} 1
latch_reset_tokens_rejected_total{reason="invalid"} 1
latch_reset_tokens_rejected_total{reason="used"} 1
`
	names := []string{
		"latch_reset_rate_limited_total", "latch_reset_tokens_active", "latch_reset_tokens_issued_total",
		"latch_reset_tokens_redeemed_total", "latch_reset_tokens_rejected_total",
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	clock.Advance(-time.Hour) // back to when two tokens were live
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP latch_reset_tokens_active Reset tokens neither expired nor used.
# TYPE latch_reset_tokens_active gauge
latch_reset_tokens_active 2
`), "latch_reset_tokens_active"); err != nil {
		t.Error(err)
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var commits uint64
	var size float64
	for _, mf := range mfs {
		switch mf.GetName() {
		case "latch_store_commit_duration_seconds":
			h := mf.GetMetric()[0].GetHistogram()
			commits = h.GetSampleCount()
			if b := h.GetBucket()[0].GetUpperBound(); b != 100e-6 {
				t.Errorf("first commit bucket = %v, want 0.0001", b)
			}
		case "latch_store_file_size_bytes":
			size = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if commits < 7 {
		t.Errorf("commit histogram count = %d, want at least 7", commits)
	}
	if size < 4096 {
		t.Errorf("file size gauge = %v, want a bbolt file's size", size)
	}

	// Close unregisters, so the file can be reopened on the same registry,
	// and a second live store on it is refused.
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := resetstore.Open(path, resetstore.Options{Registerer: reg})
	if err != nil {
		t.Fatalf("reopen on the same registry: %v", err)
	}
	defer s2.Close()
	other := t.TempDir() + "/other.db"
	if _, err := resetstore.Open(other, resetstore.Options{Registerer: reg}); err == nil {
		t.Error("a second store registered on the same registry")
	} else if errors.Is(err, resetstore.ErrLocked) {
		t.Errorf("second store's error = %v, want a registration error", err)
	}
	// The failed Open released its file.
	s3, err := resetstore.Open(other, resetstore.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after failed registration: %v", err)
	}
	s3.Close()
}
