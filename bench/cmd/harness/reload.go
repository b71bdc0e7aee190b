package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/latch-dev/latch/bench/load"
	"github.com/latch-dev/latch/policy"
)

const reloadRules = 10_000

// reload is target 3: the p99 of a steady (paced) request stream while the
// 10,000-rule policy is rewritten by rename and SIGHUP'd every 0.5s,
// against the same stream without reloads.
func (e *env) reload(ctx context.Context) error {
	cfg, err := writeLatchConfig(filepath.Join(e.tmp, "reload"), e.upstream.addr, e.keys, reloadRules)
	if err != nil {
		return err
	}
	// How long building the policy takes, in this process (latch logs no
	// durations), profiled.
	const builds = 3
	var build time.Duration
	sum, err := e.profileFunc(ctx, "policy-build", fmt.Sprintf("policy-build: policy.Open of %d rules, %d times, in the harness", reloadRules, builds),
		buildStages, func() error {
			t0 := time.Now()
			for range builds {
				if _, err := policy.Open(policy.Options{ModelPath: cfg.model, RulesPath: cfg.rules, PollInterval: -1}); err != nil {
					return err
				}
			}
			build = time.Since(t0) / builds
			return nil
		})
	if err != nil {
		return err
	}
	e.profiles = append(e.profiles, sum.summary)

	p, err := e.start("latch-10k", e.bin["latch"], []string{"serve", "--config", cfg.path}, nil, cfg.log, false)
	if err != nil {
		return err
	}
	defer p.stop()
	if err := waitHTTP(ctx, "http://"+cfg.admin+"/readyz", 200, 2*time.Minute, p); err != nil {
		return err
	}
	token, err := e.keys.mint("bench@example.com", benchRole)
	if err != nil {
		return err
	}
	// A steady stream: 30% of what 8 connections get through closed-loop.
	probe, err := load.Run(ctx, e.featureSpec(cfg.listen, token, 8, 2*time.Second))
	if err != nil {
		return err
	}
	if err := onlyStatus("10k-rule probe", probe, 200); err != nil {
		return err
	}
	rate := min(max(probe.RPS()*0.3, 20), 500)
	spec := e.featureSpec(cfg.listen, token, 16, e.o.dur)
	spec.Rate = rate
	e.log("  10k-rule capacity %.0f req/s (8 conns); steady stream %.0f req/s; policy build %v", probe.RPS(), rate, build.Round(time.Millisecond))

	var quiet, busy, quiet50, busy50 []float64
	sent := 0
	for r := range e.o.rounds {
		a, err := load.Run(ctx, spec)
		if err != nil {
			return err
		}
		if err := onlyStatus("steady stream", a, 200); err != nil {
			return err
		}
		stopReloads := reloadEvery(p, cfg, &sent)
		b, err := load.Run(ctx, spec)
		if rerr := stopReloads(); err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
		if err := onlyStatus("steady stream during reloads", b, 200); err != nil {
			return err
		}
		// Reloads still queued (SIGHUP and the file watcher) would run into
		// the next quiet round: wait until the log shows none for 1.5s.
		if err := settleReloads(ctx, cfg.log); err != nil {
			return err
		}
		quiet, busy = append(quiet, ms(a.Pct(99))), append(busy, ms(b.Pct(99)))
		quiet50, busy50 = append(quiet50, ms(a.Pct(50))), append(busy50, ms(b.Pct(50)))
		e.log("  round %d  no reloads p50 %v p99 %v   reloading p50 %v p99 %v", r+1, a.Pct(50).Round(time.Microsecond),
			a.Pct(99).Round(time.Microsecond), b.Pct(50).Round(time.Microsecond), b.Pct(99).Round(time.Microsecond))
	}
	rs, err := reloadTimes(cfg.log)
	if err != nil {
		return err
	}
	e.table.check(fmt.Sprintf("3 p99 at %.0f req/s, 10k rules, reload every 0.5s", rate),
		fmt.Sprintf("%.2f ms (reloading)", median(busy)), fmt.Sprintf("%.2f ms (no reloads)", median(quiet)),
		pairedRatio(busy, quiet), 2, true, "≤ 2.00×")
	e.table.info("3 p50 of the same", fmt.Sprintf("%.2f ms", median(busy50)), fmt.Sprintf("%.2f ms", median(quiet50)),
		fmt.Sprintf("%.2f×", median(busy50)/median(quiet50)))
	e.table.info("3 reloads: SIGHUP → \"policy reloaded\" (log)", rs.String(sent),
		fmt.Sprintf("build %v (policy.Open, in the harness)", build.Round(time.Millisecond)), "—")
	if e.o.profile {
		// One more reloading run, under the profiler (not part of the medians).
		stopReloads := reloadEvery(p, cfg, &sent)
		_, _, err := e.profileRun(ctx, "reload-10k", p, cfg.admin, spec, 200, reloadStages, nil)
		if rerr := stopReloads(); err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// reloadEvery rewrites cfg's rules (a one-rule change, by rename) and
// sends p SIGHUP every 0.5s, counting in sent, until the returned stop is
// called; stop reports the first error.
func reloadEvery(p *proc, cfg *latchConfig, sent *int) (stop func() error) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var rerr error
	wg.Go(func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if err := writeAtomic(cfg.rules, policyCSV(reloadRules, *sent+1)); err != nil {
				rerr = err
				return
			}
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				rerr = err
				return
			}
			*sent++
		}
	})
	return func() error {
		close(done)
		wg.Wait()
		return rerr
	}
}

type reloadStats struct {
	durs              []time.Duration
	reloaded, refused int
}

func (r reloadStats) String(sent int) string {
	if len(r.durs) == 0 {
		return fmt.Sprintf("%d SIGHUPs, %d reloaded, %d refused", sent, r.reloaded, r.refused)
	}
	s := slices.Clone(r.durs)
	slices.Sort(s)
	return fmt.Sprintf("median %v, max %v (%d SIGHUPs, %d reloads, %d refused)",
		s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), sent, r.reloaded, r.refused)
}

// reloadTimes pairs each "SIGHUP: reloading" line with the next reload
// outcome line in latch's JSON log (millisecond timestamps).
func reloadTimes(path string) (reloadStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return reloadStats{}, err
	}
	defer f.Close()
	var st reloadStats
	var pending time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		switch l.Msg {
		case "SIGHUP: reloading":
			if pending.IsZero() {
				pending = l.Time
			}
		case "policy reloaded", "policy reload rejected; previous policy stays in force":
			if l.Msg == "policy reloaded" {
				st.reloaded++
			} else {
				st.refused++
			}
			if !pending.IsZero() {
				st.durs = append(st.durs, l.Time.Sub(pending))
				pending = time.Time{}
			}
		}
	}
	return st, sc.Err()
}

// settleReloads waits (at most 15s) until no reload has ended for 1.5s.
func settleReloads(ctx context.Context, log string) error {
	last, stable := -1, time.Now()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		st, err := reloadTimes(log)
		if err != nil {
			return err
		}
		if n := st.reloaded + st.refused; n != last {
			last, stable = n, time.Now()
		} else if time.Since(stable) >= 1500*time.Millisecond {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}
