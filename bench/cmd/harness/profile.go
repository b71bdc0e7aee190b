package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/latch-dev/latch/bench/load"
)

// Functions whose cumulative share of the CPU a profile summary lists
// first: the stages of a request. Missing ones (inlined, not called) are
// left out.
var (
	forwardStages = []string{
		`net/http.(*conn).serve`,
		`proxy.(*Handler).ServeHTTP`,
		`proxy.Canonical`,
		`proxy.(*Handler).localRoute`,
		`net/http.(*Request).Clone`,
		`proxy.(*Handler).authenticate`,
		`authn.(*Authenticator).Authenticate`,
		`proxy.(*Handler).checkSession`,
		`resetstore.(*Store).GetUser`,
		`proxy.(*Handler).authorize`,
		`policy.(*Engine).Decide`,
		`casbin/v2/util.RegexMatch`,
		`regexp.Compile`,
		`casbin/v2/util.KeyMatch2`,
		`govaluate.EvaluableExpression.Eval`,
		`proxy.(*Handler).finish`,
		`log/slog.(*Logger).log`,
		`log/slog.(*Logger).logAttrs`,
		`log/slog.(*JSONHandler).Handle`,
		`proxy.(*metrics).observe`,
		`proxy.withRequestID`,
		`httputil.(*ReverseProxy).ServeHTTP`,
		`net/http.(*Transport).roundTrip`,
		`net/http.(*conn).readRequest`,
		`internal/poll.(*FD).Write`,
		`runtime.mallocgc`,
		`runtime.gcBgMarkWorker`,
		`runtime.gcAssistAlloc`,
	}
	resetStages = []string{
		`proxy.(*Handler).ServeHTTP`,
		`proxy.(*Handler).authorize`,
		`policy.(*Engine).Decide`,
		`proxy.(*Handler).resetPassword`,
		`proxy.(*Handler).readObject`,
		`resetstore.(*Store).IssueResetToken`,
		`resetstore.(*Store).runIssuer`,
		`resetstore.(*Store).commitIssues`,
		`bbolt.(*Tx).Commit`,
		`syscall.Fdatasync`,
		`proxy.(*Handler).finish`,
		`log/slog.(*Logger).log`,
		`encoding/json.Marshal`,
		`runtime.mallocgc`,
		`runtime.gcBgMarkWorker`,
	}
	floodStages = []string{
		`proxy.(*Handler).ServeHTTP`,
		`policy.(*Engine).Decide`,
		`httputil.(*ReverseProxy).ServeHTTP`,
		`proxy.(*Handler).loginRoute`,
		`proxy.(*Handler).readObject`,
		`resetstore.(*Store).VerifyPassword`,
		`argon2.IDKey`,
		`argon2.processBlocks.func1`, // the hashing itself runs on its own goroutine
		`proxy.writeError`,
		`log/slog.(*Logger).log`,
		`log/slog.(*Logger).logAttrs`,
		`runtime.mallocgc`,
		`runtime.gcBgMarkWorker`,
	}
	buildStages = []string{
		`policy.Open`,
		`policy.build`,
		`casbin/v2.NewEnforcer`,
		`casbin/v2.(*Enforcer).LoadPolicy`,
		`casbin/v2.(*Enforcer).BuildRoleLinks`,
		`policy.validate`,
		`regexp.Compile`,
		`encoding/csv`,
		`runtime.mallocgc`,
		`runtime.gcBgMarkWorker`,
	}
)

