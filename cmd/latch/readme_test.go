package main

import (
	"os"
	"strings"
	"testing"

	"github.com/latch-dev/latch/config"
)

// TestREADMEDocumentsEveryKey keeps the configuration reference honest:
// every key, with its env name and default, has a row.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile(repoFile(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, k := range config.Keys() {
		def := k.Default
		if def == "" {
			def = "—"
		}
		row := "| `" + k.Path + "` | `" + k.Env + "` | `" + def + "` |"
		if !strings.Contains(readme, row) {
			t.Errorf("README lacks the row %s", row)
		}
	}
	for _, want := range []string{"go run ./cmd/latch demo", "make test"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README lacks %q", want)
		}
	}
}
