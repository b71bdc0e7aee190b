package resetstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/latch-dev/latch/resetstore"
)

// TestSweepMalformedIndexKey: an expiry index key of the wrong length (a
// damaged file) makes neither Sweep nor ActiveTokens panic; Sweep removes
// it and still sweeps the real expired tokens around it.
func TestSweepMalformedIndexKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock := openStore(t, resetstore.Options{TokenTTL: time.Hour, MinInterval: -1})
	mustAddUser(t, s, "ada@example.com", "")
	mustIssue(t, s, "ada@example.com")
	// {0x00, 0x01} sorts before every real key (an expiry in the past);
	// {0xff} after every one (far future): Sweep reaches the first,
	// ActiveTokens the second.
	for _, k := range [][]byte{{0x00, 0x01}, {0xff}} {
		if err := resetstore.PutRaw(s, resetstore.BucketTokenExpiry, k, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.ActiveTokens(ctx); err != nil || n != 1 {
		t.Errorf("ActiveTokens = %d, %v; want 1, nil", n, err)
	}
	clock.Advance(2 * time.Hour)
	n, err := s.Sweep(ctx)
	if err != nil || n != 1 {
		t.Errorf("Sweep = %d, %v; want the one expired token", n, err)
	}
	// The short key is gone; the far-future one is not yet due.
	if got := bucketLen(t, s, resetstore.BucketTokenExpiry); got != 1 {
		t.Errorf("expiry index holds %d keys after Sweep, want 1 (the 0xff key)", got)
	}
	if got := bucketLen(t, s, resetstore.BucketTokens); got != 0 {
		t.Errorf("tokens bucket holds %d records after Sweep, want 0", got)
	}
	if n, err := s.ActiveTokens(ctx); err != nil || n != 0 {
		t.Errorf("ActiveTokens after Sweep = %d, %v; want 0, nil", n, err)
	}
}
