package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/casbin/casbin/v2/util"
)

// TestStandInsMatchCasbin calls the cached keyMatch2 and regexMatch and
// Casbin's own on the same arguments, including patterns that do not
// compile and patterns the table does not hold.
func TestStandInsMatchCasbin(t *testing.T) {
	objs := []string{
		"/api/admin/projects", "/api/admin/projects/*", "/api/admin/projects/:id", "/api/admin/:a/x/:b",
		"/api/admin/res1*", "/api/admin/res.json", "/api/admin/*", "/*", "*", ":id", "/api/v1.0/x",
		"/api/admin/(x|y)/:id", "/api/admin/(*", "/a/:b*", "/a/*/b", "", "(?i)/API/admin/*",
	}
	acts := []string{"^(GET|HEAD)$", ".*", "GET", "^POST$", "^(GET$", "", "(?i)get"}
	var rows [][]string
	for i := range max(len(objs), len(acts)) - 3 { // the last ones stay out of the table
		rows = append(rows, []string{"s", objs[i%len(objs)], acts[i%len(acts)], "allow", ""})
	}
	pt := compilePatterns(&modelSpec{values: map[string]string{"p": pWithPerm, "m": stdMatcher}}, rows, nil)
	fns := pt.functions()
	paths := []string{"", "/", "/api/admin/projects", "/api/admin/projects/", "/api/admin/projects/7", "/api/admin/projects/7/x",
		"/api/admin/res", "/api/admin/res111", "/api/admin/resXjson", "/api/admin/res.json", "/api/v1x0/x", "/API/ADMIN/x",
		"/api/admin/x/7", "/a/b", "/a/bbb/b", "/a//b", "x", ":id", "/api/admin/(x", "/\xff"}
	methods := []string{"GET", "get", "HEAD", "POST", "XGETX", "", "DELETE"}
	compare := func(name string, ours, casbins func(...any) (any, error), args ...any) {
		t.Helper()
		got, gotPanic, gotErr := callCapturing(ours, args...)
		want, wantPanic, wantErr := callCapturing(casbins, args...)
		if got != want || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || gotPanic != wantPanic {
			t.Errorf("%s%q: got %v, %v, panic %q; Casbin %v, %v, panic %q", name, args, got, gotErr, gotPanic, want, wantErr, wantPanic)
		}
	}
	for _, o := range objs {
		for _, p := range paths {
			compare("keyMatch2", fns[cachedKeyMatch2], util.KeyMatch2Func, p, o)
		}
	}
	for _, a := range acts {
		for _, m := range methods {
			compare("regexMatch", fns[cachedRegexMatch], util.RegexMatchFunc, m, a)
		}
	}
	compare("keyMatch2", fns[cachedKeyMatch2], util.KeyMatch2Func, "/a")
	compare("keyMatch2", fns[cachedKeyMatch2], util.KeyMatch2Func, 1, "/a")
	compare("regexMatch", fns[cachedRegexMatch], util.RegexMatchFunc, "GET", "GET", "x")
}

func callCapturing(fn func(...any) (any, error), args ...any) (v any, panicked string, err error) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprint(r)
		}
	}()
	v, err = fn(args...)
	return v, "", err
}

func TestLiteralPrefix(t *testing.T) {
	tests := []struct{ expr, want string }{
		{keyMatch2Expr("/api/admin/projects/:id"), "/api/admin/projects/"},
		{keyMatch2Expr("/api/admin/*"), "/api/admin/"},
		{keyMatch2Expr("/api/admin"), "/api/admin"},
		{keyMatch2Expr("/api/admin/res1*"), "/api/admin/res"}, // the star repeats the 1
		{keyMatch2Expr("/api/v1.0/x"), "/api/v1"},
		{keyMatch2Expr(":id/x"), ""},
		{keyMatch2Expr("(?i)/api"), ""},
		{keyMatch2Expr("/api/(?i)admin"), "/api/"},
		{"^/a|/b$", ""},           // the anchor holds for one branch only
		{"/api/admin", ""},        // unanchored: a match may start anywhere
		{"(^/api)", ""},           // anchor inside a group: not trusted
		{"^/api/\uFFFD", "/api/"}, // invalid UTF-8 in the input reads as U+FFFD
		{"^/é/x", "/é/x"},
		{"^(", ""},
	}
	for _, tt := range tests {
		if got := literalPrefix(tt.expr); got != tt.want {
			t.Errorf("literalPrefix(%q): got %q, want %q", tt.expr, got, tt.want)
		}
	}
}

