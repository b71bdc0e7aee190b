package main

import (
	"fmt"

	"github.com/latch-dev/latch/config"
)

func cmdCheck(e *env, args []string) error {
	fs := newFlags("check", "check --config FILE", e.stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if done, err := parse(fs, args); done {
		return err
	}
	if *path == "" {
		fmt.Fprintln(e.stderr, "latch check: --config is required")
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*path, e.environ)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "config %s: ok (upstream %s, protecting %v)\n", *path, cfg.Upstream, cfg.Policy.Protect)
	return nil
}
