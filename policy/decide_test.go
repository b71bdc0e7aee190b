package policy

import (
	"errors"
	"slices"
	"testing"
)

func TestDecideShippedPolicy(t *testing.T) {
	e := newFixture(t).open(t)
	editorDeny := []string{"role:editor", "/api/admin/user-admin/*", ".*", "deny", ""}
	tests := []struct {
		name       string
		user       string
		roles      []string
		method     string
		path       string
		allow      bool
		ruleSub    string   // subject of the deciding rule; "" = no rule
		rule       []string // whole deciding rule, when it matters
		permission string
	}{
		{"admin resets passwords", "alice@example.com", []string{"admin"}, "POST", resetPath, true, "role:admin", nil, ""},
		{"editor cannot reset", "bob@example.com", []string{"editor"}, "POST", resetPath, false, "role:editor", editorDeny, "ADMIN"},
		{"viewer cannot reset", "carol@example.com", []string{"viewer"}, "POST", resetPath, false, "", nil, "ADMIN"},
		{"no roles", "dave@example.com", nil, "POST", resetPath, false, "", nil, "ADMIN"},
		{"user named admin is not the role", "admin", nil, "POST", resetPath, false, "", nil, "ADMIN"},
		{"user named role name with editor role", "admin", []string{"editor"}, "POST", resetPath, false, "role:editor", editorDeny, "ADMIN"},
		{"deny overrides allow across roles", "alice@example.com", []string{"admin", "editor"}, "POST", resetPath, false, "role:editor", editorDeny, "ADMIN"},
		{"deny overrides allow, role order reversed", "alice@example.com", []string{"editor", "admin"}, "POST", resetPath, false, "role:editor", editorDeny, "ADMIN"},
		{"viewer reads features", "carol@example.com", []string{"viewer"}, "GET", "/api/admin/features/my-toggle", true, "role:viewer", nil, ""},
		{"viewer cannot change features", "carol@example.com", []string{"viewer"}, "POST", "/api/admin/projects/default/features", false, "", nil, "UPDATE_FEATURE"},
		{"editor reads through role chain", "bob@example.com", []string{"editor"}, "GET", "/api/admin/features/my-toggle", true, "role:viewer", nil, ""},
		{"editor toggles a feature", "bob@example.com", []string{"editor"}, "POST", "/api/admin/projects/default/features/f/environments/production/on", true, "role:editor", nil, ""},
		{"editor cannot list users", "bob@example.com", []string{"editor"}, "GET", "/api/admin/user-admin", false, "role:editor", nil, "ADMIN"},
		{"admin reads users", "alice@example.com", []string{"admin"}, "GET", "/api/admin/user-admin", true, "role:admin", nil, ""},
		{"unknown role", "x@example.com", []string{"superuser"}, "GET", "/api/admin/features", false, "", nil, "ADMIN"},
		{"empty role name ignored", "alice@example.com", []string{"", "admin"}, "POST", resetPath, true, "role:admin", nil, ""},
		{"role passed with prefix is not that role", "alice@example.com", []string{"role:admin"}, "POST", resetPath, false, "", nil, "ADMIN"},
		{"path case is kept", "alice@example.com", []string{"admin"}, "POST", "/API/admin/user-admin/reset-password", false, "", nil, ""},
		{"method is exact", "carol@example.com", []string{"viewer"}, "get", "/api/admin/features", false, "", nil, "ADMIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Decide(tt.user, tt.roles, tt.method, tt.path)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Allow != tt.allow {
				t.Errorf("Allow: got %v, want %v (rule %q)", d.Allow, tt.allow, d.Rule)
			}
			gotSub := ""
			if d.Rule != nil {
				gotSub = d.Rule[colSub]
			}
			if gotSub != tt.ruleSub {
				t.Errorf("deciding rule subject: got %q, want %q (rule %q)", gotSub, tt.ruleSub, d.Rule)
			}
			if tt.rule != nil && !slices.Equal(d.Rule, tt.rule) {
				t.Errorf("Rule: got %q, want %q", d.Rule, tt.rule)
			}
			if d.Permission != tt.permission {
				t.Errorf("Permission: got %q, want %q", d.Permission, tt.permission)
			}
			x, err := e.Explain(tt.user, tt.roles, tt.method, tt.path)
			if err != nil || x.Allow != d.Allow || !slices.Equal(x.Rule, d.Rule) || x.Permission != d.Permission || x.Pattern != d.Pattern {
				t.Errorf("Explain: got %+v, %v; want %+v, nil as Decide", x, err, d)
			}
		})
	}
}

