package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latch-dev/latch/bench/load"
)

// Functions whose cumulative share of the CPU a profile summary lists
// first: the stages of a request. Missing ones (inlined, not called) are
// left out.
var (
	forwardStages = slices.Concat([]string{
		`net/http.(*conn).serve`,
		`net/http.(*conn).readRequest`,
		`proxy.(*Handler).ServeHTTP`,
		`proxy.Resolve`,
		`proxy.stripIdentityHeaders`,
		`proxy.(*Handler).localRoute`,
		`proxy.(*Handler).authenticate`,
		`main.authenticator.Authenticate`,
		`authn.(*Authenticator).Authenticate`,
		`proxy.ResolveSession`,
		`proxy.(*SessionCache).Session`,
		`proxy.(*Handler).authorize`,
		`main.decider.Decide`,
		`policy.(*Engine).DecideAll`,
		`policy.(*state).decideAll`,
		`policy.(*state).lookup`,
		`policy.(*state).decide`,
		`proxy.(*Handler).finish`,
		`log/slog.(*Logger).LogAttrs`,
		`proxy.(*lineWriter).write`,
		`proxy.(*metrics).observe`,
		`proxy.(*requestIDs).next`,
		`httputil.(*ReverseProxy).ServeHTTP`,
		`net/http.(*Transport).roundTrip`,
		`net/http.(*persistConn).readLoop`,
		`net/http.(*persistConn).writeLoop`,
		`net/http.(*response).finishRequest`,
		`internal/poll.(*FD).Write`,
		`internal/poll.(*FD).Read`,
		`runtime.netpoll`,
	}, runtimeStages)
	resetStages = slices.Concat([]string{
		`proxy.(*Handler).ServeHTTP`,
		`proxy.(*Handler).authenticate`,
		`proxy.(*Handler).authorize`,
		`policy.(*Engine).DecideAll`,
		`proxy.(*Handler).resetPassword`,
		`proxy.(*Handler).readObject`,
		`resetstore.(*Store).IssueResetToken`,
		`resetstore.(*Store).submitIssue`,
		`resetstore.(*Store).runIssuer`,
		`resetstore.(*Store).commitIssues`,
		`bbolt.(*Tx).Commit`,
		`syscall.Fdatasync`,
		`proxy.(*Handler).finish`,
		`log/slog.(*JSONHandler).Handle`,
		`encoding/json.Marshal`,
		`internal/poll.(*FD).Write`,
	}, runtimeStages)
	floodStages = slices.Concat([]string{
		`proxy.(*Handler).ServeHTTP`,
		`policy.(*Engine).DecideAll`,
		`httputil.(*ReverseProxy).ServeHTTP`,
		`proxy.(*Handler).loginRoute`,
		`proxy.(*Handler).readObject`,
		`resetstore.(*Store).VerifyPassword`,
		`argon2.IDKey`,
		`argon2.processBlocks.func1`, // the hashing itself runs on its own goroutine
		`proxy.answerError`,
		`proxy.(*Handler).finish`,
		`log/slog.(*JSONHandler).Handle`,
		`net/http.(*conn).readRequest`,
		`internal/poll.(*FD).Accept`,
		`net/http.(*conn).close`,
	}, runtimeStages)
	reloadStages = slices.Concat([]string{
		`proxy.(*Handler).ServeHTTP`,
		`policy.(*Engine).DecideAll`,
		`policy.(*state).lookup`,
		`policy.(*state).decide`,
		`policy.(*Engine).Reload`,
		`policy.(*Engine).reloadIfChanged`,
		`policy.(*Engine).reloadLocked`,
		`policy.readSources`,
		`policy.yield`,
	}, policyBuildStages, runtimeStages)
	buildStages = slices.Concat([]string{
		`policy.Open`,
		`encoding/csv`,
	}, policyBuildStages, runtimeStages)

	// policyBuildStages build a policy, on Open and on each reload.
	policyBuildStages = []string{
		`policy.build`,
		`policy.checkPatterns`,
		`policy.trialEnforce`,
		`policy.routeEnforcers`,
		`policy.compilePatterns`,
		`policy.buildIndex`,
		`casbin/v2.NewEnforcer`,
		`regexp.Compile`,
	}
	// runtimeStages end every list: scheduling, allocation and GC.
	runtimeStages = []string{
		`runtime.findRunnable`,
		`runtime.mallocgc`,
		`runtime.gcBgMarkWorker`,
		`runtime.gcAssistAlloc`,
	}
)

// profile is a CPU profile's summary and its whole `pprof -top -cum`.
type profile struct {
	summary string
	cum     string
}

