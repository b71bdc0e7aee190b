package etcdstore_test

import (
	"testing"
	"time"

	"github.com/latch-dev/latch/resetstore/etcdstore"
	"github.com/latch-dev/latch/resetstore/etcdstore/etcdtest"
	"github.com/latch-dev/latch/resetstore/storetest"
)

// TestConformance runs the suite every backend passes against etcd: one
// embedded member for all of it, a fresh prefix for each store.
func TestConformance(t *testing.T) {
	c := etcdtest.Start(t, 1)
	storetest.Run(t, func(t *testing.T, clock func() time.Time, o storetest.Options) storetest.Store {
		return open(t, c, etcdstore.Options{TokenTTL: o.TokenTTL, MinInterval: o.MinInterval, Now: clock})
	})
}
