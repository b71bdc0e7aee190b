# latch's build. `make test` is the one test command: README and .ci/run use it.
# bench/ is a module of its own (bench/go.mod replaces latch with ../), so
# latch's go.mod and `go test ./...` leave it out; the targets below that
# cover both modules run once in each of $(MODULES).
GO ?= go
STATICCHECK_VERSION := v0.8.2
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
# Fuzz budgets are counts of executions, not durations: with a duration, Go
# 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" and no crasher when -fuzztime ends on a busy machine
# (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 200000x

MODULES := . bench

.PHONY: test test-differential vet deps lint fuzz tidy-check bench bench-load bench-micro build e2e

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/latch ./cmd/latch

# deps installs what the browser and Prometheus tests need (Debian's
# chromium and prometheus) when they are missing and apt-get can run.
deps:
	@./.ci/deps

test: deps vet
	$(GO) test -race -count=1 ./...
	$(GO) -C bench test -race -count=1 ./...

# e2e runs latch for real in front of Unleash OSS (examples/unleash, on a
# throwaway PostgreSQL), Prometheus (examples/prometheus) and an upstream
# verifying handoff mode jwt's token, also behind nginx terminating TLS,
# driven in headless Chromium (e2e/, build tag e2e, so `go test ./...`
# leaves it out).
# Screenshots, and the processes' logs on failure, go to e2e/out/<test>/
# ($LATCH_E2E_OUT). About 3 minutes.
e2e: deps
	$(GO) test -tags e2e -count=1 -timeout 10m ./e2e/

# test-differential runs policy's TestDifferential at its full request
# counts, without the race detector: under -race (make test) it runs a
# sixth of them. .ci/run runs it after make test.
test-differential:
	$(GO) test -count=1 -run='^TestDifferential$$' ./policy -diff.full

# vet and lint read the e2e files too: the tag e2e adds them, and no other
# file depends on it.
vet:
	@set -e; for m in $(MODULES); do echo "$(GO) -C $$m vet -tags e2e ./..."; $(GO) -C $$m vet -tags e2e ./...; done

# staticcheck at a pinned version, fetched through the module proxy.
lint:
	@set -e; for m in $(MODULES); do echo "staticcheck in $$m"; \
		$(GO) -C $$m run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags e2e ./...; done

# A short run of each fuzz target (seed corpora always run in `make test`).
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzCanonical$$' -fuzztime=$(FUZZTIME) ./proxy/
	$(GO) test -run='^$$' -fuzz='^FuzzRouting$$' -fuzztime=$(FUZZTIME) ./proxy/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeObject$$' -fuzztime=$(FUZZTIME) ./proxy/
	$(GO) test -run='^$$' -fuzz='^FuzzAccessLineEncoder$$' -fuzztime=$(FUZZTIME) ./proxy/
	$(GO) test -run='^$$' -fuzz='^FuzzAuthenticate$$' -fuzztime=$(FUZZTIME) ./proxy/authn/
	$(GO) test -run='^$$' -fuzz='^FuzzKeyPattern$$' -fuzztime=$(FUZZTIME) ./policy/

# tidy-check fails, changing nothing, when a module's go.mod or go.sum is
# not what `go mod tidy` makes (go mod tidy -diff).
tidy-check:
	@set -e; for m in $(MODULES); do \
		if ! $(GO) -C $$m mod tidy -diff; then \
			echo "$$m/go.mod, $$m/go.sum are not tidy: run 'go -C $$m mod tidy' and commit"; exit 1; fi; done

# bench runs the load scenarios (bench/cmd/harness, in the bench module,
# builds latch and runs it against a bare ReverseProxy, sequential bbolt
# commits and itself, nginx as a reference when bench/deps.sh could install
# it; it profiles the running latch through admin_pprof), prints one table
# and writes bench/out/, then the Go micro-benchmarks. About 6 minutes.
bench: bench-load bench-micro

bench-load:
	@./bench/deps.sh
	$(GO) -C bench run ./cmd/harness

# bench-micro runs each micro-benchmark 6 times into bench/out/micro-*.txt
# and has benchstat compare, within the same run, latch against its
# baseline: the columns are the sub-benchmarks' key (impl=bare, verify=first,
# clients=1, cred=jwt come first), the ratios are against the first.
BENCHSTAT := $(GO) run golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)
bench-micro:
	@mkdir -p bench/out
	$(GO) test -run='^$$' -bench='^Benchmark(Chain|Forward)$$' -count=6 ./proxy > bench/out/micro-proxy.txt
	$(BENCHSTAT) -col /impl bench/out/micro-proxy.txt
	$(GO) test -run='^$$' -bench='^BenchmarkServe$$' -count=6 ./cmd/latch > bench/out/micro-serve.txt
	$(BENCHSTAT) -col /impl bench/out/micro-serve.txt
	$(GO) test -run='^$$' -bench='^BenchmarkCredential$$' -count=6 ./cmd/latch > bench/out/micro-credential.txt
	$(BENCHSTAT) -col /cred bench/out/micro-credential.txt
	$(GO) test -run='^$$' -bench='^BenchmarkAuthenticateRS256$$' -count=6 ./proxy/authn > bench/out/micro-authn.txt
	$(BENCHSTAT) -col /verify bench/out/micro-authn.txt
	$(GO) test -run='^$$' -bench='^BenchmarkIssue$$' -count=6 ./resetstore > bench/out/micro-resetstore.txt
	$(BENCHSTAT) -col /clients bench/out/micro-resetstore.txt
	$(GO) test -run='^$$' -bench='^BenchmarkDecideWarm' -count=6 ./policy > bench/out/micro-policy-warm.txt
	$(BENCHSTAT) bench/out/micro-policy-warm.txt
	$(GO) test -run='^$$' -bench='^Benchmark(DecideCold|Reload)$$' -benchtime=3x ./policy
