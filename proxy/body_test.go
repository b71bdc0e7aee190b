package proxy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/latch-dev/latch"
)

var resetFields = []field{{name: "id", required: true, email: true}}

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		body, want string // want: the id, or "!" + a substring of the error message
	}{
		{`{"id":"alice@example.com"}`, "alice@example.com"},
		{` {"id" : "a.b+c@example.co.uk"} `, "a.b+c@example.co.uk"},
		{``, "!empty"},
		{`   `, "!empty"},
		{`{"id":`, "!not valid JSON"},
		{`{"id":"a@b.c"`, "!not valid JSON"},
		{`[]`, "!should be object. You sent an array."},
		{`"id"`, "!should be object. You sent a string."},
		{`null`, "!should be object. You sent null."},
		{`42`, "!should be object. You sent a number."},
		{`{}`, "!required property 'id'"},
		{`{"id":123}`, "!should be string. You sent 123."},
		{`{"id":null}`, "!should be string. You sent null."},
		{`{"id":["a@b.c"]}`, "!should be string"},
		{`{"id":""}`, "!must not be empty"},
		{`{"id":"alice"}`, "!must be an email address"},
		{`{"id":"Alice <alice@example.com>"}`, "!must be an email address"},
		{`{"id":"alice@example.com","x":1}`, `!additional property "x"`},
		// The differential's findings: a BOM is allowed, and a long id is
		// refused for its length, not as "not an email address".
		{"\xEF\xBB\xBF" + `{"id":"alice@example.com"}`, "alice@example.com"},
		{"\xEF\xBB\xBF\xEF\xBB\xBF" + `{"id":"alice@example.com"}`, "!not valid JSON"},
		{`{"id":"` + strings.Repeat("a", 296) + `@b.c"}`, "!The .id property is too long (300 bytes); an email address has at most 254."},
		{`{"ID":"alice@example.com"}`, `!additional property "ID"`},
		{`{"id":"a@b.c","id":"d@e.f"}`, "!more than once"},
		{`{"id":"a@b.c"}{}`, "!more than one JSON value"},
		{`{"id":"a@b.c"} x`, "!more than one JSON value"},
	}
	for _, tt := range tests {
		b, e := decodeObject([]byte(tt.body), resetFields)
		if msg, isErr := strings.CutPrefix(tt.want, "!"); isErr {
			if e == nil {
				t.Errorf("decodeObject(%q): got %v, want an error holding %q", tt.body, b.strs, msg)
				continue
			}
			if e.Status != 400 || e.Name != NameValidation || !strings.Contains(e.Message, msg) ||
				!strings.HasPrefix(e.Message, schemaPrefix) || len(e.Details) != 1 {
				t.Errorf("decodeObject(%q): got %d %s %q %v, want 400 ValidationError holding %q", tt.body, e.Status, e.Name, e.Message, e.Details, msg)
			}
			continue
		}
		if e != nil {
			t.Errorf("decodeObject(%q): got error %q, want id %q", tt.body, e.Message, tt.want)
		} else if b.strs["id"] != tt.want {
			t.Errorf("decodeObject(%q): got id %q, want %q", tt.body, b.strs["id"], tt.want)
		}
	}
}

func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{"id":"alice@example.com"}`, `{"id":1}`, `[]`, `{"id":"a@b.c","id":"x"}`, `{"id":"\u0000@x.y"}`,
		`{"id":"a@b.c","roles":["x"]}`, `{`, `{"roles":[1,2]}`, `{"id":"` + strings.Repeat("a", 300) + `@b.c"}`} {
		f.Add([]byte(s))
	}
	fields := []field{{name: "id", required: true, email: true}, {name: "roles", kind: "strings"}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, e := decodeObject(raw, fields)
		if e != nil {
			// Every refusal is a 400 in the schema shape, never echoing
			// more than a bounded part of the input.
			if e.Status != 400 || e.Name != NameValidation || !strings.HasPrefix(e.Message, schemaPrefix) {
				t.Fatalf("decodeObject(%q): refusal %d %s %q", raw, e.Status, e.Name, e.Message)
			}
			if len(e.Message) > len(schemaPrefix)+300 {
				t.Fatalf("decodeObject(%q): message of %d bytes", raw, len(e.Message))
			}
			return
		}
		// What is accepted is a JSON object holding a valid email id and
		// nothing but the declared fields, agreeing with encoding/json.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("decodeObject(%q) accepted what encoding/json refuses: %v", raw, err)
		}
		for k := range m {
			if k != "id" && k != "roles" {
				t.Fatalf("decodeObject(%q) accepted extra property %q", raw, k)
			}
		}
		var id string
		if err := json.Unmarshal(m["id"], &id); err != nil || id != b.strs["id"] || !validEmail(id) || !utf8.ValidString(id) {
			t.Fatalf("decodeObject(%q): id %q, encoding/json %q (%v)", raw, b.strs["id"], id, err)
		}
	})
}

// TestPasswordError: the rules themselves are latch.PasswordProblems'
// (tested in the root package); the API names the empty password apart and
// sends every problem as a detail.
func TestPasswordError(t *testing.T) {
	t.Parallel()
	if e := passwordError("Str0ng-Passw0rd"); e != nil {
		t.Errorf("passwordError of a good password = %+v, want nil", e)
	}
	if e := passwordError(""); e == nil || e.Name != NamePasswordUndef || e.Message != "Password cannot be empty or undefined" {
		t.Errorf("passwordError(\"\") = %+v", e)
	}
	e := passwordError("aaa")
	if e == nil || e.Name != NameOwasp || e.Message != latch.PasswordProblems("aaa")[0] || len(e.Details) != 5 {
		t.Errorf("passwordError(\"aaa\") = %+v, want OwaspValidationError with 5 details", e)
	}
}

func TestLoginGuard(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	g := newLoginGuard(LoginLimits{PerAccount: 3, PerAddress: 5}, func() time.Time { return now })
	for i := 1; i <= 3; i++ {
		if ok, _ := g.allow("a@x.y", "10.0.0.1"); !ok {
			t.Fatalf("attempt %d for one account: refused, want allowed", i)
		}
	}
	ok, retry := g.allow("a@x.y", "10.0.0.1")
	if ok {
		t.Fatal("4th attempt for one account: allowed, want refused")
	}
	if retry != 50*time.Second {
		t.Errorf("retry: got %v, want 50s (the rest of the minute)", retry)
	}
	// Other accounts from the same address run into the address limit.
	if ok, _ := g.allow("b@x.y", "10.0.0.1"); !ok {
		t.Error("5th attempt from one address: refused, want allowed")
	}
	if ok, _ := g.allow("b@x.y", "10.0.0.1"); ok {
		t.Error("6th attempt from one address: allowed, want refused")
	}
	if ok, _ := g.allow("c@x.y", "10.0.0.2"); !ok {
		t.Error("another account from another address: refused")
	}
	now = now.Add(time.Minute)
	if ok, _ := g.allow("a@x.y", "10.0.0.1"); !ok {
		t.Error("next minute: refused, want allowed again")
	}
	// The counters stay bounded.
	g.maxKeys = 100
	for i := range 1000 {
		g.allow(strings.Repeat("x", i%50)+"@x.y", "10.1.0.1")
	}
	if len(g.counts) > 100 {
		t.Errorf("counters: %d keys, want at most 100", len(g.counts))
	}
}
