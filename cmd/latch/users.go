package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/policy"
)

const usersUsage = `Usage:
  latch users add --config FILE --email E [--role R]... [--password-stdin] [--reset-link]
  latch users list --config FILE
  latch users delete --config FILE --email E
  latch users set-roles --config FILE --email E [--role R]...

With the bbolt backend the store is a file only one process may open: while
latch serve runs, use its /.latch/users API instead.
`

// usersArgs is what the users subcommands were given.
type usersArgs struct {
	email   string
	roles   stringList
	pwStdin bool
	link    bool
}

// cmdUsers parses a users subcommand, opens the store and runs it.
func cmdUsers(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(e.stderr, usersUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub := args[0]
	run, ok := usersCommand(sub)
	if !ok {
		fmt.Fprintf(e.stderr, "latch users: unknown command %q\n\n%s", sub, usersUsage)
		return errUsage
	}
	cfg, a, err := parseUsers(e, sub, args[1:])
	if err != nil || cfg == nil {
		return err
	}
	if len(a.roles) > 0 {
		warnRoleNames(e.stderr, "users "+sub, cfg, a.roles)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	st, err := openStore(cfg, nil, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	return run(ctx, e, cfg, st, a)
}

// usersCommand is the function that runs the users subcommand sub on an
// open store, or false for an unknown one.
func usersCommand(sub string) (func(ctx context.Context, e *env, cfg *config.Config, st backend, a *usersArgs) error, bool) {
	switch sub {
	case "add":
		return usersAdd, true
	case "list":
		return usersList, true
	case "delete":
		return usersDelete, true
	case "set-roles":
		return usersSetRoles, true
	}
	return nil, false
}

// parseUsers parses the flags of users sub. A nil config with a nil error
// means --help was answered.
func parseUsers(e *env, sub string, rest []string) (*config.Config, *usersArgs, error) {
	fs := newFlags("users "+sub, "users "+sub+" --config FILE ...", e.stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	a := &usersArgs{}
	needEmail := sub != "list"
	if needEmail {
		fs.StringVar(&a.email, "email", "", "the user's email")
	}
	if sub == "add" || sub == "set-roles" {
		fs.Var(&a.roles, "role", "a role (repeat for more)")
	}
	if sub == "add" {
		fs.BoolVar(&a.pwStdin, "password-stdin", false, "read the password from the first line of stdin")
		fs.BoolVar(&a.link, "reset-link", false, "print a reset link the user can set a password with")
	}
	if done, err := parse(fs, rest); done {
		return nil, nil, err
	}
	if *path == "" || needEmail && a.email == "" {
		fmt.Fprintln(e.stderr, "latch users "+sub+": --config and --email are required")
		fs.Usage()
		return nil, nil, errUsage
	}
	cfg, err := config.Load(*path, e.environ)
	if err != nil {
		return nil, nil, err
	}
	return cfg, a, nil
}

func usersAdd(ctx context.Context, e *env, cfg *config.Config, st backend, a *usersArgs) error {
	pw := ""
	if a.pwStdin {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && line == "" {
			return errors.New("--password-stdin: no password on stdin")
		}
		pw = strings.TrimRight(line, "\r\n")
		if problems := latch.PasswordProblems(pw); len(problems) > 0 {
			return fmt.Errorf("--password-stdin: %s", strings.Join(problems, " "))
		}
	}
	u, err := st.AddUser(ctx, a.email, a.roles, pw)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "added %s (roles: %s)\n", u.Email, strings.Join(u.Roles, ","))
	if a.link {
		tok, exp, err := st.IssueResetToken(ctx, u.Email)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "reset link (valid until %s): %s?token=%s\n", exp.UTC().Format(time.RFC3339), cfg.Reset.URL, tok)
	}
	return nil
}

func usersList(ctx context.Context, e *env, _ *config.Config, st backend, _ *usersArgs) error {
	us, err := st.ListUsers(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tROLES\tPASSWORD\tCREATED")
	for _, u := range us {
		pw := "no (reset link only)"
		if u.HasPassword {
			pw = "set " + u.PasswordChanged.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Email, strings.Join(u.Roles, ","), pw, u.Created.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func usersDelete(ctx context.Context, e *env, _ *config.Config, st backend, a *usersArgs) error {
	if err := st.DeleteUser(ctx, a.email); err != nil {
		return err
	}
	email, err := latch.NormalizeEmail(a.email)
	if err != nil {
		email = a.email
	}
	fmt.Fprintf(e.stdout, "deleted %s\n", email)
	return nil
}

func usersSetRoles(ctx context.Context, e *env, _ *config.Config, st backend, a *usersArgs) error {
	u, err := st.SetRoles(ctx, a.email, a.roles)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s roles: %s\n", u.Email, strings.Join(u.Roles, ","))
	return nil
}

// warnRoleNames warns, one line each, about roles written with the role:
// prefix and roles no rule of the configured policy mentions. The roles
// are stored all the same: the policy may be about to gain them.
func warnRoleNames(w io.Writer, cmd string, cfg *config.Config, roles []string) {
	warn(w, cmd, prefixedRoles(roles))
	eng, err := policy.Open(policyOptions(cfg))
	if err != nil {
		warn(w, cmd, []string{fmt.Sprintf("the role names were not checked against the policy, which does not load: %s", strings.ReplaceAll(err.Error(), "\n", "; "))})
		return
	}
	warn(w, cmd, unknownRoles(roles, eng.Roles()))
}
