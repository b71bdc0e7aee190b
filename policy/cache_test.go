package policy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCacheStaysBounded sends 100k distinct paths full of IDs; the cache
// must never hold more than its bound, and a request asked all along must
// keep its answer.
func TestCacheStaysBounded(t *testing.T) {
	e := newFixture(t).open(t)
	c := e.cur.Load().cache
	if got, want := c.bound(), defaultCacheEntries; got != want {
		t.Fatalf("bound: got %d, want %d", got, want)
	}
	n := 100_000
	if raceEnabled {
		n = 40_000 // still more than the bound
	}
	for i := range n {
		path := fmt.Sprintf("/api/admin/projects/p-%d/features/f-%x/environments/e%d", i, i*7919, i%13)
		if allows(t, e, "carol@example.com", []string{"viewer"}, "GET", path) != true {
			t.Fatalf("viewer denied reading %s", path)
		}
		if i%1000 == 0 && !allows(t, e, "alice@example.com", []string{"admin"}, "POST", resetPath) {
			t.Fatalf("admin denied after %d requests", i)
		}
		if got := c.len(); got > c.bound() {
			t.Fatalf("after %d requests the cache holds %d entries, more than its bound %d", i+1, got, c.bound())
		}
	}
	if got := c.len(); got < c.bound()/2 {
		t.Errorf("cache holds %d entries after %d distinct requests, want at least half its bound %d", got, n, c.bound())
	}
}

func TestCacheSkipsLongRequests(t *testing.T) {
	e := newFixture(t).open(t)
	c := e.cur.Load().cache
	long := "/api/admin/features/" + strings.Repeat("x", maxCacheKey)
	for range 3 {
		if !allows(t, e, "carol@example.com", []string{"viewer"}, "GET", long) {
			t.Fatal("viewer denied a long feature path")
		}
	}
	if got := c.len(); got != 0 {
		t.Errorf("cache holds %d entries after only over-long requests, want 0", got)
	}
	allows(t, e, "carol@example.com", []string{"viewer"}, "GET", "/api/admin/features/short")
	if got := c.len(); got != 1 {
		t.Errorf("cache holds %d entries after one short request, want 1", got)
	}
}

// TestCacheAnswersAreCallersOwn checks that changing a returned Rule does
// not change what the next caller gets.
func TestCacheAnswersAreCallersOwn(t *testing.T) {
	e := newFixture(t).open(t)
	first, err := e.Decide("alice@example.com", []string{"admin"}, "POST", resetPath)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(first.Rule)
	first.Rule[colSub] = "role:mallory"
	for range 2 {
		d, err := e.Decide("alice@example.com", []string{"admin"}, "POST", resetPath)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.Rule, want) {
			t.Fatalf("Rule: got %q, want %q", d.Rule, want)
		}
		d.Rule[colSub] = "role:mallory"
	}
}

func TestCacheOff(t *testing.T) {
	f := newFixture(t)
	o := f.options()
	o.CacheEntries = -1
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if e.cur.Load().cache != nil {
		t.Fatal("CacheEntries -1: got a cache, want none")
	}
	if !allows(t, e, "alice@example.com", []string{"admin"}, "POST", resetPath) || allows(t, e, "bob@example.com", []string{"editor"}, "POST", resetPath) {
		t.Error("wrong decisions without a cache")
	}
}

// TestCacheNeverServesOlderPolicy alternates two policies that disagree
// about several requests, asks them after every reload (so that each was
// cached under the previous policy), and checks every answer against the
// policy in force.
func TestCacheNeverServesOlderPolicy(t *testing.T) {
	f := newFixture(t)
	e := f.open(t)
	policyA := readShipped(t, "policy.csv")
	policyB := policyA + auditorRule +
		"p, role:viewer, /api/admin/segments/*, ^(GET|HEAD)$, deny\n" +
		"p, role:editor, /api/admin/user-admin, ^GET$, allow, ADMIN\n"
	type ask struct {
		user, role, method, path string
		inA, inB                 bool
	}
	asks := []ask{
		{"eve@example.com", "auditor", "GET", "/api/admin/events", false, true},
		{"carol@example.com", "viewer", "GET", "/api/admin/segments/s1", true, false},
		{"bob@example.com", "editor", "GET", "/api/admin/segments/s1", true, false}, // through the role chain
		{"bob@example.com", "editor", "GET", "/api/admin/user-admin", false, false}, // the editor deny still wins in B
		{"alice@example.com", "admin", "POST", resetPath, true, true},
	}
	for i := range 20 {
		inB := i%2 == 1
		content := policyA
		if inB {
			content = policyB
		}
		writeFile(t, f.rules, content)
		if i > 0 {
			if err := e.Reload(); err != nil {
				t.Fatalf("Reload %d: %v", i, err)
			}
		}
		for round := range 2 { // the second round is answered from the cache
			for _, a := range asks {
				want := a.inA
				if inB {
					want = a.inB
				}
				d, err := e.Decide(a.user, []string{a.role}, a.method, a.path)
				if err != nil {
					t.Fatal(err)
				}
				x, _ := e.Explain(a.user, []string{a.role}, a.method, a.path)
				if d.Allow != want || x.Allow != want {
					t.Errorf("reload %d (policy B: %v), round %d: %s as %s %s %s: got Decide %v, Explain %v, want %v",
						i, inB, round, a.user, a.role, a.method, a.path, d.Allow, x.Allow, want)
				}
			}
		}
	}
}

// TestCacheDuringConcurrentReloads decides while policies alternate; an
// answer given while the generation did not change must be that
// generation's policy's answer.
func TestCacheDuringConcurrentReloads(t *testing.T) {
	f := newFixture(t)
	e := f.open(t)
	policyA := readShipped(t, "policy.csv")
	policyB := policyA + auditorRule
	var auditorIn sync.Map // generation -> whether the auditor rule is in force
	auditorIn.Store(e.Generation(), false)

	var stop atomic.Bool
	var checked, wrong atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				g1 := e.Generation()
				d, err := e.Decide("eve@example.com", []string{"auditor"}, "GET", "/api/admin/events")
				g2 := e.Generation()
				if err != nil || g1 != g2 {
					continue
				}
				want, ok := auditorIn.Load(g1)
				if !ok {
					continue
				}
				checked.Add(1)
				if d.Allow != want.(bool) {
					wrong.Add(1)
				}
			}
		}()
	}
	for i := range 30 {
		inB := i%2 == 0
		content := policyA
		if inB {
			content = policyB
		}
		writeFile(t, f.rules, content)
		auditorIn.Store(e.Generation()+1, inB) // the generation Reload is about to install
		if err := e.Reload(); err != nil {
			t.Fatalf("Reload %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d of %d answers were not their generation's", n, checked.Load())
	}
	if checked.Load() == 0 {
		t.Error("no answer was checked")
	}
}
