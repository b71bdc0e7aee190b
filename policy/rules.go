package policy

import (
	"encoding/csv"
	"strings"
)

// RolePrefix marks a subject as a role. Users are written as they are
// (alice@example.com); roles always as role:<name>, so a user named "admin"
// and the role "role:admin" can never be confused.
const RolePrefix = "role:"

// Columns of a p rule, in the order the model's p definition requires.
const (
	colSub = iota
	colObj
	colAct
	colEft
	colPerm
)

// rule is one line of the policy file.
type rule struct {
	line   int
	ptype  string   // "p" or "g"
	fields []string // the columns after the type, trimmed
}

// parseRules reads the policy CSV line by line (Casbin's own format: a rule
// type, then comma-separated fields; # starts a comment line) so that every
// problem can be reported with its line. The fields are substrings of one
// copy of data, and their slices are cut from one array: a large policy
// costs a few allocations, not several per line.
func parseRules(path string, data []byte, spec *modelSpec) ([]rule, error) {
	width := 4
	if spec.hasPerm {
		width = 5
	}
	text := string(data)
	rules := make([]rule, 0, strings.Count(text, "\n")+1)
	// Every line's fields after the type, and a spare for a missing perm
	// column.
	arena := make([]string, 0, strings.Count(text, ",")+cap(rules))
	for i, rest := 0, text; ; i++ {
		yield(i)
		raw, after, more := strings.Cut(rest, "\n")
		rest = after
		lineNo := i + 1
		line := strings.TrimSpace(raw)
		if line != "" && line[0] != '#' {
			ptype, fields, err := splitCSV(line, &arena, width)
			if err != nil {
				return nil, fileErr(path, lineNo, "not a CSV line: %v", err)
			}
			ru := rule{line: lineNo, ptype: ptype, fields: fields}
			switch ru.ptype {
			case "p":
				if err := checkPolicyRule(path, &ru, width, spec.hasPerm); err != nil {
					return nil, err
				}
			case "g":
				if err := checkRoleRule(path, ru); err != nil {
					return nil, err
				}
			default:
				return nil, fileErr(path, lineNo, "unknown rule type %q; use p (permission) or g (role inheritance)", ru.ptype)
			}
			rules = append(rules, ru)
		}
		if !more {
			return rules, nil
		}
	}
}

// splitCSV splits one line into its first field (the rule type) and the
// rest, trimmed, as encoding/csv does. Lines without quotes (nearly all) are
// split directly into *arena, with room for width fields when a p rule has
// fewer: a csv.Reader per line allocates a 4 KiB buffer, which is most of
// loading a large policy.
func splitCSV(line string, arena *[]string, width int) (string, []string, error) {
	if strings.IndexByte(line, '"') >= 0 || strings.IndexByte(line, '\r') >= 0 {
		r := csv.NewReader(strings.NewReader(line))
		r.TrimLeadingSpace = true
		fields, err := r.Read()
		if err != nil {
			return "", nil, err
		}
		for j := range fields {
			fields[j] = strings.TrimSpace(fields[j])
		}
		return fields[0], fields[1:], nil
	}
	typ, line, ok := strings.Cut(line, ",")
	typ = strings.TrimSpace(typ)
	if !ok {
		return typ, nil, nil
	}
	n := strings.Count(line, ",") + 1
	room := n
	if typ == "p" {
		room = max(n, width)
	}
	a := *arena
	if cap(a)-len(a) < room {
		a = make([]string, 0, max(room, 1024))
	}
	off := len(a)
	a = a[:off+room]
	fields := a[off : off+n : off+room]
	*arena = a
	for j := range n - 1 {
		var f string
		f, line, _ = strings.Cut(line, ",")
		fields[j] = strings.TrimSpace(f)
	}
	fields[n-1] = strings.TrimSpace(line)
	return typ, fields, nil
}

func checkPolicyRule(path string, ru *rule, width int, hasPerm bool) error {
	n := len(ru.fields)
	switch {
	case n == width-1 && hasPerm: // the permission name is optional
		ru.fields = append(ru.fields, "")
	case n != width:
		want := "sub, obj, act, eft"
		if hasPerm {
			want += "[, perm]"
		}
		return fileErr(path, ru.line, "p rule has %d fields, want p, %s", n, want)
	}
	for i, name := range []string{"subject", "object", "action"} {
		if ru.fields[i] == "" {
			return fileErr(path, ru.line, "p rule has an empty %s", name)
		}
	}
	if ru.fields[colSub] == RolePrefix {
		return fileErr(path, ru.line, "subject %q has no role name", ru.fields[colSub])
	}
	if eft := ru.fields[colEft]; eft != "allow" && eft != "deny" {
		return fileErr(path, ru.line, "effect must be allow or deny, got %q", eft)
	}
	return nil
}

func checkRoleRule(path string, ru rule) error {
	if len(ru.fields) != 2 {
		return fileErr(path, ru.line, "g rule has %d fields, want g, <user or role:name>, role:<name>", len(ru.fields))
	}
	member, role := ru.fields[0], ru.fields[1]
	if member == "" || member == RolePrefix {
		return fileErr(path, ru.line, "g rule has an empty member")
	}
	if !strings.HasPrefix(role, RolePrefix) || role == RolePrefix {
		return fileErr(path, ru.line, "g rule grants %q, which is not a role; write roles as role:<name>", role)
	}
	if member == role {
		return fileErr(path, ru.line, "g rule makes %q a member of itself", role)
	}
	return nil
}
