// Command latch is an auth-proxy sidecar: it authenticates callers,
// enforces Casbin policies on protected routes, answers the reset-password
// flow itself and forwards everything else to the upstream.
//
// main only wires the process to run, which the end-to-end tests call too.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode tells the user about err, as main does, and returns the exit
// status: 0 for nil, 2 for a usage error (the usage was printed already),
// else 1 after printing "latch: " and the error.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "latch:", err)
	return 1
}

// errUsage means the usage was already printed; exit 2 without more.
var errUsage = errors.New("usage")

// env is the process environment run sees: os.Environ form plus the I/O.
type env struct {
	environ []string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	// sighup delivers reload requests; nil in tests that don't need it.
	sighup <-chan os.Signal
}

const usage = `latch is an auth-proxy sidecar.

Usage:
  latch serve --config FILE    run the proxy (the main job)
  latch check --config FILE    validate the config and policy, then exit
  latch demo                   run latch with a demo upstream, users and tokens
  latch token --config FILE --sub EMAIL [--role R]... [--allow-unknown] [--ttl D]
                               mint a JWT with latch's signing key
  latch users add|list|delete|set-roles --config FILE ...
                               manage users while latch is not serving
  latch store migrate --config FILE --from bbolt|etcd --to etcd|bbolt
                               copy users and live reset tokens between backends
  latch policy explain --config FILE --sub EMAIL [--role R]... METHOD PATH
                               show the canonical path and the decision
  latch keygen [--type ed25519|hs256] --out FILE
                               write a new signing key (mode 0600, never overwritten)
  latch version                print the version
  latch help                   print this help

Run 'latch COMMAND --help' for a command's flags.
`

func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{environ: environ, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		if e.sighup == nil {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGHUP)
			defer signal.Stop(ch)
			e.sighup = ch
		}
		return cmdServe(ctx, e, rest)
	case "check":
		return cmdCheck(e, rest)
	case "token":
		return cmdToken(e, rest)
	case "users":
		return cmdUsers(ctx, e, rest)
	case "store":
		return cmdStore(ctx, e, rest)
	case "policy":
		return cmdPolicy(e, rest)
	case "demo":
		return cmdDemo(ctx, e, rest)
	case "keygen":
		return cmdKeygen(e, rest)
	case "version", "--version":
		fmt.Fprintf(stdout, "latch %s (%s)\n", version(), goVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "latch: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}
