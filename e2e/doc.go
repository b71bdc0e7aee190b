//go:build e2e

// Package e2e runs latch for real in front of real backends: Unleash OSS
// (examples/unleash, on PostgreSQL) and Prometheus (examples/prometheus),
// driven through headless Chromium, and an upstream that verifies handoff
// mode jwt's token with Node's crypto (testdata/jwtverifier.mjs), also
// behind nginx terminating TLS (the __Host- session cookie). The tests build latch from this
// module, start every process on 127.0.0.1 with free ports, and stop each
// one by its process group when the test ends.
//
// The files carry the build tag e2e, so `go test ./...` leaves them out;
// `make e2e` runs them (`go test -tags e2e -count=1 -timeout 10m ./e2e/`).
// They need Debian's postgresql, prometheus, nginx-light and chromium, and `npm ci` in
// examples/unleash (`make deps` installs them). A missing one skips the
// tests that need it, except under CI=1, where it fails them.
//
// Output: each test writes screenshots of its browser steps, and on
// failure the log of every process it started, to
// $LATCH_E2E_OUT/<test name>/ (default e2e/out/, git-ignored), emptied
// when the test starts.
package e2e
