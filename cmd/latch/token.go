package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/resetstore"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// tokenLockTimeout bounds how long `latch token` waits for the bbolt
// file's lock. A running `latch serve` holds it for as long as it runs, so
// waiting the whole store.lock_timeout would only delay the same answer.
const tokenLockTimeout = 500 * time.Millisecond

// tokenStoreTimeout bounds reading the user from the store.
const tokenStoreTimeout = 10 * time.Second

const tokenSynopsis = "token --config FILE --sub EMAIL [--role R]... [--allow-unknown] [--ttl D]"

// cmdToken mints a JWT with latch's signing key, issuer and audience, for
// a user read from the store:
//
//   - Without --role, the token is tied to the stored user as a login token
//     is (authn MintSession with the user's session generation): it acts
//     with the roles stored now, so a role change applies to it, and it is
//     refused once the user is deleted or sets a password.
//   - With --role, the given roles override the stored ones. A tied token
//     always acts with the stored roles (proxy.ResolveSession), so this
//     token is not tied (authn Mint): it keeps the roles given here until
//     it expires, survives deleting the user, and is refused only once the
//     user sets a password after it was minted. The command says so on
//     stderr. Keep its --ttl short.
//   - A subject that is not a stored user is refused, unless
//     --allow-unknown: then the token is not tied either, and carries the
//     --role flags given (none without them). --allow-unknown with --role
//     does not read the store at all, so it works while `latch serve` holds
//     a bbolt file.
func cmdToken(e *env, args []string) error {
	fs := newFlags("token", tokenSynopsis, e.stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	sub := fs.String("sub", "", "subject (the user's email)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	allowUnknown := fs.Bool("allow-unknown", false, "mint for a subject that is not a stored user (a token not tied to one)")
	var roles stringList
	fs.Var(&roles, "role", "a role, instead of the stored user's roles (repeat for more); the token is then not tied to the user")
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
	var u latch.User
	found := false
	if !*allowUnknown || len(roles) == 0 {
		if u, found, err = storedUser(cfg, *sub); err != nil {
			return err
		}
	}
	if !found && !*allowUnknown {
		return fmt.Errorf("--sub %s: no such user in the store; add it (latch users add), or pass --allow-unknown (with --role R) for a token not tied to a stored user", *sub)
	}
	a, err := openMinter(cfg)
	if err != nil {
		return err
	}
	var tok string
	switch {
	case !found:
		why := *sub + " is not a stored user"
		if len(roles) > 0 && *allowUnknown {
			why = "--allow-unknown with --role (the store is not read)"
		}
		tok, _, err = a.Mint(*sub, roles, *ttl)
		unbound(e, why, roles)
	case len(roles) > 0:
		tok, _, err = a.Mint(u.Email, roles, *ttl)
		unbound(e, "--role overrides "+u.Email+"'s stored roles", roles)
	default:
		tok, _, err = a.MintSession(u.Email, u.Roles, u.Generation, *ttl)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}

// unbound says on stderr, in one line, that the token is not tied to a
// stored user and what that means.
func unbound(e *env, why string, roles []string) {
	r := "no roles"
	if len(roles) > 0 {
		r = "roles " + strings.Join(roles, ",")
	}
	fmt.Fprintf(e.stderr, "latch token: %s, so the token is not tied to a stored user: it acts with %s until it expires; "+
		"deleting the user does not end it, only the user setting a password does\n", why, r)
}

// storedUser reads sub's record from the store the config names. found is
// false when sub is no stored user (or no valid email, or there is no
// bbolt file yet: it is not created here).
func storedUser(cfg *config.Config, sub string) (u latch.User, found bool, err error) {
	if cfg.Store.Backend == "bbolt" {
		if _, err := os.Stat(cfg.StorePath()); errors.Is(err, fs.ErrNotExist) {
			return latch.User{}, false, nil
		}
		cfg.Store.LockTimeout = config.Duration(min(cfg.Store.LockTimeout.D(), tokenLockTimeout))
	}
	st, err := openStore(cfg, nil, nil)
	if errors.Is(err, resetstore.ErrLocked) {
		who := "another process"
		if pid := holderPID(cfg.DataDir); pid != "" {
			who = "latch serve (pid " + pid + ")"
		}
		return latch.User{}, false, fmt.Errorf("store: %s is in use by %s, so the user's record cannot be read; "+
			"while it runs, pass --allow-unknown with explicit --role flags (a token not tied to the user), "+
			"or log in (POST /.latch/login), or manage users through /.latch/users", cfg.StorePath(), who)
	}
	if err != nil {
		return latch.User{}, false, err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), tokenStoreTimeout)
	defer cancel()
	u, err = st.GetUser(ctx, sub)
	switch {
	case errors.Is(err, latch.ErrUserNotFound), errors.Is(err, latch.ErrInvalidEmail):
		return latch.User{}, false, nil
	case err != nil:
		return latch.User{}, false, fmt.Errorf("store: reading %s: %w", sub, err)
	}
	return u, true, nil
}
