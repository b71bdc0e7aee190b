package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/latch-dev/latch/bench/load"
)

// latchProc is a running `latch serve` with its files and tokens.
type latchProc struct {
	*proc
	cfg        *latchConfig
	benchToken string // RS256, role bench: allowed GET /api/admin/features/*
	adminToken string // RS256, role admin: allowed on user-admin
	idleRSS    float64
}

// sample is one load run against one process.
type sample struct {
	cpuPerReq time.Duration // process CPU (user+system) per answered request
	res       load.Result
	maxRSS    float64
}

// measure runs spec while reading pid's CPU time (and RSS when rss).
func measure(ctx context.Context, pid int, spec load.Spec, rss bool) (sample, error) {
	var sampler *rssSampler
	if rss {
		sampler = sampleRSS(pid)
	}
	c0, err := cpuSeconds(pid)
	if err != nil {
		return sample{}, err
	}
	res, err := load.Run(ctx, spec)
	if err != nil {
		return sample{}, err
	}
	c1, err := cpuSeconds(pid)
	if err != nil {
		return sample{}, err
	}
	s := sample{res: res}
	if sampler != nil {
		s.maxRSS = sampler.stop()
	}
	if res.Requests > 0 {
		s.cpuPerReq = time.Duration((c1 - c0) / float64(res.Requests) * 1e9)
	}
	return s, nil
}

// onlyStatus fails unless every answer of res was want.
func onlyStatus(what string, res load.Result, want int) error {
	if res.Requests == 0 || res.Status[want] != res.Requests || res.Errors > 0 {
		return fmt.Errorf("%s: want only %d answers, got %s", what, want, res.StatusString())
	}
	return nil
}

func (e *env) startMainLatch(ctx context.Context) (*latchProc, error) {
	cfg, err := writeLatchConfig(filepath.Join(e.tmp, "latch"), e.upstream.addr, e.keys, 100)
	if err != nil {
		return nil, err
	}
	e.log("seeding %d users with `latch users add`", resetUsers+3)
	if err := seedUsers(ctx, e.bin["latch"], cfg, loginPassword); err != nil {
		return nil, err
	}
	p, err := e.start("latch", e.bin["latch"], []string{"serve", "--config", cfg.path}, nil, cfg.log, false)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, "http://"+cfg.admin+"/readyz", 200, 30*time.Second, p); err != nil {
		return nil, err
	}
	p.addr = cfg.listen
	l := &latchProc{proc: p, cfg: cfg}
	// Users were just added: tokens issued in the same second as a user's
	// password change are refused, so mint in the next second.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
	if l.benchToken, err = e.keys.mint("bench@example.com", benchRole); err != nil {
		return nil, err
	}
	if l.adminToken, err = e.keys.mint("admin@example.com", adminRole); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // settle before the idle reading
	if l.idleRSS, err = rssMiB(p.pid()); err != nil {
		return nil, err
	}
	return l, nil
}

// loginPassword is the seeded login user's password (it passes latch's rules).
const loginPassword = "Bench-password-1!"

func (e *env) featureSpec(addr, token string, conns int, dur time.Duration) load.Spec {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return load.Spec{URL: "http://" + addr + "/api/admin/features/{n}", Header: h, Conns: conns, Duration: dur}
}

