package authn

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExposed: a key is exposed when others may read it, when its group
// may write it, or when a group the process is not in may read it; a 0440
// file of the process's own group (a Kubernetes Secret with fsGroup) is not.
func TestExposed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	check := func(name string, mode os.FileMode, gid int, want bool) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("k"), 0o600); err != nil {
			t.Fatal(err)
		}
		if gid >= 0 {
			if err := os.Chown(p, -1, gid); err != nil {
				t.Skipf("cannot change the file's group (%v): run as root to test foreign groups", err)
			}
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := exposed(fi); got != want {
			t.Errorf("%s (mode %v, gid %d): exposed = %v, want %v", name, mode, gid, got, want)
		}
	}
	check("private", 0o600, -1, false)
	check("world", 0o644, -1, true)
	check("own-group-read", 0o440, os.Getgid(), false)
	check("own-group-write", 0o460, os.Getgid(), true)
	check("foreign-group-read", 0o440, 54321, true)
}
