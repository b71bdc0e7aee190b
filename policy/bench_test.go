package policy

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casbin/casbin/v2"
)

// benchSpec is the synthetic admin-API policy the benchmarks use: a role
// per 75 rules, a resource per 50 rules, 5% deny rules, role chains.
func benchSpec(rules int) genSpec {
	return genSpec{rules: rules, rulesPerRole: 75, resources: max(rules/50, 10), denyPercent: 5, perm: true}
}

type benchPolicy struct {
	gp   genPolicy
	opts Options
	reqs []benchRequest
}

type benchRequest struct {
	sub, method, path string
	roles             []string
}

var (
	benchPoliciesMu sync.Mutex
	benchPolicies   = map[int]*benchPolicy{}
	benchDir        string // created by the first benchmark that needs it
)

func benchRoot(b *testing.B) string {
	if benchDir == "" {
		d, err := os.MkdirTemp("", "latch-policy-bench")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = d
	}
	return benchDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// loadBenchPolicy writes the synthetic policy of the given size once per
// run, with 4096 requests drawn for it.
func loadBenchPolicy(b *testing.B, rules int) *benchPolicy {
	benchPoliciesMu.Lock()
	defer benchPoliciesMu.Unlock()
	if bp := benchPolicies[rules]; bp != nil {
		return bp
	}
	gp := generatePolicy(uint64(rules), benchSpec(rules))
	bp := &benchPolicy{gp: gp}
	// Benchmarks share the files, so they outlive any one benchmark's
	// TempDir; TestMain removes them.
	dir, err := os.MkdirTemp(benchRoot(b), strconv.Itoa(rules))
	if err != nil {
		b.Fatal(err)
	}
	bp.opts = writePolicyIn(b, dir, modelText(pWithPerm, allowNoDeny, stdMatcher), gp.csv)
	rng := rand.New(rand.NewPCG(uint64(rules), 7))
	for range 4096 {
		sub, roles, method, path := gp.genRequest(rng)
		bp.reqs = append(bp.reqs, benchRequest{sub, method, path, roles})
	}
	benchPolicies[rules] = bp
	return bp
}

func openBench(b *testing.B, bp *benchPolicy, cacheEntries int) *Engine {
	b.Helper()
	o := bp.opts
	o.CacheEntries = cacheEntries
	e, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkDecideWarm decides requests that were decided before: the
// decision cache's path, at any policy size.
func BenchmarkDecideWarm(b *testing.B) {
	for _, n := range []int{100, 10000, 100000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			bp := loadBenchPolicy(b, n)
			e := openBench(b, bp, 0)
			reqs := bp.reqs[:256]
			for _, r := range reqs {
				if _, err := e.Decide(r.sub, r.roles, r.method, r.path); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := reqs[i%len(reqs)]
				i++
				if _, err := e.Decide(r.sub, r.roles, r.method, r.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecideAllWarm decides, through the cache, requests with two
// readings as the proxy does (one DecideAll), against Decide on each
// reading. The second reading repeats the first, standing for a
// lower-case or Unicode reading the rules answer alike, so that allowed
// requests are decided twice.
func BenchmarkDecideAllWarm(b *testing.B) {
	bp := loadBenchPolicy(b, 10000)
	e := openBench(b, bp, 0)
	type request struct {
		sub      string
		roles    []string
		methods  []string
		readings []string
	}
	var reqs []request
	for _, r := range bp.reqs[:256] {
		q := request{r.sub, r.roles, []string{r.method}, []string{r.path, r.path}}
		if _, err := e.DecideAll(q.sub, q.roles, q.methods, q.readings); err != nil {
			b.Fatal(err)
		}
		reqs = append(reqs, q)
	}
	b.Run("DecideAll", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := reqs[i%len(reqs)]
			i++
			if _, err := e.DecideAll(r.sub, r.roles, r.methods, r.readings); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Decide each", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := reqs[i%len(reqs)]
			i++
			for _, p := range r.readings {
				if d, err := e.Decide(r.sub, r.roles, r.methods[0], p); err != nil || !d.Allow {
					break
				}
			}
		}
	})
}

// BenchmarkDecideWarmParallel is BenchmarkDecideWarm/10000 from every CPU.
func BenchmarkDecideWarmParallel(b *testing.B) {
	bp := loadBenchPolicy(b, 10000)
	e := openBench(b, bp, 0)
	reqs := bp.reqs[:256]
	for _, r := range reqs {
		if _, err := e.Decide(r.sub, r.roles, r.method, r.path); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1) * 61)
		for pb.Next() {
			r := reqs[i%len(reqs)]
			i++
			if _, err := e.Decide(r.sub, r.roles, r.method, r.path); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// casbinDecide is Decide's semantics on a plain Casbin enforcer, without
// explaining denials: what deciding cost before latch's index and cache.
func casbinDecide(e *casbin.Enforcer, r benchRequest) (bool, error) {
	allowed := false
	for i := -1; i < len(r.roles); i++ {
		subject := r.sub
		if i >= 0 {
			if r.roles[i] == "" {
				continue
			}
			subject = RolePrefix + r.roles[i]
		}
		ok, rule, err := e.EnforceEx(subject, r.path, r.method)
		if err != nil {
			return false, err
		}
		if ok {
			allowed = true
		} else if len(rule) > 0 {
			return false, nil
		}
	}
	return allowed, nil
}

func casbinEnforcer(b *testing.B, bp *benchPolicy) *casbin.Enforcer {
	b.Helper()
	e, err := casbin.NewEnforcer(bp.opts.ModelPath, bp.opts.RulesPath)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkCasbinEnforce is the baseline for BenchmarkDecideCold: the same
// requests on the same policy, decided by a plain Casbin enforcer.
func BenchmarkCasbinEnforce(b *testing.B) {
	b.Run("10000", func(b *testing.B) {
		bp := loadBenchPolicy(b, 10000)
		e := casbinEnforcer(b, bp)
		reqs := bp.reqs[:coldRequests]
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := casbinDecide(e, reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// coldRequests is how many distinct requests the cold benchmarks cycle
// through, and the baseline times once.
const coldRequests = 128

var (
	casbinBaselineOnce sync.Once
	casbinBaselineNs   float64
)

// casbinBaseline times plain Casbin on the cold benchmarks' requests, once
// per run, so that BenchmarkDecideCold can report how many times faster it
// is in the same run.
func casbinBaseline(b *testing.B, bp *benchPolicy) float64 {
	casbinBaselineOnce.Do(func() {
		e := casbinEnforcer(b, bp)
		start := time.Now()
		for _, r := range bp.reqs[:coldRequests] {
			if _, err := casbinDecide(e, r); err != nil {
				b.Fatal(err)
			}
		}
		casbinBaselineNs = float64(time.Since(start).Nanoseconds()) / coldRequests
	})
	return casbinBaselineNs
}

// BenchmarkDecideCold decides requests the cache has not seen (the cache is
// off), explaining denials too, and reports plain Casbin's time for the
// same requests and the ratio.
func BenchmarkDecideCold(b *testing.B) {
	b.Run("10000", func(b *testing.B) {
		bp := loadBenchPolicy(b, 10000)
		base := casbinBaseline(b, bp)
		e := openBench(b, bp, -1)
		reqs := bp.reqs[:coldRequests]
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := reqs[i%len(reqs)]
			i++
			if _, err := e.Decide(r.sub, r.roles, r.method, r.path); err != nil {
				b.Fatal(err)
			}
		}
		ns := float64(b.Elapsed().Nanoseconds()) / float64(i)
		b.ReportMetric(base, "casbin-ns/op")
		b.ReportMetric(base/ns, "x-faster-than-casbin")
	})
}

// BenchmarkReload reloads a policy of the given size while a goroutine keeps
// deciding, and reports the heap one loaded policy holds, the heap's peak
// above that during reloads (sampled every millisecond), bytes allocated
// per reload, and the slowest decision seen meanwhile. Two kinds of reload:
//
//   - one-rule: each reload replaces one p rule in the middle of the file
//     with a new one (a new pattern too), as an operator's edit does and as
//     bench/cmd/harness's reload scenario does;
//   - all-rules: the policy alternates with another of the same size in
//     which every rule, subject and pattern is different, so that a reload
//     can reuse nothing of the policy in force.
func BenchmarkReload(b *testing.B) {
	for _, kind := range []string{"one-rule", "all-rules"} {
		for _, n := range []int{10000, 100000} {
			b.Run("change="+kind+"/rules="+strconv.Itoa(n), func(b *testing.B) {
				bp := loadBenchPolicy(b, n)
				var next func(i int) string
				switch kind {
				case "one-rule":
					next = oneRuleEdits(bp.gp.csv)
				default:
					next = alternatePolicies(bp.gp.csv, otherPolicy(n))
				}
				benchReload(b, bp, next)
			})
		}
	}
}

// oneRuleEdits returns the policy csv with its middle p rule replaced by
// one that differs on every call.
func oneRuleEdits(csv string) func(i int) string {
	lines := strings.SplitAfter(csv, "\n")
	mid := len(lines) / 2
	for !strings.HasPrefix(lines[mid], "p,") {
		mid++
	}
	head, tail := strings.Join(lines[:mid], ""), strings.Join(lines[mid+1:], "")
	return func(i int) string {
		return fmt.Sprintf("%sp, role:r1, /api/admin/edit%d/:id, ^GET$, allow, PERM_1\n%s", head, i, tail)
	}
}

// otherPolicy is a policy of about n rules sharing no rule, subject or
// pattern with the benchmarks' policy of that size.
func otherPolicy(n int) string {
	csv := generatePolicy(uint64(n)+1, benchSpec(n)).csv
	csv = strings.ReplaceAll(csv, "role:", "role:other-")
	csv = strings.ReplaceAll(csv, "@example.com", "@other.example.com")
	return strings.ReplaceAll(csv, "/api/admin/", "/api/other/")
}

// alternatePolicies returns b and a in turn, starting with b (a is in force
// first).
func alternatePolicies(a, b string) func(i int) string {
	return func(i int) string {
		if i%2 == 0 {
			return b
		}
		return a
	}
}

// benchReload opens bp's policy from its own copy of the files and times
// reloads of next(0), next(1), ... written over them.
func benchReload(b *testing.B, bp *benchPolicy, next func(i int) string) {
	runtime.GC()
	empty := heapObjects()
	// Its own copy of the files: each reload below changes them, as
	// Reload builds nothing when the files hold the policy in force.
	o := writePolicyIn(b, b.TempDir(), modelText(pWithPerm, allowNoDeny, stdMatcher), bp.gp.csv)
	e, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	before := heapObjects()

	var peak, slowest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Both goroutines below loop until stop is closed: at the end, or
	// when b.Fatal ends the benchmark early.
	stopAll := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopAll()
	wg.Add(2)
	go func() { // heap sampler
		defer wg.Done()
		for {
			if h := heapObjects(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	go func() { // a request stream that must not stall
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := bp.reqs[i%64]
			t0 := time.Now()
			_, _ = e.Decide(r.sub, r.roles, r.method, r.path)
			if d := time.Since(t0).Nanoseconds(); d > slowest.Load() {
				slowest.Store(d)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	reloads := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if err := os.WriteFile(o.RulesPath, []byte(next(reloads)), 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := e.Reload(); err != nil {
			b.Fatal(err)
		}
		reloads++
	}
	runtime.ReadMemStats(&ms1)
	stopAll()
	b.ReportMetric(float64(peak.Load()-before)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(reloads)/(1<<20), "alloc-MB/op")
	b.ReportMetric(float64(slowest.Load())/1e6, "max-decide-ms")
	b.ReportMetric(float64(before-empty)/(1<<20), "policy-heap-MB")
	b.ReportMetric(float64(e.Rules()), "rules")
}

// heapObjects is the heap's current occupancy, read without stopping the
// world.
func heapObjects() int64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// TestBenchPolicyShape keeps the benchmarks' policy honest: the sizes it
// claims and both answers common.
func TestBenchPolicyShape(t *testing.T) {
	gp := generatePolicy(10000, benchSpec(10000))
	if gp.p < 10000 || gp.p > 10100 {
		t.Errorf("p rules: got %d, want about 10000", gp.p)
	}
	o := writePolicy(t, modelText(pWithPerm, allowNoDeny, stdMatcher), gp.csv)
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	allowed := 0
	const n = 500
	for range n {
		sub, roles, method, path := gp.genRequest(rng)
		d, err := e.Decide(sub, roles, method, path)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allow {
			allowed++
		}
	}
	if allowed < n/20 || allowed > n-n/20 {
		t.Errorf("%d of %d requests allowed; want both answers common", allowed, n)
	}
	t.Logf("%d p rules, %d g rules, %d of %d allowed", gp.p, gp.g, allowed, n)
}
