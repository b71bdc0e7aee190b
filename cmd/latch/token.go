package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/proxy/authn"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// cmdToken mints a JWT with latch's signing key, issuer and audience.
//
// Unlike a login token, it is not tied to a stored user: it carries no
// session generation, so deleting the subject or changing its roles in the
// store does not end it, and it acts with the roles given here. It is
// still refused once the subject, if it is a stored user, sets its
// password after the token was minted. Keep its --ttl short; to end one
// early, rotate the signing key.
func cmdToken(e *env, args []string) error {
	fs := newFlags("token", "token --config FILE --sub EMAIL [--role R]... [--ttl D]", e.stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	sub := fs.String("sub", "", "subject (the user's email)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	var roles stringList
	fs.Var(&roles, "role", "a role (repeat for more)")
	if done, err := parse(fs, args); done {
		return err
	}
	if *path == "" || *sub == "" {
		fmt.Fprintln(e.stderr, "latch token: --config and --sub are required")
		fs.Usage()
		return errUsage
	}
	if *ttl <= 0 {
		return fmt.Errorf("--ttl %v: must be positive", *ttl)
	}
	cfg, err := config.Load(*path, e.environ)
	if err != nil {
		return err
	}
	if err := ensureSigningKey(cfg); err != nil {
		return err
	}
	o, err := authOptions(cfg)
	if err != nil {
		return err
	}
	// Mint needs only the signing key; a JWKS is not fetched.
	o.JWKSURL = ""
	a, err := authn.New(o)
	if err != nil {
		return err
	}
	tok, _, err := a.Mint(*sub, roles, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}
