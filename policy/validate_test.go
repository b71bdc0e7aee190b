package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// badEdit is one edit ops might make by mistake. It must be refused with an
// error naming the file, the line and the reason, and the running policy
// must stay in force.
type badEdit struct {
	name   string
	file   func(f fixture) string             // which file the edit writes
	edit   func(shipped string) (string, int) // new content and the line to blame (0 = whole file)
	reason string                             // part of the reason
}

func appendLine(line string) func(string) (string, int) {
	return func(s string) (string, int) { return s + line + "\n", nextLine(s) }
}

func replaceLine(prefix, with string) func(string) (string, int) {
	return func(s string) (string, int) {
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				lines[i] = with
				return strings.Join(lines, "\n"), i + 1
			}
		}
		panic("no line starts with " + prefix)
	}
}

func whole(content string) func(string) (string, int) {
	return func(string) (string, int) { return content, 0 }
}

func rulesFile(f fixture) string { return f.rules }
func modelFile(f fixture) string { return f.model }
func testsFile(f fixture) string { return f.tests }

var badEdits = []badEdit{
	{"policy: unterminated quote", rulesFile, appendLine(`p, role:admin, "/api/admin/*, .*, allow`), "not a CSV line"},
	{"policy: unknown effect", rulesFile, appendLine("p, role:admin, /api/admin/*, .*, permit"), "effect must be allow or deny"},
	{"policy: too few fields", rulesFile, appendLine("p, role:admin, /api/admin/*"), "p rule has 2 fields"},
	{"policy: unknown rule type", rulesFile, appendLine("x, role:admin, /api/admin/*, .*, allow"), `unknown rule type "x"`},
	{"policy: role granted without prefix", rulesFile, appendLine("g, alice@example.com, admin"), "not a role"},
	{"policy: empty subject", rulesFile, appendLine("p, , /api/admin/*, .*, allow"), "empty subject"},
	{"policy: role prefix without a name", rulesFile, appendLine("p, role:, /api/admin/*, .*, allow"), "has no role name"},
	{"policy: effect in capitals", rulesFile, appendLine("p, role:admin, /api/admin/*, .*, ALLOW"), `got "ALLOW"`},
	{"policy: too many fields", rulesFile, appendLine("p, role:admin, /api/admin/*, .*, allow, ADMIN, extra"), "p rule has 6 fields"},
	{"policy: semicolons for commas", rulesFile, appendLine("p; role:admin; /api/admin/*; .*; allow"), "unknown rule type"},
	{"policy: byte order mark", rulesFile, appendLine("\ufeffp, role:admin, /api/admin/*, .*, allow"), "unknown rule type"},
	{"policy: stray quote in the permission", rulesFile, appendLine(`p, role:admin, /api/admin/*, .*, allow, "AD"MIN"`), "not a CSV line"},
	{"policy: role link with three fields", rulesFile, appendLine("g, alice@example.com, role:admin, role:editor"), "g rule has 3 fields"},
	{"policy: role link without a member", rulesFile, appendLine("g, , role:admin"), "empty member"},
	{"policy: role member of itself", rulesFile, appendLine("g, role:admin, role:admin"), "member of itself"},
	{"policy: method glob for a regexp", rulesFile, appendLine("p, role:admin, /api/admin/*, *, allow"), `act "*" is not a valid regexMatch pattern`},
	{"policy: unclosed bracket in the method", rulesFile, appendLine("p, role:admin, /api/admin/*, [, allow"), "missing closing ]"},
	{"policy: bad line among good ones", rulesFile, func(s string) (string, int) {
		return s + "p, role:admin, /api/admin/*, [, allow\np, role:viewer, /api/admin/x, ^GET$, allow\n", nextLine(s)
	}, "missing closing ]"},
	{"policy: empty file", rulesFile, whole(""), "no p rules"},
	{"policy: only comments", rulesFile, whole("# all gone\n"), "no p rules"},
	{"policy: truncated", rulesFile, func(s string) (string, int) {
		i := strings.Index(s, "p, role:viewer, /api/admin/features,")
		return s[:i], 0
	}, "is the file truncated?"},
	{"policy: bad method regexp", rulesFile, appendLine("p, role:admin, /api/admin/*, ^(GET$, allow"), `act "^(GET$" is not a valid regexMatch pattern`},
	{"policy: bad path pattern", rulesFile, appendLine("p, role:admin, /api/admin/(*, .*, allow"), `obj "/api/admin/(*" is not a valid keyMatch2 pattern`},
	{"model: syntax", modelFile, replaceLine("r = ", "r sub, obj, act"), `expected "key = value"`},
	{"model: allow-override effect", modelFile, replaceLine("e = ", "e = some(where (p.eft == allow))"), "e must be"},
	{"model: matcher without role check first", modelFile, replaceLine("m = ", "m = keyMatch2(r.obj, p.obj) && g(r.sub, p.sub)"), `m must start with "g(r.sub, p.sub) &&"`},
	{"model: top-level or", modelFile, replaceLine("m = ", "m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) || r.act == \"GET\""), "top-level ||"},
	{"model: top-level ternary", modelFile, replaceLine("m = ", `m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) ? true : r.act == "GET"`), "top-level ?"},
	{"model: matcher does not parse", modelFile, replaceLine("m = ", "m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) &&"), "the matcher does not parse"},
	{"model: unknown function", modelFile, replaceLine("m = ", "m = g(r.sub, p.sub) && keyMatch9(r.obj, p.obj)"), "keyMatch9"},
	{"model: extra request field", modelFile, replaceLine("r = ", "r = sub, obj, act, env"), `r must be "sub, obj, act"`},
	{"model: empty", modelFile, whole(""), `missing definition "r"`},
	{"tests: known answer fails", testsFile, appendLine("allow, bob@example.com role:editor, POST, " + resetPath), "want allow, got deny by rule"},
	{"tests: wrong permission", testsFile, appendLine("deny, carol@example.com role:viewer, POST, " + resetPath + ", SUPERUSER"), `want permission "SUPERUSER"`},
	{"tests: role without prefix", testsFile, appendLine("allow, alice@example.com admin, POST, " + resetPath), "is not a role"},
}

