# latch's build. `make test` is the one test command: README and .ci/run use it.
GO ?= go
STATICCHECK_VERSION := v0.8.2
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
# Fuzz budgets are counts of executions, not durations: with a duration, Go
# 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" and no crasher when -fuzztime ends on a busy machine
# (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 200000x

.PHONY: test vet deps lint fuzz tidy-check bench bench-load bench-micro build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/latch ./cmd/latch

# deps installs what the browser and Prometheus tests need (Debian's
# chromium and prometheus) when they are missing and apt-get can run.
deps:
	@./.ci/deps

test: deps vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

# staticcheck at a pinned version, fetched through the module proxy.
lint:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# A short run of each fuzz target (seed corpora always run in `make test`).
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzCanonical$$' -fuzztime=$(FUZZTIME) ./proxy/
	$(GO) test -run='^$$' -fuzz='^FuzzRouting$$' -fuzztime=$(FUZZTIME) ./proxy/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeObject$$' -fuzztime=$(FUZZTIME) ./proxy/
	$(GO) test -run='^$$' -fuzz='^FuzzAuthenticate$$' -fuzztime=$(FUZZTIME) ./proxy/authn/
	$(GO) test -run='^$$' -fuzz='^FuzzKeyPattern$$' -fuzztime=$(FUZZTIME) ./policy/

tidy-check:
	@cp go.mod /tmp/latch-go.mod.bak && cp go.sum /tmp/latch-go.sum.bak
	@$(GO) mod tidy
	@if ! diff -q go.mod /tmp/latch-go.mod.bak >/dev/null || ! diff -q go.sum /tmp/latch-go.sum.bak >/dev/null; then \
		cp /tmp/latch-go.mod.bak go.mod; cp /tmp/latch-go.sum.bak go.sum; \
		echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; exit 1; fi

# bench runs the load scenarios (bench/cmd/harness builds latch and runs it
# against a bare ReverseProxy, sequential bbolt commits and itself, nginx as
# a reference when bench/deps.sh could install it; it profiles the running
# latch through admin_pprof), prints one table and writes bench/out/, then
# the Go micro-benchmarks. About 6 minutes.
bench: bench-load bench-micro

bench-load:
	@./bench/deps.sh
	$(GO) run ./bench/cmd/harness

# bench-micro runs each micro-benchmark 6 times into bench/out/micro-*.txt
# and has benchstat compare, within the same run, latch against its
# baseline: the columns are the sub-benchmarks' key (impl=bare, verify=first,
# clients=1 come first), the ratios are against the first.
BENCHSTAT := $(GO) run golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)
bench-micro:
	@mkdir -p bench/out
	$(GO) test -run='^$$' -bench='^Benchmark(Chain|Forward)$$' -count=6 ./proxy > bench/out/micro-proxy.txt
	$(BENCHSTAT) -col /impl bench/out/micro-proxy.txt
	$(GO) test -run='^$$' -bench='^BenchmarkServe$$' -count=6 ./cmd/latch > bench/out/micro-serve.txt
	$(BENCHSTAT) -col /impl bench/out/micro-serve.txt
	$(GO) test -run='^$$' -bench='^BenchmarkAuthenticateRS256$$' -count=6 ./proxy/authn > bench/out/micro-authn.txt
	$(BENCHSTAT) -col /verify bench/out/micro-authn.txt
	$(GO) test -run='^$$' -bench='^BenchmarkIssue$$' -count=6 ./resetstore > bench/out/micro-resetstore.txt
	$(BENCHSTAT) -col /clients bench/out/micro-resetstore.txt
	$(GO) test -run='^$$' -bench='^BenchmarkDecideWarm' -count=6 ./policy > bench/out/micro-policy-warm.txt
	$(BENCHSTAT) bench/out/micro-policy-warm.txt
	$(GO) test -run='^$$' -bench='^Benchmark(DecideCold|Reload)$$' -benchtime=3x ./policy
