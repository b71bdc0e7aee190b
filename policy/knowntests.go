package policy

import (
	"fmt"
	"strings"
)

// knownAnswer is one line of the tests file:
//
//	allow, alice@example.com role:admin, POST, /api/admin/user-admin/reset-password
//	deny,  bob@example.com role:editor, POST, /api/admin/user-admin/reset-password, ADMIN
//
// The second column is the user, then any roles, separated by spaces and
// written role:<name>. The optional fifth column, only on deny lines, is the
// permission name the denial must report.
type knownAnswer struct {
	line   int
	allow  bool
	user   string
	roles  []string // bare names, as callers pass them to Decide
	method string
	path   string
	perm   string // "" = not checked
}

func parseKnownAnswers(path string, data []byte) ([]knownAnswer, error) {
	var out []knownAnswer
	for i, raw := range strings.Split(string(data), "\n") {
		lineNo := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		cols := tokens(line)
		if len(cols) != 4 && len(cols) != 5 {
			return nil, fileErr(path, lineNo, "want \"allow|deny, user [role:name ...], METHOD, /path[, PERMISSION]\", got %d columns", len(cols))
		}
		ka := knownAnswer{line: lineNo, method: cols[2], path: cols[3]}
		switch cols[0] {
		case "allow":
			ka.allow = true
		case "deny":
		default:
			return nil, fileErr(path, lineNo, "first column must be allow or deny, got %q", cols[0])
		}
		subjects := strings.Fields(cols[1])
		if len(subjects) == 0 || strings.HasPrefix(subjects[0], RolePrefix) {
			return nil, fileErr(path, lineNo, "second column must start with the user, then roles as role:<name>")
		}
		ka.user = subjects[0]
		for _, s := range subjects[1:] {
			name, ok := strings.CutPrefix(s, RolePrefix)
			if !ok || name == "" {
				return nil, fileErr(path, lineNo, "%q after the user is not a role; write roles as role:<name>", s)
			}
			ka.roles = append(ka.roles, name)
		}
		if ka.method == "" || ka.path == "" {
			return nil, fileErr(path, lineNo, "method and path must not be empty")
		}
		if len(cols) == 5 {
			if ka.allow {
				return nil, fileErr(path, lineNo, "a permission name can only be checked on a deny line")
			}
			ka.perm = cols[4]
		}
		out = append(out, ka)
	}
	return out, nil
}

// runKnownAnswers checks every known answer against a candidate state and
// returns the first that fails, naming its line.
func runKnownAnswers(path string, st *state, answers []knownAnswer) error {
	for _, ka := range answers {
		d, err := st.decide(ka.user, ka.roles, ka.method, ka.path)
		if err != nil {
			return fileErr(path, ka.line, "deciding failed: %v", err)
		}
		if d.Allow != ka.allow {
			return fileErr(path, ka.line, "want %s, got %s", verdict(ka.allow), describe(d))
		}
		if ka.perm != "" && d.Permission != ka.perm {
			return fileErr(path, ka.line, "want permission %q on the denial, got %q", ka.perm, d.Permission)
		}
	}
	return nil
}

func verdict(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

func describe(d Decision) string {
	if d.Rule == nil {
		return verdict(d.Allow) + " (no rule matched)"
	}
	return fmt.Sprintf("%s by rule %q", verdict(d.Allow), strings.Join(d.Rule, ", "))
}