func TestRewriteCalls(t *testing.T) {
	tests := []struct{ in, want string }{
		{stdMatcher, "g(r.sub, p.sub) && latchKeyMatch2(r.obj, p.obj) && latchRegexMatch(r.act, p.act)"},
		{`keyMatch2 (r.obj, "keyMatch2(x)") && r.obj != 'regexMatch(' && myregexMatch(r.act, p.act)`,
			`latchKeyMatch2 (r.obj, "keyMatch2(x)") && r.obj != 'regexMatch(' && myregexMatch(r.act, p.act)`},
		{`keyMatch2Ex(r.obj, p.obj) && "a\"keyMatch2(" == p.keyMatch2`, `keyMatch2Ex(r.obj, p.obj) && "a\"keyMatch2(" == p.keyMatch2`},
	}
	for _, tt := range tests {
		if got := rewriteCalls(tt.in); got != tt.want {
			t.Errorf("rewriteCalls(%q):\n got  %q\n want %q", tt.in, got, tt.want)
		}
	}
}

func TestRouteColumn(t *testing.T) {
	tests := []struct {
		route, fn string
		col       int
	}{
		{"keyMatch2(r.obj, p.obj) && regexMatch(r.act, p.act)", "keyMatch2", colObj},
		{"(regexMatch(r.act, p.act) && (keyMatch2( r.obj , p.obj )))", "keyMatch2", colObj},
		{"regexMatch(r.obj, p.obj) && r.act == p.act", "regexMatch", colObj},
		{"keyMatch(r.obj, p.obj) && regexMatch(r.act, p.act)", "", -1},
		{"(keyMatch2(r.obj, p.obj) || r.act == \"GET\") && regexMatch(r.act, p.act)", "", -1},
		{"!keyMatch2(r.obj, p.obj) && regexMatch(r.act, p.act)", "", -1},
		{"keyMatch2(p.obj, r.obj)", "", -1},
		{"keyMatch2(r.obj, p.nope)", "", -1},
		{`r.act == "&&" && keyMatch2(r.obj, p.obj)`, "keyMatch2", colObj},
	}
	for _, tt := range tests {
		spec := &modelSpec{values: map[string]string{"p": pWithPerm}, routeExpr: tt.route}
		fn, col := routeColumn(spec)
		if fn != tt.fn || col != tt.col {
			t.Errorf("routeColumn(%q): got %q, %d; want %q, %d", tt.route, fn, col, tt.fn, tt.col)
		}
	}
}

// TestTrialNamesFailingRule: a matcher that fails on one rule only (its
// path is not a regular expression, used where checkPatterns does not
// look) is refused naming that rule's line.
func TestTrialNamesFailingRule(t *testing.T) {
	m := "g(r.sub, p.sub) && regexMatch(r.act, p.act) && regexMatch(p.obj, r.obj)"
	csv := "p, role:a, /api/a, .*, allow, \np, role:a, /api/(b, .*, allow, \np, role:a, /api/c, .*, allow, \n" // .* matches itself, so the path is evaluated
	o := writePolicy(t, modelText(pWithPerm, allowNoDeny, m), csv)
	_, err := Open(o)
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("Open: got %v, want a *FileError", err)
	}
	if fe.Path != o.RulesPath || fe.Line != 2 || !strings.Contains(fe.Reason, "evaluating the matcher on this rule failed") {
		t.Errorf("got %s, want %s:2 and an evaluation failure", fe, o.RulesPath)
	}
}

// TestIndexKeepsFileOrder checks the candidates of a request: every rule
// that could match, in file order, and none of another subject's.
func TestIndexKeepsFileOrder(t *testing.T) {
	csv := `p, role:a, /api/x/*, ^GET$, allow, P1
p, role:b, /api/x/:id, ^GET$, allow, P2
p, role:a, /api/*, ^GET$, deny,
p, role:a, /api/x/1, ^GET$, allow, P3
p, role:c, /other, ^GET$, allow, P4
p, role:a, (?i)/API/x/1, ^GET$, allow,
g, u@example.com, role:a
g, role:a, role:b
`
	o := writePolicy(t, modelText(pWithPerm, allowNoDeny, stdMatcher), csv)
	e, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	ix := e.cur.Load().ix
	objs := func(rules [][]string) []string {
		var out []string
		for _, r := range rules {
			out = append(out, r[colSub]+" "+r[colObj])
		}
		return out
	}
	got := objs(ix.subjectRules("u@example.com", "/api/x/1"))
	want := []string{"role:a /api/x/*", "role:b /api/x/:id", "role:a /api/*", "role:a /api/x/1", "role:a (?i)/API/x/1"}
	if !slices.Equal(got, want) {
		t.Errorf("subjectRules: got %q, want %q", got, want)
	}
	if got := objs(ix.subjectRules("role:c", "/api/x/1")); len(got) != 0 {
		t.Errorf("subjectRules for role:c: got %q, want none", got)
	}
	if got := objs(ix.subjectRules("stranger", "/api/x/1")); len(got) != 0 {
		t.Errorf("subjectRules for a stranger: got %q, want none", got)
	}
	got = objs(ix.routeRules("/api/x/1", true))
	want = []string{"role:a /api/x/*", "role:b /api/x/:id", "role:a /api/x/1"}
	if !slices.Equal(got, want) {
		t.Errorf("routeRules with a permission: got %q, want %q", got, want)
	}
}
