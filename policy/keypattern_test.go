package policy

import (
	"regexp"
	"testing"
)

var keyPatternSeeds = []string{
	"/api/admin/projects", "/api/admin/projects/*", "/api/admin/projects/:id", "/api/admin/:a/x/:b",
	"/api/admin/:a/x/:b/*", "/a/t:id", "/a/:id/", "/a/:", "/a/:/b", ":id", "/*", "", "/", "//", "/a b/c",
	"/api/admin/res1*", "/api/admin/res.json", "/a/*/b", "*", "/a/:b*", "/api/(x|y)/:id", "(?i)/API/*",
	"/a/%2F/:id", "/é/:id", "/a/{x}", "/a/$", "/a/^", "/a/\\d", "/a/[x]", "/a/x+", "/a/x?", "/a\n/b",
	"/api/admin/.*", "/:a:b/c", "/a/::/*",
}

var keyPatternKeys = []string{
	"", "/", "//", "/api/admin/projects", "/api/admin/projects/", "/api/admin/projects/7", "/api/admin/projects/7/x",
	"/api/admin/projects/7/x\n", "/api/admin/projects/\n", "/api/admin/p/x/q", "/api/admin/p/x/q/r", "/a/t", "/a/t1",
	"/a/t1/", "/a/x/", "/a/:", "/a/:/b", "/a/x/b", "x", ":id", "/a b/c", "/a/%2F/1", "/é/1", "/\xff", "/a/\xff/b",
	"/a/x\n", "/a/\n", "/api/admin/x/y/z", "/a/{x}", "/a//", "/a/b/c/d",
}

// TestKeyPatternMatchesRegexp: a keyPattern answers as the regexp of the
// same expression, and takes only the shapes it claims.
func TestKeyPatternMatchesRegexp(t *testing.T) {
	took := 0
	for _, p := range keyPatternSeeds {
		for _, k := range keyPatternKeys {
			if checkKeyPattern(t, p, k) {
				took++
			}
		}
	}
	if took == 0 {
		t.Error("no seed pattern was taken by parseKeyPattern")
	}
	for _, tt := range []struct {
		pattern string
		want    bool
	}{
		{"/api/admin/projects/:id/*", true}, {"/a/t:id", true}, {"/a/:id/", true}, {"", true},
		{"/api/admin/res1*", false}, {"/api/admin/res.json", false}, {"/a/*/b", false}, {"/é/:id", false}, {"(?i)/API/*", false},
	} {
		if _, ok := parseKeyPattern(keyMatch2Expr(tt.pattern)); ok != tt.want {
			t.Errorf("parseKeyPattern(keyMatch2Expr(%q)): ok %v, want %v", tt.pattern, ok, tt.want)
		}
	}
}

// checkKeyPattern compares keyPattern with the regexp on one pattern and
// key, and reports whether parseKeyPattern took the pattern.
func checkKeyPattern(t *testing.T, pattern, key string) bool {
	t.Helper()
	e := keyMatch2Expr(pattern)
	kp, ok := parseKeyPattern(e)
	if !ok {
		return false
	}
	re, err := regexp.Compile(e)
	if err != nil {
		t.Fatalf("parseKeyPattern took %q (from %q), which does not compile: %v", e, pattern, err)
	}
	if got, want := kp.match(key), re.MatchString(key); got != want {
		t.Errorf("keyMatch2 pattern %q (%q), key %q: got %v, regexp %v", pattern, e, key, got, want)
	}
	if got, want := kp.lits[0], literalPrefix(e); got != want {
		t.Errorf("keyMatch2 pattern %q (%q): prefix %q, literalPrefix %q", pattern, e, got, want)
	}
	return true
}

func FuzzKeyPattern(f *testing.F) {
	for i, p := range keyPatternSeeds {
		f.Add(p, keyPatternKeys[i%len(keyPatternKeys)])
	}
	f.Fuzz(func(t *testing.T, pattern, key string) {
		checkKeyPattern(t, pattern, key)
	})
}
