// Command harness is latch's load benchmark, run by `make bench`. It builds
// latch and the bench helpers into a temporary directory, starts them as
// child processes on loopback (a tiny upstream, latch, a bare
// httputil.ReverseProxy, nginx when installed), drives them with the load
// generator in bench/load, and prints one table: each figure for latch,
// its baseline measured in the same run, their ratio and the target.
//
// Latch and baseline runs alternate (A/B/A/B, -rounds each) because the
// machine is noisy; each cell is the median of its rounds. With -profile
// (the default) each latch scenario gets one more run while the harness
// fetches a CPU profile from the running latch's admin port (the bench
// config sets admin_pprof: true), so the profiles are of the real binary.
// Nothing here runs under `go test`.
//
// bench is its own module (bench/go.mod, with latch replaced by ../), so
// that latch's go.mod and `go test ./...` carry nothing of it. Run it from
// the repository's root: `make bench-load`, or `go -C bench run
// ./cmd/harness`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	rounds  int
	dur     time.Duration // one closed-loop load run
	conns   int
	keep    bool
	outDir  string
	profile bool
	only    string // comma-separated scenario numbers; "" = all

	overheadRounds int // rounds of scenario 1 (at least rounds)
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 5, "A/B rounds per comparison")
	flag.DurationVar(&o.dur, "duration", 5*time.Second, "length of one load run")
	flag.IntVar(&o.conns, "conns", 64, "connections of the main load")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory")
	flag.StringVar(&o.outDir, "out", "bench/out", "where to write the report and profile, from the repository's root")
	flag.BoolVar(&o.profile, "profile", true, "profile latch (admin_pprof) during one extra run of each scenario")
	flag.IntVar(&o.overheadRounds, "overhead-rounds", 9, "A/B rounds of scenario 1 (proxy overhead), if more than -rounds")
	flag.StringVar(&o.only, "only", "", "run only these scenarios, by target number (e.g. 1 or 1,3); the table then has only their rows")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// env is what the scenarios share.
type env struct {
	o        options
	tmp      string
	bin      map[string]string
	keys     *keys
	upstream *proc
	procs    []*proc
	table    *table
	log      func(format string, args ...any)
	root     string   // latch's module directory (the repository's root)
	benchDir string   // the bench module's directory
	bareCPU  float64  // median CPU per request of the bare proxy, µs
	profiles []string // profile summaries for the report
}

func (e *env) start(name, bin string, args, envv []string, errPath string, addrFromStdout bool) (*proc, error) {
	p, err := startProc(name, bin, args, envv, errPath, addrFromStdout)
	if err == nil {
		e.procs = append(e.procs, p)
	}
	return p, err
}

func run(ctx context.Context, o options) error {
	began, loadBefore := time.Now(), loadAvg()
	root, benchDir, err := moduleDirs()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, o.outDir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "latch-bench-")
	if err != nil {
		return err
	}
	e := &env{o: o, tmp: tmp, root: root, benchDir: benchDir, table: &table{}, bin: map[string]string{},
		log: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "bench: "+f+"\n", a...) }}
	defer func() {
		for i := len(e.procs) - 1; i >= 0; i-- {
			e.procs[i].stop()
		}
		if o.keep {
			e.log("kept %s", tmp)
		} else {
			os.RemoveAll(tmp)
		}
	}()

	e.log("building latch and helpers into %s", tmp)
	bins := filepath.Join(tmp, "bin")
	// latch builds in its own module, with its own go.mod; the helpers in
	// the bench module.
	for dir, pkgs := range map[string][]string{root: {"./cmd/latch"},
		benchDir: {"./cmd/upstream", "./cmd/bareproxy", "./cmd/boltcommit"}} {
		build := exec.CommandContext(ctx, "go", append([]string{"build", "-o", bins + "/"}, pkgs...)...)
		build.Dir, build.Stdout, build.Stderr = dir, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build in %s: %w", dir, err)
		}
	}
	for _, n := range []string{"latch", "upstream", "bareproxy", "boltcommit"} {
		e.bin[n] = filepath.Join(bins, n)
	}
	if e.keys, err = writeKeys(tmp); err != nil {
		return err
	}
	if e.upstream, err = e.start("upstream", e.bin["upstream"], nil, nil, "", true); err != nil {
		return err
	}

	// Scenario order: the 10,000-rule latch runs alone first and is stopped;
	// the login flood goes last, as it leaves rate-limit state behind.
	main, err := e.startMainLatch(ctx)
	if err != nil {
		return err
	}
	steps := []struct {
		name string
		fn   func(context.Context, *latchProc) error
	}{
		{"1 proxy overhead and 6 memory", e.overhead},
		{"5 durable reset issuance", e.resets},
		{"7 login flood", e.loginFlood},
		{"3 reload under load", func(ctx context.Context, _ *latchProc) error { return e.reload(ctx) }},
	}
	for _, s := range steps {
		if o.only != "" && !slices.Contains(strings.Split(o.only, ","), strings.Fields(s.name)[0]) {
			continue
		}
		e.log("scenario %s", s.name)
		if err := s.fn(ctx, main); err != nil {
			return fmt.Errorf("scenario %s: %w", s.name, err)
		}
	}

	report := e.table.String()
	fmt.Println()
	fmt.Print(report)
	host := fmt.Sprintf("%s\nload average (1 min) before %s, after %s: other work on the machine adds noise", hostInfo(), loadBefore, loadAvg())
	fmt.Println(host)
	md := fmt.Sprintf("# latch bench, %s\n\n%s\n%s\n\ncommand: `%s`, %s total\n\n## Profiles\n\n```\n%s```\n",
		time.Now().UTC().Format(time.RFC3339), report, host, strings.TrimSpace("go -C bench run ./cmd/harness "+strings.Join(os.Args[1:], " ")), time.Since(began).Round(time.Second),
		strings.Join(e.profiles, "\n"))
	out := filepath.Join(root, o.outDir, "last.md")
	if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
		return err
	}
	e.log("report written to %s (%s)", out, time.Since(began).Round(time.Second))
	return nil
}

// moduleDirs returns latch's module directory (where bench/go.mod's
// replace points) and the bench module's.
func moduleDirs() (root, benchDir string, err error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}",
		"github.com/latch-dev/latch/bench", "github.com/latch-dev/latch").Output()
	if dirs := strings.Split(strings.TrimSpace(string(out)), "\n"); err == nil && len(dirs) == 2 {
		return dirs[1], dirs[0], nil
	}
	return "", "", fmt.Errorf("run the harness inside the bench module (go -C bench run ./cmd/harness): go list -m: %v", err)
}

func hostInfo() string {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	goVer, _ := exec.Command("go", "env", "GOVERSION").Output()
	return fmt.Sprintf("machine: nproc %d, CPU %s, kernel %s, %s", numCPU(), model, kernel, strings.TrimSpace(string(goVer)))
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