// profileLatch runs latchprof (latch's handler in-process under
// runtime/pprof) on cfg while spec(addr) loads it, and beside(addr) too
// when not nil (unchecked), and returns the sample of spec and a summary of
// the profile, also written to outDir/<name>.{prof,txt}.
func (e *env) profileLatch(ctx context.Context, name string, cfg *latchConfig, extra []string,
	spec func(addr string) load.Spec, want int, stages []string, beside func(addr string) load.Spec) (sample, string, error) {
	outDir := e.outDir()
	prof := filepath.Join(outDir, name+".prof")
	args := append([]string{"--config", cfg.path, "--cpuprofile", prof}, extra...)
	p, err := e.start("latchprof", e.bin["latchprof"], args, []string{"LATCH_LISTEN=127.0.0.1:0", "LATCH_ADMIN_LISTEN=127.0.0.1:0"},
		filepath.Join(e.tmp, name+".log"), true)
	if err != nil {
		return sample{}, "", err
	}
	defer p.stop()
	warm := spec(p.addr)
	warm.Duration = time.Second
	if _, err := load.Run(ctx, warm); err != nil {
		return sample{}, "", err
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return sample{}, "", err
	}
	var side chan load.Result
	if beside != nil {
		side = make(chan load.Result, 1)
		go func() {
			res, _ := load.Run(ctx, beside(p.addr))
			side <- res
		}()
	}
	s, err := measure(ctx, p.pid(), spec(p.addr), false)
	sideNote := ""
	if side != nil {
		res := <-side
		sideNote = fmt.Sprintf("; beside it %.0f req/s: %s", res.RPS(), res.StatusString())
	}
	if err != nil {
		return sample{}, "", err
	}
	if err := onlyStatus(name, s.res, want); err != nil {
		return sample{}, "", err
	}
	p.stop()
	head := fmt.Sprintf("%s: %.0f req/s, %.1f µs CPU/req%s (in-process latch handler, bench/cmd/latchprof %s)",
		name, s.res.RPS(), us(s.cpuPerReq), sideNote, strings.Join(extra, " "))
	sum, err := e.summarize(ctx, name, prof, head, stages)
	return s, sum, err
}

// profileFunc profiles fn in this process.
func (e *env) profileFunc(ctx context.Context, name, head string, stages []string, fn func() error) (string, error) {
	prof := filepath.Join(e.outDir(), name+".prof")
	f, err := os.Create(prof)
	if err != nil {
		return "", err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return "", err
	}
	ferr := fn()
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return "", err
	}
	if ferr != nil {
		return "", ferr
	}
	return e.summarize(ctx, name, prof, head, stages)
}

func (e *env) outDir() string { return filepath.Join(e.root, e.o.outDir) }

// summarize renders a profile: the listed stages' cumulative shares, then
// the top functions by own time. The whole -cum listing goes to
// outDir/<name>.txt.
func (e *env) summarize(ctx context.Context, name, prof, head string, stages []string) (string, error) {
	pp := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, args...), prof)...)
		cmd.Dir = e.root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("go tool pprof: %v: %s", err, stderr.String())
		}
		return string(out), nil
	}
	cum, err := pp("-top", "-cum", "-nodecount=500")
	if err != nil {
		return "", err
	}
	flat, err := pp("-top", "-nodecount=20")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(head + "\n")
	if m := regexp.MustCompile(`Total samples = [^\n]*`).FindString(cum); m != "" {
		b.WriteString(m + "\n")
	}
	b.WriteString("\ncumulative share of the CPU, by stage:\n")
	for _, h := range stages {
		if line := findLine(cum, h); line != "" {
			fmt.Fprintf(&b, "  %s\n", line)
		}
	}
	b.WriteString("\ntop functions by own time:\n")
	if i := strings.Index(flat, "      flat"); i >= 0 {
		flat = flat[i:]
	}
	b.WriteString(flat)
	if err := os.WriteFile(filepath.Join(e.outDir(), name+".txt"), []byte(b.String()+"\n-- top -cum --\n"+cum), 0o644); err != nil {
		return "", err
	}
	return b.String(), nil
}

var spaces = regexp.MustCompile(`\s+`)

// findLine returns pprof's -top line for the first function whose name
// ends in fn (or, for a package path like encoding/csv, contains it), as
// "cum%  cum  name".
func findLine(top, fn string) string {
	for line := range strings.Lines(top) {
		f := strings.Fields(spaces.ReplaceAllString(strings.TrimSpace(line), " "))
		if len(f) < 6 || !strings.HasSuffix(f[4], "%") {
			continue
		}
		name := strings.Join(f[5:], " ")
		if strings.HasSuffix(strings.TrimSuffix(name, " (inline)"), fn) || (!strings.ContainsAny(fn, "().") && strings.Contains(name, fn+".")) {
			return fmt.Sprintf("%7s %7s  %s", f[4], f[3], name)
		}
	}
	return ""
}
