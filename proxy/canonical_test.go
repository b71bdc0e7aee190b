package proxy

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "/", want: "/"},
		{in: "/api/admin/features", want: "/api/admin/features"},
		{in: "/api/admin/", want: "/api/admin/"},
		{in: "//api///admin//x", want: "/api/admin/x"},
		{in: "/public/../api/admin/x", want: "/api/admin/x"},
		{in: "/public/./../api/admin", want: "/api/admin"},
		{in: "/a/b/..", want: "/a/"},
		{in: "/a/b/.", want: "/a/b/"},
		{in: "/a/%2e%2e/api/admin", want: "/api/admin"},
		{in: "/a/%2E%2e/api/admin", want: "/api/admin"},
		{in: "/%61pi/%41dmin", want: "/api/Admin"},
		{in: "/a%7eb", want: "/a~b"},
		{in: "/a%20b", want: "/a%20b"},
		{in: "/a%c3%a9", want: "/a%C3%A9"},
		{in: "/API/Admin/Users", want: "/API/Admin/Users"},
		{in: "/..", bad: true},
		{in: "/a/../../b", bad: true},
		{in: "/%2e%2e/x", bad: true},
		{in: "/api%2Fadmin", bad: true},
		{in: "/api%2fadmin", bad: true},
		{in: "/api%5Cadmin", bad: true},
		{in: "/api\\admin", bad: true},
		{in: "/api%00admin", bad: true},
		{in: "/api%0aadmin", bad: true},
		{in: "/api;x=1/admin", bad: true},
		{in: "/api/admin;jsessionid=1", bad: true},
		{in: "/api/admin%3b", bad: true},
		{in: "/api/%252e%252e/admin", bad: true},
		{in: "/a%zz", bad: true},
		{in: "/a%4", bad: true},
		{in: "api/admin", bad: true},
		{in: "*", bad: true},
		{in: "", bad: true},
		{in: "/a\x7fb", bad: true},
		{in: "/a\xffb", bad: true},
	}
	for _, tt := range tests {
		got, err := Canonical(tt.in)
		switch {
		case tt.bad && err == nil:
			t.Errorf("Canonical(%q) = %q, want an error", tt.in, got)
		case !tt.bad && err != nil:
			t.Errorf("Canonical(%q): got error %v, want %q", tt.in, err, tt.want)
		case !tt.bad && got != tt.want:
			t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
		}
		var pe *PathError
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("Canonical(%q): error %T is not a *PathError", tt.in, err)
		}
	}
}

func TestProtected(t *testing.T) {
	prefixes := []string{"/api/admin/"}
	tests := []struct {
		path string
		want bool
	}{
		{"/api/admin/features", true},
		{"/API/Admin/features", true},
		{"/api/admin", true},
		{"/api/ADMIN", true},
		{"/api/administrator", false},
		{"/api/client/features", false},
		{"/", false},
	}
	for _, tt := range tests {
		if got := Protected(tt.path, prefixes); got != tt.want {
			t.Errorf("Protected(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// readings are the ways a backend might read a raw path: each fully
// decoded, lower-cased, with slashes merged, dots resolved, and ;params
// dropped, in combinations.
func readings(raw string) []string {
	var out []string
	dec := raw
	for i := 0; i < 3; i++ { // decode up to three times (double encoding)
		d, err := url.PathUnescape(dec)
		if err != nil {
			break
		}
		dec = d
		out = append(out, dec)
	}
	out = append(out, raw)
	var more []string
	for _, r := range out {
		r = strings.ReplaceAll(r, "\\", "/")
		noParams := r
		if i := strings.IndexByte(r, ';'); i >= 0 {
			noParams = r[:i]
		}
		for _, v := range []string{r, noParams} {
			cleaned := path.Clean("/" + v)
			more = append(more, v, cleaned, strings.ToLower(v), strings.ToLower(cleaned))
		}
	}
	return more
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"/", "/api/admin/x", "/public/../api/admin", "/%2e%2e/api/admin", "//api//admin",
		"/API/ADMIN", "/api/admin;x", "/a/%2f/b", "/a%252e%252e/", "/api/%41dmin/", "/x/..%2fapi/admin", "/a\\..\\api\\admin",
		"/ap%C4%B0/admin/x", "/ap%C4%B1/admin/", "/api/%E2%84%AAdmin", "/%EF%BD%81pi/admin/"} {
		f.Add(s)
	}
	prefixes := []string{"/api/admin/"}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Canonical(in)
		// The no-copy fast path agrees with the full one.
		slow, slowErr := canonicalize(in)
		if out != slow || (err == nil) != (slowErr == nil) {
			t.Fatalf("Canonical(%q) = %q, %v; canonicalize gives %q, %v", in, out, err, slow, slowErr)
		}
		if err != nil {
			return
		}
		// The output is clean: canonical again is itself, no dot segments,
		// no empty segments, no refused bytes.
		again, err := Canonical(out)
		if err != nil || again != out {
			t.Fatalf("Canonical(%q) = %q, which is not a fixed point (%q, %v)", in, out, again, err)
		}
		if strings.Contains(out, "//") || strings.Contains(out, "/./") || strings.Contains(out, "/../") ||
			strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") || strings.ContainsAny(out, "\\;\x00") {
			t.Fatalf("Canonical(%q) = %q is not clean", in, out)
		}
		// Protection is never lost under any reading of the input,
		// Unicode case folding included (see Resolve).
		tg, err := Resolve(in, prefixes)
		if err != nil || tg.Escaped != out {
			t.Fatalf("Resolve(%q) = %q, %v; Canonical gives %q", in, tg.Escaped, err, out)
		}
		// Every reading but the first is lower-case already (handoffMode
		// matches them as they are).
		for _, rd := range tg.Readings[1:] {
			if lowerASCII(rd) != rd {
				t.Fatalf("Resolve(%q): reading %q is not lower-case", in, rd)
			}
		}
		if tg.Protected {
			return
		}
		for _, r := range readings(in) {
			if Protected(r, prefixes) {
				t.Fatalf("Canonical(%q) = %q is unprotected, but the reading %q is protected", in, out, r)
			}
		}
	})
}
