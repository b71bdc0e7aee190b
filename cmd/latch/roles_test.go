package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wantWarnings checks that stderr holds exactly one line per entry of
// want, each containing its entry, in order.
func wantWarnings(t *testing.T, what, stderr string, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if stderr == "" {
		lines = nil
	}
	if len(lines) != len(want) {
		t.Errorf("%s: stderr has %d lines, want %d: %q", what, len(lines), len(want), stderr)
		return
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("%s: stderr line %d is %q, want it to contain %q", what, i+1, lines[i], w)
		}
	}
}

// TestUsersWarnAboutRoles: users add and set-roles warn about a role no
// rule mentions and about the role: prefix, one line each, and store the
// roles all the same.
func TestUsersWarnAboutRoles(t *testing.T) {
	t.Parallel()
	cfg := tokenConfig(t, "http://127.0.0.1:1")
	unknown := "latch users add: warning: --role adminn: no policy rule mentions role:adminn, so it grants nothing (the rules' roles: admin, editor, viewer)"
	prefixed := "latch users add: warning: --role role:admin: latch adds the role: prefix itself, so this is the role role:role:admin; write --role admin"

	out, stderr := mustCLI(t, "users", "add", "--config", cfg, "--email", "a@example.com",
		"--role", "adminn", "--role", "role:admin", "--role", "viewer", "--role", "adminn")
	wantWarnings(t, "users add", stderr, prefixed, unknown)
	if !strings.Contains(out, "added a@example.com (roles: adminn,role:admin,viewer") {
		t.Errorf("users add: stdout %q", out)
	}

	_, stderr = mustCLI(t, "users", "add", "--config", cfg, "--email", "b@example.com", "--role", "admin", "--role", "viewer")
	wantWarnings(t, "users add with known roles", stderr)
	_, stderr = mustCLI(t, "users", "add", "--config", cfg, "--email", "c@example.com")
	wantWarnings(t, "users add without roles", stderr)

	out, stderr = mustCLI(t, "users", "set-roles", "--config", cfg, "--email", "b@example.com", "--role", "editr", "--role", "role:editor")
	wantWarnings(t, "users set-roles", stderr,
		"latch users set-roles: warning: --role role:editor: latch adds the role: prefix itself",
		"latch users set-roles: warning: --role editr: no policy rule mentions role:editr")
	if !strings.Contains(out, "b@example.com roles: editr,role:editor") {
		t.Errorf("users set-roles: stdout %q", out)
	}
	_, stderr = mustCLI(t, "users", "set-roles", "--config", cfg, "--email", "b@example.com", "--role", "editor")
	wantWarnings(t, "users set-roles with a known role", stderr)
}

// TestUsersWarnPolicyBroken: a policy that does not load makes one warning
// line; the user is added.
func TestUsersWarnPolicyBroken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rules := filepath.Join(dir, "policy.csv")
	if err := os.WriteFile(rules, []byte("p, role:admin, /api/admin/*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "latch.yaml")
	text := strings.Replace(baseConfig(t, "http://127.0.0.1:1", ""), repoFile(t, "policies/policy.csv"), rules, 1)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr := mustCLI(t, "users", "add", "--config", cfg, "--email", "a@example.com", "--role", "role:admin")
	wantWarnings(t, "users add", stderr, "--role role:admin: latch adds the role: prefix itself",
		"latch users add: warning: the role names were not checked against the policy, which does not load: "+rules+":1")
	if !strings.Contains(out, "added a@example.com") {
		t.Errorf("users add: stdout %q", out)
	}
}

// TestExplainWarnsAboutRoles: policy explain warns on stderr and decides
// as before; an unprotected path needs no policy, so only the prefix is
// checked there.
func TestExplainWarnsAboutRoles(t *testing.T) {
	t.Parallel()
	cfg := tokenConfig(t, "http://127.0.0.1:1")
	tests := []struct {
		roles    []string
		path     string
		decision string
		warnings []string
	}{
		{[]string{"viewer"}, "/api/admin/features", "decision: allow", nil},
		{[]string{"adminn"}, "/api/admin/features", "decision: deny",
			[]string{"latch policy explain: warning: --role adminn: no policy rule mentions role:adminn"}},
		{[]string{"role:viewer", "viewer"}, "/api/admin/features", "decision: allow",
			[]string{"latch policy explain: warning: --role role:viewer: latch adds the role: prefix itself, so this is the role role:role:viewer"}},
		{[]string{"role:viewer", "adminn"}, "/public", "decision: allow (not under the protected prefixes",
			[]string{"--role role:viewer: latch adds the role: prefix itself"}},
	}
	for _, tt := range tests {
		args := []string{"policy", "explain", "--config", cfg, "--sub", "a@example.com"}
		for _, r := range tt.roles {
			args = append(args, "--role", r)
		}
		out, stderr := mustCLI(t, append(args, "GET", tt.path)...)
		what := "explain " + strings.Join(tt.roles, ",") + " GET " + tt.path
		if !strings.Contains(out, tt.decision) {
			t.Errorf("%s: stdout %q lacks %q", what, out, tt.decision)
		}
		if strings.Contains(out, "warning") {
			t.Errorf("%s: a warning on stdout: %q", what, out)
		}
		wantWarnings(t, what, stderr, tt.warnings...)
	}
}
