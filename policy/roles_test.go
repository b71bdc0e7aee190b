package policy

import (
	"slices"
	"testing"
)

func TestRolesShipped(t *testing.T) {
	t.Parallel()
	e := newFixture(t).open(t)
	if got, want := e.Roles(), []string{"admin", "editor", "viewer"}; !slices.Equal(got, want) {
		t.Errorf("Roles() of the shipped policy: got %q, want %q", got, want)
	}
}

// TestRoles: a role counts when it is a p rule's subject (allow or deny) or
// either side of a g rule; users and comments never count.
func TestRoles(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	writeFile(t, f.rules, `# role:commented is only in a comment
p, role:reader, /api/admin/*, ^GET$, allow
p, bob@example.com, /api/admin/*, .*, allow
p, role:banned, /api/admin/*, .*, deny
g, role:lead, role:reader
g, alice@example.com, role:auditor
`)
	o := f.options()
	o.TestsPath = ""
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.Roles(), []string{"auditor", "banned", "lead", "reader"}; !slices.Equal(got, want) {
		t.Errorf("Roles(): got %q, want %q", got, want)
	}
}

// TestRolesReload: Roles follows the policy in force.
func TestRolesReload(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := f.options()
	o.TestsPath = ""
	o.MaxRuleDrop = 1
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.rules, "p, role:writer, /api/admin/*, .*, allow\np, role:viewer, /api/admin/*, ^GET$, allow\n")
	if err := e.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got, want := e.Roles(), []string{"viewer", "writer"}; !slices.Equal(got, want) {
		t.Errorf("Roles() after Reload: got %q, want %q", got, want)
	}
}
