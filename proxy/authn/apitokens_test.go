package authn

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func tokensFile(t *testing.T, dir string, lines ...string) string {
	t.Helper()
	return writeFile(t, dir, "tokens.txt", []byte(strings.Join(lines, "\n")+"\n"))
}

func TestAPITokens(t *testing.T) {
	dir := t.TempDir()
	path := tokensFile(t, dir,
		"# ci and dashboards",
		"",
		HashAPIToken("*:*.abc123")+"  ci-deploy\tadmin,deployer",
		"  "+strings.ToUpper(HashAPIToken("grafana-token"))+" grafana",
	)
	a, err := New(Options{APITokensFile: path, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		header    string
		want      Reason
		wantSub   string
		wantRoles []string
	}{
		{"Unleash admin token, bare", "*:*.abc123", "", "ci-deploy", []string{"admin", "deployer"}},
		{"Unleash admin token, Bearer", "Bearer *:*.abc123", "", "ci-deploy", []string{"admin", "deployer"}},
		{"token without roles", "grafana-token", "", "grafana", nil},
		{"unknown token", "*:*.abc124", ReasonUnknownToken, "", nil},
		{"the hash itself is not a token", HashAPIToken("grafana-token"), ReasonUnknownToken, "", nil},
		{"JWT-shaped goes to JWT verification", "e30.e30.e30", ReasonBadSignature, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, reason, err := a.Authenticate(context.Background(), http.Header{"Authorization": {tt.header}})
			if err != nil || reason != tt.want {
				t.Fatalf("got (%q, %v), want (%q, nil)", reason, err, tt.want)
			}
			if tt.want != "" {
				return
			}
			if id.Subject != tt.wantSub || !slices.Equal(id.Roles, tt.wantRoles) || id.Kind != KindAPIToken {
				t.Errorf("got %+v, want subject %q roles %q kind %q", id, tt.wantSub, tt.wantRoles, KindAPIToken)
			}
		})
	}
}

func TestAPITokensFileErrors(t *testing.T) {
	h := HashAPIToken("x")
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"one field", h + "\n", "tokens.txt:1: want"},
		{"four fields", "# c\n" + h + " a b c\n", "tokens.txt:2: want"},
		{"not hex", strings.Repeat("z", 64) + " a\n", "tokens.txt:1: first field"},
		{"short hash", h[:62] + " a\n", "tokens.txt:1: first field"},
		{"repeated hash", h + " a\n" + h + " b\n", "tokens.txt:2: hash listed twice"},
		{"empty role", h + " a admin,,x\n", "tokens.txt:1: empty role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "tokens.txt", []byte(tt.content))
			_, err := New(Options{APITokensFile: path})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := New(Options{APITokensFile: "/nonexistent/tokens.txt"}); err == nil || !strings.Contains(err.Error(), "/nonexistent/tokens.txt") {
		t.Errorf("missing file: got %v, want an error naming the file", err)
	}
}

func TestAPITokensReload(t *testing.T) {
	dir := t.TempDir()
	path := tokensFile(t, dir, HashAPIToken("first")+" one")
	a, err := New(Options{APITokensFile: path, APITokensReload: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	check := func(token string, want Reason) {
		t.Helper()
		_, got, err := a.Authenticate(context.Background(), http.Header{"Authorization": {token}})
		if err != nil || got != want {
			t.Errorf("%s: got (%q, %v), want (%q, nil)", token, got, err, want)
		}
	}
	check("first", "")
	check("second", ReasonUnknownToken)

	// Reload through Run, as in production.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	tokensFile(t, dir, HashAPIToken("second")+" two ops")
	waitFor(t, func() bool {
		_, reason, _ := a.Authenticate(context.Background(), http.Header{"Authorization": {"second"}})
		return reason == ""
	})
	check("first", ReasonUnknownToken)

	// An empty file (one being rewritten in place) keeps the tokens in use.
	writeFile(t, dir, "tokens.txt", nil)
	if _, err := a.reloadAPITokens(); err == nil {
		t.Error("reload of an empty file: got nil, want an error")
	}
	check("second", "")
	// A comment-only file revokes every token on purpose.
	writeFile(t, dir, "tokens.txt", []byte("# no tokens\n"))
	if _, err := a.reloadAPITokens(); err != nil {
		t.Errorf("reload of a comment-only file: %v", err)
	}
	check("second", ReasonUnknownToken)
	tokensFile(t, dir, HashAPIToken("second")+" two ops")
	if _, err := a.reloadAPITokens(); err != nil {
		t.Fatal(err)
	}

	// A broken file keeps the tokens in use.
	writeFile(t, dir, "tokens.txt", []byte("garbage\n"))
	if _, err := a.reloadAPITokens(); err == nil {
		t.Error("reload of a broken file: got nil, want an error")
	}
	check("second", "")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := a.reloadAPITokens(); err == nil {
		t.Error("reload of a missing file: got nil, want an error")
	}
	check("second", "")
}

// TestAPITokensReloadMetric: latch_api_tokens_last_reload_successful is 1
// after New loaded the file, 0 while the file on disk cannot be loaded
// (broken, empty, missing), whether Run or a direct reload found it, and
// 1 again once it loads, even with the content already in use.
func TestAPITokensReloadMetric(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := HashAPIToken("first") + " one\n"
	path := writeFile(t, dir, "tokens.txt", []byte(good))
	reg := prometheus.NewRegistry()
	a, err := New(Options{APITokensFile: path, APITokensReload: 10 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	gauge := func() float64 {
		t.Helper()
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "latch_api_tokens_last_reload_successful" {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("latch_api_tokens_last_reload_successful is not registered")
		return -1
	}
	if got := gauge(); got != 1 {
		t.Fatalf("after New: got %v, want 1", got)
	}

	// Through Run, as in production.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	writeFile(t, dir, "tokens.txt", []byte("garbage\n"))
	waitFor(t, func() bool { return gauge() == 0 })
	writeFile(t, dir, "tokens.txt", []byte(good))
	waitFor(t, func() bool { return gauge() == 1 })
	cancel()
	<-done

	for _, c := range []struct {
		name    string
		content []byte // nil: remove the file
		want    float64
	}{
		{"broken", []byte("garbage\n"), 0},
		{"the same good content again", []byte(good), 1},
		{"empty", []byte{}, 0},
		{"comments only", []byte("# none\n"), 1},
		{"missing", nil, 0},
		{"good", []byte(good), 1},
	} {
		if c.content == nil {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		} else {
			writeFile(t, dir, "tokens.txt", c.content)
		}
		_, err := a.reloadAPITokens()
		if got := gauge(); got != c.want || (err == nil) != (c.want == 1) {
			t.Errorf("%s: got %v (reload error %v), want %v", c.name, got, err, c.want)
		}
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// guard so a broken reload fails instead of hanging.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
