package main

import (
	"errors"
	"fmt"
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
	if err := checkSigningKey(cfg); err != nil {
		errs = append(errs, err)
	} else if err := checkHandoffKey(cfg); err != nil {
		errs = append(errs, err)
	} else {
		fmt.Fprintln(e.stdout, "signing key: ok")
	}
	if j := cfg.Auth.JWT; len(j.PublicKeyFiles) > 0 || cfg.Auth.APITokensFile != "" {
		_, err := authn.New(authn.Options{PublicKeyFiles: j.PublicKeyFiles,
			Issuer: j.Issuer, Audience: j.Audience, APITokensFile: cfg.Auth.APITokensFile})
		if err != nil {
			errs = append(errs, fmt.Errorf("auth: %w", err))
		} else {
			fmt.Fprintln(e.stdout, "auth: key files ok")
		}
	}
	return errors.Join(errs...)
}

// checkHandoffKey fails, as serve does, when a route hands off in mode jwt
// and the signing key is an HMAC secret. A default key latch will create is
// Ed25519.
func checkHandoffKey(cfg *config.Config) error {
	routes, err := proxy.ParseHandoff(cfg.Auth.Handoff)
	if err != nil {
		return err
	}
	path := signingKeyPath(cfg)
	if _, err := os.Stat(path); err != nil {
		return nil // the default key, not created yet: Ed25519
	}
	a, err := authn.New(authn.Options{SigningKeyFile: path})
	if err != nil {
		return err
	}
	return handoffKeys(&proxy.Options{Handoff: routes}, a)
}
