package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/resetstore"
)

const storeUsage = `Usage:
  latch store migrate --config FILE --from bbolt|etcd --to etcd|bbolt

migrate copies every user, with its password hash, and every reset token
that has not expired (only its hash), from one backend to the other, both as
FILE configures them (data_dir for bbolt, store.etcd for etcd), whatever
store.backend says. Records already in the target are replaced; running it
twice is safe. Passwords and live reset links keep working. The bbolt file
is locked while latch serve runs on it: stop it first.
`

// migrator is what latch store migrate needs from both backends.
type migrator interface {
	Export(ctx context.Context, fn func(resetstore.Record) error) error
	Import(ctx context.Context, recs []resetstore.Record) error
}

func cmdStore(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(e.stderr, storeUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	if args[0] != "migrate" {
		fmt.Fprintf(e.stderr, "latch store: unknown command %q\n\n%s", args[0], storeUsage)
		return errUsage
	}
	fs := newFlags("store migrate", "store migrate --config FILE --from bbolt|etcd --to etcd|bbolt", e.stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	from := fs.String("from", "", "the backend to copy from: bbolt or etcd")
	to := fs.String("to", "", "the backend to copy to: etcd or bbolt")
	if done, err := parse(fs, args[1:]); done {
		return err
	}
	known := map[string]bool{"bbolt": true, "etcd": true}
	if *path == "" || !known[*from] || !known[*to] || *from == *to {
		fmt.Fprintln(e.stderr, "latch store migrate: --config, and --from and --to naming two different backends (bbolt, etcd), are required")
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*path, e.environ)
	if err != nil {
		return err
	}
	src, err := openMigrator(cfg, *from, true)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openMigrator(cfg, *to, false)
	if err != nil {
		return err
	}
	defer dst.Close()

	var recs []resetstore.Record
	users, tokens := 0, 0
	err = src.Export(ctx, func(r resetstore.Record) error {
		if r.User != nil {
			users++
		} else {
			tokens++
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading %s: %w", *from, err)
	}
	if err := dst.Import(ctx, recs); err != nil {
		return fmt.Errorf("writing %s: %w", *to, err)
	}
	fmt.Fprintf(e.stdout, "copied %d users and %d live reset tokens from %s to %s\n", users, tokens, *from, *to)
	return nil
}

type migratorBackend interface {
	migrator
	Close() error
}

// openMigrator opens the named backend as cfg configures it. A source
// bbolt file must exist already.
func openMigrator(cfg *config.Config, name string, source bool) (migratorBackend, error) {
	var b backend
	var err error
	switch name {
	case "bbolt":
		if _, serr := os.Stat(cfg.StorePath()); source && errors.Is(serr, fs.ErrNotExist) {
			return nil, fmt.Errorf("--from bbolt: there is no store at %s", cfg.StorePath())
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data_dir: %w", err)
		}
		b, err = openBolt(cfg, nil, nil)
	case "etcd":
		if len(cfg.Store.Etcd.Endpoints) == 0 {
			return nil, errors.New("store.etcd.endpoints: must list at least one etcd client URL to migrate to or from etcd")
		}
		b, err = openEtcd(cfg, nil, nil)
	default:
		return nil, fmt.Errorf("%q is not a store backend (bbolt or etcd)", name)
	}
	if err != nil {
		return nil, err
	}
	m, ok := b.(migratorBackend)
	if !ok {
		if b != nil {
			b.Close()
		}
		return nil, fmt.Errorf("the %s backend cannot export or import", name)
	}
	return m, nil
}
