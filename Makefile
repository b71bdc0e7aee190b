# latch's build. `make test` is the one test command: README and .ci/run use it.
GO ?= go
STATICCHECK_VERSION := v0.8.2
FUZZTIME ?= 15s

.PHONY: test vet deps lint fuzz tidy-check bench build

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
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeObject$$' -fuzztime=$(FUZZTIME) ./proxy/
	$(GO) test -run='^$$' -fuzz='^FuzzAuthenticate$$' -fuzztime=$(FUZZTIME) ./proxy/authn/

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
# runs the Go micro-benchmarks bench/RESULTS.md reports. About 5 minutes.
bench:
	@./bench/deps.sh
	$(GO) run ./bench/cmd/harness
	$(GO) test -run='^$$' -bench='DecideWarm|DecideCold|CasbinEnforce|Reload' -benchtime=2x ./policy
	$(GO) test -run='^$$' -bench=. ./proxy/authn
	$(GO) test -run='^$$' -bench=Issue ./resetstore
	$(GO) test -run='^$$' -bench=Forward -benchtime=3s ./proxy