// overhead is target 1 (CPU per forwarded request against a bare
// ReverseProxy, nginx for reference) and target 6 (RSS).
func (e *env) overhead(ctx context.Context, l *latchProc) error {
	bareProf, err := freeAddr()
	if err != nil {
		return err
	}
	bare, err := e.start("bareproxy", e.bin["bareproxy"], []string{"--upstream", "http://" + e.upstream.addr,
		"--pprof-listen", bareProf}, nil, "", true)
	if err != nil {
		return err
	}
	defer bare.stop()
	type target struct {
		name    string
		p       *proc
		token   string
		samples []sample
	}
	// Every target gets the same request, bearer token included (the
	// baselines forward it unread), so only the work differs.
	targets := []*target{{name: "latch", p: l.proc, token: l.benchToken}, {name: "bare", p: bare, token: l.benchToken}}
	if ng, err := e.startNginx(ctx); err != nil {
		e.log("nginx reference skipped: %v", err)
	} else if ng != nil {
		defer ng.stop()
		targets = append(targets, &target{name: "nginx", p: ng, token: l.benchToken})
	}
	for _, t := range targets { // warm up connections, pools and caches
		if _, err := load.Run(ctx, e.featureSpec(t.p.addr, t.token, e.o.conns, time.Second)); err != nil {
			return err
		}
	}
	// Target 1's ratio is the closest to its limit and the most sensitive
	// to the machine's drift: it gets more rounds.
	for r := range max(e.o.rounds, e.o.overheadRounds) {
		for _, t := range targets {
			s, err := measure(ctx, t.p.pid(), e.featureSpec(t.p.addr, t.token, e.o.conns, e.o.dur), t.name == "latch")
			if err != nil {
				return err
			}
			if err := onlyStatus(t.name, s.res, 200); err != nil {
				return err
			}
			e.log("  round %d %-5s  %8.0f req/s  cpu/req %7.1fµs  p50 %v  p99 %v", r+1, t.name, s.res.RPS(),
				us(s.cpuPerReq), s.res.Pct(50).Round(time.Microsecond), s.res.Pct(99).Round(time.Microsecond))
			t.samples = append(t.samples, s)
		}
	}
	vals := func(t *target, f func(sample) float64) []float64 {
		var xs []float64
		for _, s := range t.samples {
			xs = append(xs, f(s))
		}
		return xs
	}
	med := func(t *target, f func(sample) float64) float64 { return median(vals(t, f)) }
	cpu := func(s sample) float64 { return us(s.cpuPerReq) }
	rps := func(s sample) float64 { return s.res.RPS() }
	p50 := func(s sample) float64 { return ms(s.res.Pct(50)) }
	p99 := func(s sample) float64 { return ms(s.res.Pct(99)) }
	lt, bt := targets[0], targets[1]
	e.bareCPU = med(bt, cpu)
	var ratios []string
	for i, l := range vals(lt, cpu) {
		ratios = append(ratios, fmt.Sprintf("%.2f", l/vals(bt, cpu)[i]))
	}
	e.log("  CPU per request, latch/bare per round: %s", strings.Join(ratios, " "))
	e.table.check("1 proxy CPU per request (RS256, 100 rules, log+metrics)",
		fmt.Sprintf("%.1f µs", med(lt, cpu)), fmt.Sprintf("%.1f µs (bare ReverseProxy)", med(bt, cpu)),
		pairedRatio(vals(lt, cpu), vals(bt, cpu)), 1.2, true, "≤ 1.20×")
	e.table.info("1 req/s, 64 conns", fmt.Sprintf("%.0f", med(lt, rps)), fmt.Sprintf("%.0f", med(bt, rps)),
		fmt.Sprintf("%.2f×", med(lt, rps)/med(bt, rps)))
	e.table.info("1 latency p50", fmt.Sprintf("%.2f ms", med(lt, p50)), fmt.Sprintf("%.2f ms", med(bt, p50)),
		fmt.Sprintf("%.2f×", med(lt, p50)/med(bt, p50)))
	e.table.info("1 latency p99", fmt.Sprintf("%.2f ms", med(lt, p99)), fmt.Sprintf("%.2f ms", med(bt, p99)),
		fmt.Sprintf("%.2f×", med(lt, p99)/med(bt, p99)))
	if len(targets) > 2 {
		nt := targets[2]
		e.table.info("1 reference: nginx CPU/req, req/s", fmt.Sprintf("%.1f µs (latch)", med(lt, cpu)),
			fmt.Sprintf("%.1f µs, %.0f req/s (nginx)", med(nt, cpu), med(nt, rps)), fmt.Sprintf("%.2f×", med(lt, cpu)/med(nt, cpu)))
	} else {
		e.table.info("1 reference: nginx", "—", "not installed", "—")
	}
	maxRSS := 0.0
	for _, s := range lt.samples {
		maxRSS = max(maxRSS, s.maxRSS)
	}
	e.table.check("6 RSS idle (VmRSS)", fmt.Sprintf("%.1f MiB", l.idleRSS), "24 MiB budget", l.idleRSS/24, 1, true, "≤ 24 MiB")
	e.table.check("6 RSS under 64-conn load (max)", fmt.Sprintf("%.1f MiB", maxRSS), "48 MiB budget", maxRSS/48, 1, true, "≤ 48 MiB")
	if !e.o.profile {
		return nil
	}
	// One more latch run, under the profiler (not part of the medians).
	s, pr, err := e.profileRun(ctx, "forward", l.proc, l.cfg.admin, e.featureSpec(l.cfg.listen, l.benchToken, e.o.conns, e.o.dur),
		200, forwardStages, nil)
	if err != nil {
		return err
	}
	// The baseline under the same profiler: its stage table, in µs per
	// request, is what latch's would be without latch.
	if _, _, err := e.profileRun(ctx, "forward-bare", bare, bareProf, e.featureSpec(bare.addr, l.benchToken, e.o.conns, e.o.dur),
		200, forwardStages, nil); err != nil {
		return err
	}
	share := pr.share("policy.(*Engine).Decide") / 100
	without := med(lt, cpu) * (1 - share)
	got := fmt.Sprintf("%.1f%% ≈ %.1f µs/req", 100*share, share*us(s.cpuPerReq))
	if share == 0 {
		got = "no profile sample fell in Decide (< 0.5%)"
	}
	e.table.info("1 Decide's share of latch CPU (pprof, real latch)", got,
		fmt.Sprintf("latch without it ≈ %.1f µs vs %.1f µs bare", without, med(bt, cpu)),
		fmt.Sprintf("%.2f×", without/med(bt, cpu)))
	return nil
}

