package latch_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/latch-dev/latch"
)

// Emails fold case in ASCII only: a Unicode letter that folds to an ASCII
// one (U+0130 'İ' lower-cases to 'i', U+212A KELVIN SIGN to 'k') names
// another user, as it does for the policy and the logs.
func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"Admin@Example.COM", "admin@example.com"},
		{"adm\u0130n@example.com", "adm\u0130n@example.com"},
		{"\u212Aey@example.com", "\u212Aey@example.com"},
		{"a@b", "a@b"},
	} {
		got, err := latch.NormalizeEmail(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "ada", "@example.com", "ada@", "a@b@c", "ad a@example.com",
		"ad\u00a0a@example.com", "ad\x01a@example.com", "ad\ufffda@example.com",
		strings.Repeat("a", latch.MaxEmailLen-11) + "@example.com"} {
		if got, err := latch.NormalizeEmail(in); !errors.Is(err, latch.ErrInvalidEmail) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want ErrInvalidEmail", in, got, err)
		}
	}
	ok := strings.Repeat("a", latch.MaxEmailLen-12) + "@example.com"
	if _, err := latch.NormalizeEmail(ok); err != nil {
		t.Errorf("NormalizeEmail of %d bytes: %v, want it accepted", len(ok), err)
	}
}

func TestPasswordProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pw   string
		want []string // substrings of the problems, in order; nil = passes
	}{
		{"Str0ng-Passw0rd", nil},
		{"Ab1!efghij", nil},
		{"Ab1!efghi", []string{"at least 10"}},
		{"Str0ng-Paaassword", []string{"three or more repeated"}},
		{"str0ng-passw0rd", []string{"uppercase"}},
		{"STR0NG-PASSW0RD", []string{"lowercase"}},
		{"Strong-Password", []string{"number"}},
		{"Str0ngPassw0rd", []string{"special"}},
		{"Str0ng Passw0rd", []string{"special"}},
		{"aaa", []string{"at least 10", "three or more", "uppercase", "number", "special"}},
		{"Ab1!" + strings.Repeat("xy", 62), []string{"fewer than 128"}},
		{"Ab1!" + strings.Repeat("xy", 61) + "z", nil},
		{"Ünïcödé-Pä55wörd", nil},
	}
	for _, tt := range tests {
		got := latch.PasswordProblems(tt.pw)
		if len(got) != len(tt.want) {
			t.Errorf("PasswordProblems(%q) = %q, want %d problems %q", tt.pw, got, len(tt.want), tt.want)
			continue
		}
		for i := range got {
			if !strings.Contains(got[i], tt.want[i]) {
				t.Errorf("PasswordProblems(%q)[%d] = %q, want it to hold %q", tt.pw, i, got[i], tt.want[i])
			}
		}
	}
}

// A session key is exactly 64 lower-case hex digits, the form proxy's
// hex.EncodeToString of a SHA-256 makes; anything else, upper-case hex
// included, names no session.
func TestValidSessionKey(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("0123456789abcdef", 4)
	if !latch.ValidSessionKey(key) {
		t.Errorf("ValidSessionKey(%q) = false, want true", key)
	}
	for name, k := range map[string]string{
		"empty":          "",
		"63 digits":      key[:63],
		"65 digits":      key + "0",
		"upper-case hex": strings.ToUpper(key),
		"one upper":      key[:63] + "F",
		"non-hex":        key[:63] + "g",
		"slash":          key[:32] + "/" + key[33:],
		"multi-byte":     key[:62] + "\u00e9",
	} {
		if latch.ValidSessionKey(k) {
			t.Errorf("ValidSessionKey(%s: %q) = true, want false", name, k)
		}
	}
}
