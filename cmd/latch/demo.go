package main

import "context"

func cmdDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags("demo", "demo [--listen ADDR]", e.stderr)
	if done, err := parse(fs, args); done {
		return err
	}
	return nil
}