func TestBadEditRejectedOnReload(t *testing.T) {
	for _, tt := range badEdits {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			e := f.open(t)
			rules, gen, hash := e.Rules(), e.Generation(), e.Hash()

			path := tt.file(f)
			content, line := tt.edit(readShipped(t, filepath.Base(path)))
			writeFile(t, path, content)
			err := e.Reload()
			checkFileError(t, err, path, line, tt.reason)

			if got := e.Rules(); got != rules {
				t.Errorf("Rules after refused reload: got %d, want %d", got, rules)
			}
			if got := e.Generation(); got != gen {
				t.Errorf("Generation after refused reload: got %d, want %d", got, gen)
			}
			if got := e.Hash(); got != hash {
				t.Errorf("Hash after refused reload: got %q, want %q", got, hash)
			}
			if !allows(t, e, "alice@example.com", []string{"admin"}, "POST", resetPath) {
				t.Errorf("admin reset-password: got deny, want allow from the old policy")
			}
			if allows(t, e, "bob@example.com", []string{"editor"}, "POST", resetPath) {
				t.Errorf("editor reset-password: got allow, want deny from the old policy")
			}
			if _, err := e.Check(); err == nil {
				t.Errorf("Check on the bad files: got no error, want one")
			}
		})
	}
}

func TestBadFilesRefusedAtOpen(t *testing.T) {
	for _, tt := range badEdits {
		if strings.Contains(tt.reason, "truncated") {
			continue // needs a running policy to compare with
		}
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			path := tt.file(f)
			content, line := tt.edit(readShipped(t, filepath.Base(path)))
			writeFile(t, path, content)
			e, err := Open(f.options())
			if e != nil {
				t.Errorf("Open: got an engine, want nil")
			}
			checkFileError(t, err, path, line, tt.reason)
			_, err = Check(f.options())
			checkFileError(t, err, path, line, tt.reason)
		})
	}
}

func checkFileError(t *testing.T, err error, path string, line int, reason string) {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("got error %v, want a *FileError", err)
	}
	if fe.Path != path || fe.Line != line || !strings.Contains(fe.Reason, reason) {
		t.Errorf("got %s:%d: %s; want %s:%d: ...%s...", fe.Path, fe.Line, fe.Reason, path, line, reason)
	}
	want := fmt.Sprintf("%s:%d: ", path, line)
	if line == 0 {
		want = path + ": "
	}
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q does not start with %q", err.Error(), want)
	}
}

func TestRefusedReloadIsLogged(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	opts := f.options()
	opts.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	content, line := appendLine("p, role:admin, /api/admin/*, ^(GET$, allow")(readShipped(t, "policy.csv"))
	writeFile(t, f.rules, content)
	if err := e.Reload(); err == nil {
		t.Fatal("Reload: got no error, want one")
	}
	var entry struct {
		Level  string
		File   string
		Line   int
		Reason string
	}
	last := bytes.TrimSpace(buf.Bytes())
	last = last[bytes.LastIndexByte(last, '\n')+1:]
	if err := json.Unmarshal(last, &entry); err != nil {
		t.Fatalf("last log line %q: %v", last, err)
	}
	if entry.Level != "ERROR" || entry.File != f.rules || entry.Line != line || !strings.Contains(entry.Reason, "regexMatch") {
		t.Errorf("log entry: got %+v, want ERROR naming %s line %d and regexMatch", entry, f.rules, line)
	}
}

func TestRuleDropLimit(t *testing.T) {
	shipped := readShipped(t, "policy.csv")
	var kept []string
	for _, l := range strings.Split(shipped, "\n") {
		// Just over half the rules: the viewer's, and the editor's denials
		// of latch's own user routes.
		if !strings.HasPrefix(l, "p, role:viewer") && !strings.HasPrefix(l, "p, role:editor, /.latch/") {
			kept = append(kept, l)
		}
	}
	smaller := strings.Join(kept, "\n")
	tests := []struct {
		name    string
		maxDrop float64
		wantErr bool
	}{
		{"default refuses", 0, true},
		{"0.6 accepts", 0.6, false},
		{"1 accepts anything", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			writeFile(t, f.tests, "")
			opts := f.options()
			opts.MaxRuleDrop = tt.maxDrop
			e, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			before := e.Rules()
			writeFile(t, f.rules, smaller)
			err = e.Reload()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Reload: got error %v, want error %v", err, tt.wantErr)
			}
			drop := float64(before-e.Rules()) / float64(before)
			if !tt.wantErr && (drop <= 0.5 || drop > opts.MaxRuleDrop) {
				t.Errorf("test policy drops %.2f of the rules; want between 0.5 and %v", drop, opts.MaxRuleDrop)
			}
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	f := newFixture(t)
	for _, o := range []Options{
		{RulesPath: f.rules},
		{ModelPath: f.model},
		{ModelPath: f.model, RulesPath: f.rules, MaxRuleDrop: 1.5},
		{ModelPath: f.model, RulesPath: f.rules, MaxRuleDrop: -0.1},
	} {
		if _, err := Open(o); err == nil {
			t.Errorf("Open(%+v): got no error, want one", o)
		}
	}
	_, err := Open(Options{ModelPath: f.model, RulesPath: filepath.Join(f.dir, "missing.csv")})
	checkFileError(t, err, filepath.Join(f.dir, "missing.csv"), 0, "cannot read")
}
