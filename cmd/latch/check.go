package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/policy"
	"github.com/latch-dev/latch/proxy"
	"github.com/latch-dev/latch/proxy/authn"
)

// cmdCheck validates what serve would load, without listening or opening
// the store: the config, the policy model, rules and known answers, the
// data dir (that serve could create and write it), the signing key and
// the other key files. It creates and writes nothing. It prints every
// problem it finds.
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
	var errs []error
	rep, err := policy.Check(policyOptions(cfg))
	if err != nil {
		errs = append(errs, fmt.Errorf("policy: %w", err))
	} else {
		fmt.Fprintf(e.stdout, "policy: ok (%d rules: %d policies, %d role links; %d known answers passed; hash %s)\n",
			rep.Rules, rep.Policies, rep.RoleLinks, rep.Tests, rep.Hash)
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		errs = append(errs, err)
	} else if err := checkStoreFile(cfg); err != nil {
		errs = append(errs, err)
	} else {
		fmt.Fprintf(e.stdout, "data_dir %s: ok\n", cfg.DataDir)
	}
	if cfg.Store.Backend == "etcd" {
		// The password and TLS files, read as serve reads them; etcd itself
		// is not contacted.
		if _, err := etcdOptions(cfg); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Fprintln(e.stdout, "store.etcd files: ok")
		}
	}
	if err := checkAuth(cfg); err != nil {
		errs = append(errs, err)
	} else {
		fmt.Fprintln(e.stdout, "auth: ok (signing key and key files)")
	}
	return errors.Join(errs...)
}

// checkAuth builds, once, the authenticator serve would build (its JWKS
// is not fetched) and checks the handoff routes' key against it, as serve
// does (openAuth, handoffKeys). A default key not created yet is fine:
// serve creates an Ed25519 one.
func checkAuth(cfg *config.Config) error {
	routes, err := proxy.ParseHandoff(cfg.Auth.Handoff)
	if err != nil {
		return err
	}
	o, err := authOptions(cfg)
	if err != nil {
		return explainSigningKey(cfg, err)
	}
	if cfg.Auth.SigningKeyFile == "" {
		if _, err := os.Lstat(o.SigningKeyFile); errors.Is(err, fs.ErrNotExist) {
			o.SigningKeyFile = ""
		}
	}
	if o.SigningKeyFile == "" && len(o.PublicKeyFiles) == 0 && o.JWKSURL == "" && o.APITokensFile == "" {
		return nil
	}
	a, err := authn.New(o)
	if err != nil {
		return explainSigningKey(cfg, fmt.Errorf("auth: %w", err))
	}
	if o.SigningKeyFile == "" {
		return nil
	}
	return handoffKeys(&proxy.Options{Handoff: routes}, a)
}
