package policy

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestDecideDuringContinuousReload alternates between two policies that both
// allow X (admin resets a password) and deny Y (editor resets a password)
// while many goroutines decide X and Y, through Reload and the watcher at
// once. Every answer must be right, whichever policy it came from. Run it
// with -race.
func TestDecideDuringContinuousReload(t *testing.T) {
	f := newFixture(t)
	e := f.open(t)
	watching(t, e)
	policyA := readShipped(t, "policy.csv")
	policyB := policyA + auditorRule

	const reloads = 30
	var (
		stop     atomic.Bool
		wrong    atomic.Int64
		failed   atomic.Int64
		decided  atomic.Int64
		wg       sync.WaitGroup
		firstBad sync.Once
	)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				x, errX := e.Decide("alice@example.com", []string{"admin"}, "POST", resetPath)
				y, errY := e.Decide("bob@example.com", []string{"editor"}, "POST", resetPath)
				decided.Add(2)
				if errX != nil || errY != nil {
					failed.Add(1)
					continue
				}
				if !x.Allow || y.Allow {
					wrong.Add(1)
					firstBad.Do(func() { t.Logf("wrong answer: X=%+v Y=%+v", x, y) })
				}
			}
		}()
	}
	for i := 0; i < reloads; i++ {
		content := policyA
		if i%2 == 0 {
			content = policyB
		}
		writeFile(t, f.rules, content)
		if err := e.Reload(); err != nil {
			t.Errorf("Reload %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()

	if n := wrong.Load(); n != 0 {
		t.Errorf("wrong decisions during reloads: got %d, want 0", n)
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("failed decisions during reloads: got %d, want 0", n)
	}
	if got := e.Generation(); got < reloads+1 {
		t.Errorf("Generation: got %d, want at least %d (every Reload installs)", got, reloads+1)
	}
	if decided.Load() == 0 {
		t.Errorf("no decisions were made; the test checked nothing")
	}
}