// share is fn's cumulative share of the profile's samples, in percent
// (0 when it does not appear).
func (p profile) share(fn string) float64 {
	f := strings.Fields(findLine(p.cum, fn))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
	return v
}

// profileRun profiles a running `latch serve` (admin_pprof on) through
// its admin port: it asks for /debug/pprof/profile?seconds=<spec's
// length> and runs spec against p meanwhile, with beside too when not nil
// (unchecked, reported in the head). The profile goes to
// outDir/<name>.prof and its summary to outDir/<name>.txt.
func (e *env) profileRun(ctx context.Context, name string, p *proc, admin string, spec load.Spec, want int,
	stages []string, beside *load.Spec) (sample, profile, error) {
	prof := filepath.Join(e.outDir(), name+".prof")
	secs := max(1, int(math.Ceil(spec.Duration.Seconds())))
	got := make(chan error, 1)
	go func() {
		got <- fetchProfile(ctx, "http://"+admin+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), prof)
	}()
	// The handler starts the CPU profile as soon as it has the request:
	// give the request a moment to arrive so the whole load is profiled.
	time.Sleep(100 * time.Millisecond)
	var side chan load.Result
	if beside != nil {
		side = make(chan load.Result, 1)
		go func() {
			res, _ := load.Run(ctx, *beside)
			side <- res
		}()
	}
	s, err := measure(ctx, p.pid(), spec, false)
	sideNote := ""
	if side != nil {
		res := <-side
		sideNote = fmt.Sprintf("; beside it %.0f req/s: %s", res.RPS(), res.StatusString())
	}
	if perr := <-got; err == nil {
		err = perr
	}
	if err != nil {
		return sample{}, profile{}, err
	}
	if err := onlyStatus(name, s.res, want); err != nil {
		return sample{}, profile{}, err
	}
	head := fmt.Sprintf("%s: %.0f req/s, %.1f µs CPU/req%s (%s, its /debug/pprof/profile?seconds=%d)",
		name, s.res.RPS(), us(s.cpuPerReq), sideNote, p.name, secs)
	pr, err := e.summarize(ctx, name, prof, head, stages, s.res.Requests)
	if err == nil {
		e.profiles = append(e.profiles, pr.summary)
	}
	return s, pr, err
}

// fetchProfile GETs a pprof profile from url into path.
func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s answered %d: %s (is admin_pprof on?)", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	return os.WriteFile(path, b, 0o644)
}

// profileFunc profiles fn in this process.
func (e *env) profileFunc(ctx context.Context, name, head string, stages []string, fn func() error) (profile, error) {
	prof := filepath.Join(e.outDir(), name+".prof")
	f, err := os.Create(prof)
	if err != nil {
		return profile{}, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return profile{}, err
	}
	ferr := fn()
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return profile{}, err
	}
	if ferr != nil {
		return profile{}, ferr
	}
	return e.summarize(ctx, name, prof, head, stages, 0)
}

func (e *env) outDir() string { return filepath.Join(e.root, e.o.outDir) }

// summarize renders a profile: the listed stages' cumulative shares, then
// the top functions by own time. The whole -cum listing goes to
// outDir/<name>.txt.
func (e *env) summarize(ctx context.Context, name, prof, head string, stages []string, requests int) (profile, error) {
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
		return profile{}, err
	}
	flat, err := pp("-top", "-nodecount=20")
	if err != nil {
		return profile{}, err
	}
	var b strings.Builder
	b.WriteString(head + "\n")
	if m := regexp.MustCompile(`Total samples = [^\n]*`).FindString(cum); m != "" {
		b.WriteString(m + "\n")
	}
	b.WriteString("\ncumulative share of the CPU, by stage")
	if requests > 0 {
		b.WriteString(" (and CPU per answered request)")
	}
	b.WriteString(":\n")
	for _, h := range stages {
		line := findLine(cum, h)
		if line == "" {
			continue
		}
		if f := strings.Fields(line); requests > 0 && len(f) > 2 {
			if d, err := time.ParseDuration(f[1]); err == nil {
				line = fmt.Sprintf("%7s %7s %7.1f µs  %s", f[0], f[1], us(d)/float64(requests), strings.Join(f[2:], " "))
			}
		}
		fmt.Fprintf(&b, "  %s\n", line)
	}
	b.WriteString("\ntop functions by own time:\n")
	if i := strings.Index(flat, "      flat"); i >= 0 {
		flat = flat[i:]
	}
	b.WriteString(flat)
	if err := os.WriteFile(filepath.Join(e.outDir(), name+".txt"), []byte(b.String()+"\n-- top -cum --\n"+cum), 0o644); err != nil {
		return profile{}, err
	}
	return profile{summary: b.String(), cum: cum}, nil
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
