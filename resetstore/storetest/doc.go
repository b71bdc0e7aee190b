// Package storetest is the conformance suite every user and reset-token
// backend of latch passes: the bbolt store (resetstore) and the etcd store
// (resetstore/etcdstore) run the same tests, so cmd/latch can treat them as
// one (the same users, the same sentinel errors, the same token semantics).
//
// A backend's test calls Run with an Opener that returns a fresh, empty
// store on the clock it is given, closed when the test ends:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, clock func() time.Time, o storetest.Options) storetest.Store {
//			...
//		})
//	}
//
// The suite only uses exported behaviour. Tests a backend needs beyond it
// (durability, group commit, leases, failover) live in the backend's own
// package.
package storetest
