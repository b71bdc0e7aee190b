package resetstore_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/latch-dev/latch/resetstore"
	"github.com/latch-dev/latch/resetstore/storetest"
)

// TestConformance runs the suite every backend passes against the bbolt store.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock func() time.Time, o storetest.Options) storetest.Store {
		s, err := resetstore.Open(filepath.Join(t.TempDir(), "latch.db"), resetstore.Options{
			TokenTTL: o.TokenTTL, MinInterval: o.MinInterval, Now: clock, Hash: cheapHash})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
