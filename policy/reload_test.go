package policy

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// watching starts e.Watch and stops it when the test ends.
func watching(t *testing.T, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := e.Watch(ctx); err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func TestReloadPaths(t *testing.T) {
	tests := []struct {
		name  string
		watch bool
		edit  func(t *testing.T, f fixture, content string)
	}{
		{"in-place write", true, func(t *testing.T, f fixture, content string) {
			fh, err := os.OpenFile(f.rules, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fh.WriteString(content); err != nil {
				t.Fatal(err)
			}
			if err := fh.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"write temp then rename", true, func(t *testing.T, f fixture, content string) {
			tmp := filepath.Join(f.dir, ".policy.csv.swp")
			writeFile(t, tmp, content)
			if err := os.Rename(tmp, f.rules); err != nil {
				t.Fatal(err)
			}
		}},
		{"SIGHUP: Reload called directly", false, func(t *testing.T, f fixture, content string) {
			writeFile(t, f.rules, content)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			e := f.open(t)
			if auditorAllowed(t, e) {
				t.Fatalf("auditor: got allow before the edit, want deny")
			}
			if tt.watch {
				watching(t, e)
			}
			shipped := readShipped(t, "policy.csv")
			// Writing the same bytes must not count as a change.
			tt.edit(t, f, shipped)
			tt.edit(t, f, shipped+auditorRule)
			if tt.watch {
				waitFor(t, "the watcher to load the edit", func() bool { return e.Generation() > 1 })
			} else if err := e.Reload(); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			if !auditorAllowed(t, e) {
				t.Errorf("auditor: got deny after the edit, want allow")
			}
			if got := e.Generation(); got != 2 {
				t.Errorf("Generation: got %d, want 2 (one reload for one change)", got)
			}
			if !allows(t, e, "alice@example.com", []string{"admin"}, "POST", resetPath) {
				t.Errorf("admin reset-password: got deny, want allow")
			}
		})
	}
}

// TestReloadKubernetesConfigMap mimics the kubelet: the files are symlinks
// through ..data, which is itself a symlink to a timestamped directory, and
// an update writes a new directory and renames a new ..data over the old.
func TestReloadKubernetesConfigMap(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"model.conf":   readShipped(t, "model.conf"),
		"policy.csv":   readShipped(t, "policy.csv"),
		"policy.tests": readShipped(t, "policy.tests"),
	}
	publish := func(version string) {
		t.Helper()
		vdir := filepath.Join(dir, version)
		if err := os.Mkdir(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			writeFile(t, filepath.Join(vdir, name), content)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(version, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	publish("..2026_01_01_00_00_00.000000001")
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	e, err := Open(Options{
		ModelPath:    filepath.Join(dir, "model.conf"),
		RulesPath:    filepath.Join(dir, "policy.csv"),
		TestsPath:    filepath.Join(dir, "policy.tests"),
		PollInterval: -1,
		Settle:       testSettle,
	})
	if err != nil {
		t.Fatal(err)
	}
	watching(t, e)

	files["policy.csv"] += auditorRule
	publish("..2026_01_01_00_01_00.000000002")
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01_01_00_00_00.000000001")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watcher to load the new ConfigMap", func() bool { return e.Generation() > 1 })
	if !auditorAllowed(t, e) {
		t.Errorf("auditor: got deny after the swap, want allow")
	}
}

// TestWatchKeepsPolicyOnBadEdit checks the watcher path refuses a bad file,
// keeps deciding with the old policy, and picks up the fix.
func TestWatchKeepsPolicyOnBadEdit(t *testing.T) {
	f := newFixture(t)
	e := f.open(t)
	watching(t, e)
	failures := func() float64 { return counterValue(t, e.m.reloadFailed) }

	writeFile(t, f.rules, "")
	waitFor(t, "the empty file to be refused", func() bool { return failures() == 1 })
	if got := e.Generation(); got != 1 {
		t.Errorf("Generation after a refused edit: got %d, want 1", got)
	}
	if !allows(t, e, "alice@example.com", []string{"admin"}, "POST", resetPath) {
		t.Errorf("admin reset-password: got deny, want allow from the old policy")
	}

	writeFile(t, f.rules, readShipped(t, "policy.csv")+auditorRule)
	waitFor(t, "the fixed file to load", func() bool { return e.Generation() == 2 })
	if !auditorAllowed(t, e) {
		t.Errorf("auditor: got deny after the fix, want allow")
	}
	if got := failures(); got != 1 {
		t.Errorf("failed reloads: got %v, want 1", got)
	}
}

// TestWatchPolls checks the polling fallback alone: the policy file is
// reached through a directory symlink that is repointed, which changes the
// file without any event on a name the watcher listens for.
func TestWatchPolls(t *testing.T) {
	f := newFixture(t)
	v1, v2 := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(v1, "policy.csv"), readShipped(t, "policy.csv"))
	writeFile(t, filepath.Join(v2, "policy.csv"), readShipped(t, "policy.csv")+auditorRule)
	link := filepath.Join(f.dir, "current")
	if err := os.Symlink(v1, link); err != nil {
		t.Fatal(err)
	}
	opts := f.options()
	opts.RulesPath = filepath.Join(link, "policy.csv")
	opts.PollInterval = 20 * time.Millisecond
	e, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	watching(t, e)
	tmp := filepath.Join(f.dir, "current.tmp")
	if err := os.Symlink(v2, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, link); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "polling to load the edit", func() bool { return e.Generation() > 1 })
	if !auditorAllowed(t, e) {
		t.Errorf("auditor: got deny after the edit, want allow")
	}
}