// startNginx runs nginx, when installed, as a plain keep-alive proxy in
// front of the same upstream. It returns nil, nil when nginx is absent.
func (e *env) startNginx(ctx context.Context) (*proc, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return nil, nil
		}
		bin = "/usr/sbin/nginx"
	}
	dir := filepath.Join(e.tmp, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream backend { server %[2]s; keepalive 128; keepalive_requests 1000000; }
  server {
    listen %[3]s;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`, dir, e.upstream.addr, addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := e.start("nginx", bin, []string{"-p", dir, "-c", path}, nil, filepath.Join(dir, "stderr.log"), false)
	if err != nil {
		return nil, err
	}
	p.addr = addr
	if err := waitTCP(addr, 10*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// resets is target 5: durable reset issuances/s under 64 concurrent admin
// clients, each for its own user, against sequential bbolt commits.
func (e *env) resets(ctx context.Context, l *latchProc) error {
	spec := e.resetSpec(l.cfg.listen, l.adminToken, e.o.dur*2/3)
	var issued, commits []float64
	var p99s []float64
	for r := range e.o.rounds {
		s, err := measure(ctx, l.pid(), spec, false)
		if err != nil {
			return err
		}
		if err := onlyStatus("reset-password", s.res, 200); err != nil {
			return err
		}
		issued = append(issued, s.res.RPS())
		p99s = append(p99s, ms(s.res.Pct(99)))
		out, err := exec.CommandContext(ctx, e.bin["boltcommit"], "--dir", l.cfg.dir, "--duration", (e.o.dur / 2).String()).Output()
		if err != nil {
			return fmt.Errorf("boltcommit: %w", err)
		}
		var n int
		var secs float64
		if _, err := fmt.Sscanf(string(out), `{"commits":%d,"seconds":%g}`, &n, &secs); err != nil {
			return fmt.Errorf("boltcommit output %q: %w", out, err)
		}
		commits = append(commits, float64(n)/secs)
		e.log("  round %d  latch %6.0f issuances/s (p99 %v)   bbolt sequential %6.0f commits/s", r+1,
			s.res.RPS(), s.res.Pct(99).Round(time.Microsecond), float64(n)/secs)
	}
	e.table.check("5 durable reset issuances/s, 64 admins", fmt.Sprintf("%.0f /s (p99 %.1f ms)", median(issued), median(p99s)),
		fmt.Sprintf("%.0f commits/s (bbolt, sequential)", median(commits)), pairedRatio(issued, commits), 3, false, "≥ 3.00×")
	if e.o.profile {
		_, _, err := e.profileRun(ctx, "reset", l.proc, l.cfg.admin, spec, 200, resetStages, nil)
		return err
	}
	return nil
}

// loginFlood is target 7: proxied throughput with and without a flood of
// logins from many loopback addresses for many accounts (so the per-account
// and per-address limits do not shield the password hashing).
func (e *env) loginFlood(ctx context.Context, l *latchProc) error {
	flood := e.floodSpec(l.cfg.listen, e.o.dur, 0)
	var alone, beside []float64
	var floodRes []load.Result
	for r := range e.o.rounds {
		s, err := measure(ctx, l.pid(), e.featureSpec(l.cfg.listen, l.benchToken, e.o.conns, e.o.dur), false)
		if err != nil {
			return err
		}
		if err := onlyStatus("proxied", s.res, 200); err != nil {
			return err
		}
		alone = append(alone, s.res.RPS())
		fc := make(chan load.Result, 1)
		ferr := make(chan error, 1)
		go func() {
			f := flood
			f.LocalAddrs = floodAddrs(r) // fresh addresses: the per-address counts last a minute
			res, err := load.Run(ctx, f)
			fc <- res
			ferr <- err
		}()
		s2, err := measure(ctx, l.pid(), e.featureSpec(l.cfg.listen, l.benchToken, e.o.conns, e.o.dur), false)
		fres := <-fc
		if err == nil {
			err = <-ferr
		}
		if err != nil {
			return err
		}
		if err := onlyStatus("proxied during flood", s2.res, 200); err != nil {
			return err
		}
		beside = append(beside, s2.res.RPS())
		floodRes = append(floodRes, fres)
		e.log("  round %d  proxied alone %6.0f req/s, beside the flood %6.0f req/s; flood %s, p50 %v p99 %v",
			r+1, s.res.RPS(), s2.res.RPS(), fres.StatusString(), fres.Pct(50).Round(time.Microsecond), fres.Pct(99).Round(time.Microsecond))
	}
	e.table.check("7 proxied req/s during login flood", fmt.Sprintf("%.0f req/s", median(beside)),
		fmt.Sprintf("%.0f req/s (no flood)", median(alone)), pairedRatio(beside, alone), 0.8, false, "≥ 0.80×")
	last := floodRes[len(floodRes)-1]
	var p50, p99 []float64
	for _, f := range floodRes {
		p50 = append(p50, ms(f.Pct(50)))
		p99 = append(p99, ms(f.Pct(99)))
	}
	e.table.info(fmt.Sprintf("7 flood (%.0f/s, %d addresses) answers, last round", flood.Rate, flood.Conns), last.StatusString(),
		fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", median(p50), median(p99)), "—")
	if e.o.profile {
		beside := e.floodSpec(l.cfg.listen, e.o.dur, 100) // addresses no round used
		_, _, err := e.profileRun(ctx, "forward-beside-login-flood", l.proc, l.cfg.admin,
			e.featureSpec(l.cfg.listen, l.benchToken, e.o.conns, e.o.dur), 200, floodStages, &beside)
		return err
	}
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (e *env) resetSpec(addr, token string, dur time.Duration) load.Spec {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	h.Set("Content-Type", "application/json")
	return load.Spec{URL: "http://" + addr + "/api/admin/user-admin/reset-password", Method: "POST",
		Header: h, Conns: 64, Duration: dur,
		Body: func(w, _ int) []byte { return fmt.Appendf(nil, `{"id": %q}`, resetUser(w%resetUsers)) }}
}

// floodSpec is a login flood at 1000 attempts/s for ever-new accounts from
// 248 loopback addresses (block, see floodAddrs), one connection each, so
// the per-account and per-address limits (10 and 30 a minute) let most
// attempts through to the concurrency bound and the password check.
func (e *env) floodSpec(addr string, dur time.Duration, block int) load.Spec {
	addrs := floodAddrs(block)
	return load.Spec{URL: "http://" + addr + "/.latch/login", Method: "POST",
		Header: http.Header{"Content-Type": {"application/json"}}, Conns: len(addrs), Rate: 1000,
		Duration: dur, LocalAddrs: addrs,
		Body: func(w, i int) []byte {
			return fmt.Appendf(nil, `{"email": "flood-%d-%d-%d@example.com", "password": "Wrong-password-1!"}`, block, w, i)
		}}
}

// floodAddrs returns 248 loopback addresses 127.<10+block>.0.2-249, a
// different set for each block.
func floodAddrs(block int) []string {
	var addrs []string
	for i := range 248 {
		addrs = append(addrs, fmt.Sprintf("127.%d.0.%d", 10+block, i+2))
	}
	return addrs
}
