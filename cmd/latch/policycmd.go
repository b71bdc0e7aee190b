package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/policy"
	"github.com/latch-dev/latch/proxy"
)

// cmdPolicy runs `latch policy explain`: the canonical path and the
// decision the running proxy would make, with the deciding rule.
//
// It imports proxy for the steps that come before the policy, so that
// there is one of each: the method check (proxy.CheckMethod), latch's
// privileged routes (proxy.ProtectedPrefixes), the canonical path and its
// readings (proxy.Resolve), and the 403 message (proxy.Decision.Message).
// The decision itself is the proxy's decider (policy.Engine.DecideAll).
func cmdPolicy(e *env, args []string) error {
	if len(args) == 0 || args[0] != "explain" {
		fmt.Fprintln(e.stderr, "Usage: latch policy explain --config FILE --sub EMAIL [--role R]... METHOD PATH")
		return errUsage
	}
	fs := newFlags("policy explain", "policy explain --config FILE --sub EMAIL [--role R]... METHOD PATH", e.stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	sub := fs.String("sub", "", "subject (the user's email)")
	var roles stringList
	fs.Var(&roles, "role", "a role (repeat for more)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if *path == "" || *sub == "" || fs.NArg() != 2 {
		fs.Usage()
		return errUsage
	}
	method, raw := fs.Arg(0), fs.Arg(1)
	cfg, err := config.Load(*path, e.environ)
	if err != nil {
		return err
	}
	warn(e.stderr, "policy explain", prefixedRoles(roles))
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	// The same steps, in the same order, as the proxy (proxy.Handler.serve).
	if err := proxy.CheckMethod(method); err != nil {
		var pe *proxy.Error
		errors.As(err, &pe)
		fmt.Fprintf(e.stdout, "method: %s\ndecision: refused with %d (%s)\n", method, pe.Status, pe.Message)
		return nil
	}
	protect := proxy.ProtectedPrefixes(cfg.Policy.Protect, cfg.Namespace)
	t, err := proxy.Resolve(raw, protect)
	if err != nil {
		fmt.Fprintf(e.stdout, "path: %s\ndecision: refused with 400 (%v)\n", raw, err)
		return nil
	}
	fmt.Fprintf(e.stdout, "path: %s\n", t.Escaped)
	if len(t.Readings) > 1 {
		fmt.Fprintf(e.stdout, "readings: %s\n", strings.Join(t.Readings, " "))
	}
	if !t.Protected {
		fmt.Fprintf(e.stdout, "decision: allow (not under the protected prefixes %v; forwarded without a policy check)\n", protect)
		return nil
	}
	eng, err := policy.Open(policyOptions(cfg))
	if err != nil {
		return err
	}
	warn(e.stderr, "policy explain", unknownRoles(roles, eng.Roles()))
	// The proxy's decider: every reading must be allowed, one decision.
	d, err := decider{eng}.Decide(*sub, roles, []string{method}, t.Readings)
	switch {
	case err != nil:
		fmt.Fprintf(e.stdout, "decision: deny (the policy could not decide: %v)\n", err)
	case d.Allow:
		fmt.Fprintf(e.stdout, "decision: allow\nrule: %s\n", strings.Join(d.Rule, ", "))
	case d.Rule != nil:
		fmt.Fprintf(e.stdout, "decision: deny\nrule: %s\n", strings.Join(d.Rule, ", "))
	default:
		fmt.Fprintln(e.stdout, "decision: deny\nrule: none matched")
	}
	if !d.Allow && err == nil {
		if d.Path != t.Escaped {
			fmt.Fprintf(e.stdout, "denied reading: %s\n", d.Path)
		}
		fmt.Fprintf(e.stdout, "message: %s\n", d.Message(t.Escaped))
	}
	return nil
}

// prefixedRoles returns a warning for each role written with the role:
// prefix, which latch adds itself: --role role:admin is the role
// "role:role:admin", which no rule can name usefully.
func prefixedRoles(roles []string) []string {
	var out []string
	for _, r := range dedupe(roles) {
		if name, ok := strings.CutPrefix(r, policy.RolePrefix); ok {
			out = append(out, fmt.Sprintf("--role %s: latch adds the %s prefix itself, so this is the role %s%s; write --role %s",
				r, policy.RolePrefix, policy.RolePrefix, r, name))
		}
	}
	return out
}

// unknownRoles returns a warning for each role that no rule of the policy
// mentions (known is policy.Engine.Roles): it grants nothing, and is most
// likely misspelt (adminn). A role with the role: prefix is left to
// prefixedRoles.
func unknownRoles(roles, known []string) []string {
	var out []string
	for _, r := range dedupe(roles) {
		if strings.HasPrefix(r, policy.RolePrefix) || slices.Contains(known, r) {
			continue
		}
		out = append(out, fmt.Sprintf("--role %s: no policy rule mentions %s%s, so it grants nothing (the rules' roles: %s)",
			r, policy.RolePrefix, r, strings.Join(known, ", ")))
	}
	return out
}

func dedupe(roles []string) []string {
	var out []string
	for _, r := range roles {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// warn writes each warning as one line on w; a warning does not stop the
// command.
func warn(w io.Writer, cmd string, warnings []string) {
	for _, m := range warnings {
		fmt.Fprintf(w, "latch %s: warning: %s\n", cmd, m)
	}
}