func TestDecideRejectsBadSubjects(t *testing.T) {
	e := newFixture(t).open(t)
	for _, user := range []string{"", "role:admin", "role:"} {
		d, err := e.Decide(user, []string{"admin"}, "POST", resetPath)
		if !errors.Is(err, ErrSubject) {
			t.Errorf("Decide(%q): got error %v, want ErrSubject", user, err)
		}
		if d.Allow {
			t.Errorf("Decide(%q): got allow, want deny on error", user)
		}
	}
}

// TestDecideUsersAndPatterns uses a policy written for the test: users
// granted roles in the policy, user rules, and a route whose rules name no
// permission, so the denial reports the closest pattern instead.
func TestDecideUsersAndPatterns(t *testing.T) {
	f := newFixture(t)
	writeFile(t, f.rules, `
p, role:reader, /api/admin/reports/:id, ^GET$, allow
p, role:boss, /api/admin/payroll/*, ^(GET|POST)$, allow, PAYROLL
p, frank@example.com, /api/admin/payroll/frank, ^GET$, allow
p, role:intern, /api/admin/payroll/*, .*, deny
g, role:lead, role:reader
g, role:boss, role:lead
g, grace@example.com, role:boss
`)
	writeFile(t, f.tests, "")
	e := f.open(t)
	tests := []struct {
		name       string
		user       string
		roles      []string
		method     string
		path       string
		allow      bool
		permission string
		pattern    string
	}{
		{"role granted in the policy", "grace@example.com", nil, "POST", "/api/admin/payroll/run", true, "", ""},
		{"two-step role chain", "grace@example.com", nil, "GET", "/api/admin/reports/7", true, "", ""},
		{"chain from a passed role", "x@example.com", []string{"boss"}, "GET", "/api/admin/reports/7", true, "", ""},
		{"user rule", "frank@example.com", nil, "GET", "/api/admin/payroll/frank", true, "", ""},
		{"user rule, other path", "frank@example.com", nil, "GET", "/api/admin/payroll/grace", false, "PAYROLL", ""},
		{"deny on an extra role", "grace@example.com", []string{"intern"}, "GET", "/api/admin/payroll/run", false, "PAYROLL", ""},
		{"route without a permission name", "x@example.com", nil, "GET", "/api/admin/reports/7", false, "", "^GET$ /api/admin/reports/:id"},
		{"keyMatch2 segment is one segment", "x@example.com", []string{"reader"}, "GET", "/api/admin/reports/7/raw", false, "", ""},
		{"no rule covers the route", "x@example.com", nil, "GET", "/api/admin/other", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Decide(tt.user, tt.roles, tt.method, tt.path)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Allow != tt.allow || d.Permission != tt.permission || d.Pattern != tt.pattern {
				t.Errorf("got allow=%v permission=%q pattern=%q, want allow=%v permission=%q pattern=%q (rule %q)",
					d.Allow, d.Permission, d.Pattern, tt.allow, tt.permission, tt.pattern, d.Rule)
			}
		})
	}
}

func TestDecideFailsClosedOnEnforceError(t *testing.T) {
	e := newFixture(t).open(t)
	// Corrupt the running policy behind validation's back: a rule whose
	// pattern Casbin can only reject while enforcing, in place of one the
	// index offers for the request.
	st := e.cur.Load()
	i := slices.IndexFunc(st.ix.rules, func(r []string) bool { return r[colSub] == "role:admin" && r[colObj] == "/api/admin/*" })
	if i < 0 {
		t.Fatal("the shipped policy has no admin rule for /api/admin/*")
	}
	st.ix.rules[i] = []string{"role:admin", "/api/admin/(*", ".*", "allow", ""}
	d, err := e.Decide("alice@example.com", []string{"admin"}, "POST", resetPath)
	if err == nil {
		t.Fatalf("Decide: got no error, want one from the bad pattern")
	}
	if d.Allow {
		t.Errorf("Decide: got allow, want deny when deciding fails")
	}
}

func BenchmarkDecide(b *testing.B) {
	e, err := Open(Options{
		ModelPath: shippedDir + "/model.conf",
		RulesPath: shippedDir + "/policy.csv",
	})
	if err != nil {
		b.Fatal(err)
	}
	roles := []string{"editor"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide("bob@example.com", roles, "GET", "/api/admin/features/my-toggle"); err != nil {
			b.Fatal(err)
		}
	}
}
