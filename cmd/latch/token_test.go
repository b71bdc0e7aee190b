package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/proxy/authn"
	"github.com/latch-dev/latch/resetstore"
)

// cli runs one latch command and returns its stdout and stderr apart.
func cli(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errs syncBuffer
	err = run(context.Background(), args, nil, strings.NewReader(""), &out, &errs)
	return out.String(), errs.String(), err
}

// mustCLI is cli for a command that must succeed.
func mustCLI(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := cli(t, args...)
	if err != nil {
		t.Fatalf("latch %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

// tokenConfig writes a config (bbolt in <dir>/data) for upstream and
// returns its path.
func tokenConfig(t *testing.T, upstream string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "latch.yaml")
	if err := os.WriteFile(path, []byte(baseConfig(t, upstream, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// identityOf checks tok as latch's authenticator does, with the config's
// key, and returns what it establishes.
func identityOf(t *testing.T, cfgPath, tok string) authn.Identity {
	t.Helper()
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := authOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := authn.New(o)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	id, reason, err := a.Authenticate(context.Background(), h)
	if err != nil || reason != "" {
		t.Fatalf("authenticating the minted token: reason %q, error %v", reason, err)
	}
	return id
}

// storedGeneration reads the user's session generation from a bbolt store
// no latch holds.
func storedGeneration(t *testing.T, cfgPath, email string) uint64 {
	t.Helper()
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := resetstore.Open(cfg.StorePath(), resetstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.GetUser(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u.Generation
}

// TestTokenReadsStore: the roles and the tie to the user come from the
// store unless --role overrides them; an unknown subject needs
// --allow-unknown.
func TestTokenReadsStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string // after --config
		bound bool
		roles []string
		sub   string
		note  string // on stderr; "" means stderr is empty
	}{
		{"stored user", []string{"--sub", "Bob@Example.com"}, true, []string{"viewer", "editor"}, "bob@example.com", ""},
		{"stored user, --allow-unknown changes nothing", []string{"--sub", "bob@example.com", "--allow-unknown"},
			true, []string{"viewer", "editor"}, "bob@example.com", ""},
		{"--role overrides", []string{"--sub", "bob@example.com", "--role", "admin"}, false, []string{"admin"}, "bob@example.com",
			"--role overrides bob@example.com's stored roles, so the token is not tied to a stored user"},
		{"unknown, --allow-unknown", []string{"--sub", "ci@example.com", "--allow-unknown"}, false, nil, "ci@example.com",
			"ci@example.com is not a stored user, so the token is not tied to a stored user: it acts with no roles"},
		{"unknown, --allow-unknown --role", []string{"--sub", "ci@example.com", "--allow-unknown", "--role", "viewer"},
			false, []string{"viewer"}, "ci@example.com", "acts with roles viewer until it expires"},
		{"not an email, --allow-unknown", []string{"--sub", "ci-bot", "--allow-unknown"}, false, nil, "ci-bot",
			"ci-bot is not a stored user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tokenConfig(t, "http://127.0.0.1:1")
			mustCLI(t, "users", "add", "--config", cfg, "--email", "bob@example.com", "--role", "viewer", "--role", "editor")
			out, stderr := mustCLI(t, append([]string{"token", "--config", cfg}, tt.args...)...)
			id := identityOf(t, cfg, strings.TrimSpace(out))
			if id.Subject != tt.sub || id.Bound != tt.bound || !slices.Equal(id.Roles, tt.roles) {
				t.Errorf("token: got sub %q bound %v roles %q, want sub %q bound %v roles %q",
					id.Subject, id.Bound, id.Roles, tt.sub, tt.bound, tt.roles)
			}
			if tt.bound {
				if want := storedGeneration(t, cfg, tt.sub); id.Generation != want {
					t.Errorf("token generation: got %d, want the stored %d", id.Generation, want)
				}
			}
			if tt.note == "" && stderr != "" {
				t.Errorf("stderr: got %q, want nothing", stderr)
			}
			if tt.note != "" && (!strings.Contains(stderr, tt.note) || strings.Count(stderr, "\n") != 1) {
				t.Errorf("stderr: got %q, want one line with %q", stderr, tt.note)
			}
		})
	}
}

// TestTokenUnknownRefused: without --allow-unknown a subject that is not
// stored gets no token, whether or not there is a store yet; the refusal
// creates no store file.
func TestTokenUnknownRefused(t *testing.T) {
	t.Parallel()
	for _, seeded := range []bool{false, true} {
		cfg := tokenConfig(t, "http://127.0.0.1:1")
		if seeded {
			mustCLI(t, "users", "add", "--config", cfg, "--email", "bob@example.com", "--role", "viewer")
		}
		for _, args := range [][]string{{"--sub", "ci@example.com"}, {"--sub", "ci@example.com", "--role", "admin"}, {"--sub", "ci-bot"}} {
			out, _, err := cli(t, append([]string{"token", "--config", cfg}, args...)...)
			if err == nil || out != "" {
				t.Fatalf("seeded %v, token %v: got %q, error %v; want a refusal and no token", seeded, args, out, err)
			}
			for _, want := range []string{"no such user", "--allow-unknown"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("seeded %v, token %v: error %q lacks %q", seeded, args, err, want)
				}
			}
		}
		store := filepath.Join(filepath.Dir(cfg), "data", "latch.db")
		if _, err := os.Stat(store); !seeded && err == nil {
			t.Errorf("a refused token created the store %s", store)
		}
	}
}

// TestTokenWhileServing: a running latch holds the bbolt file. A token for
// a stored user then fails at once with one line naming the holder and the
// way out; --allow-unknown with --role does not read the store, and the
// running latch accepts its token.
func TestTokenWhileServing(t *testing.T) {
	t.Parallel()
	in := seededLatch(t, "")
	cfg := filepath.Join(in.dir, "latch.yaml")
	out, _, err := cli(t, "token", "--config", cfg, "--sub", viewEmail)
	if err == nil || out != "" {
		t.Fatalf("token while serving: got %q, error %v; want a refusal", out, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, want := range []string{"in use by latch serve (pid " + holderPID(filepath.Join(in.dir, "data")) + ")",
		"--allow-unknown with explicit --role", "/.latch/login", "/.latch/users"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}

	out, _ = mustCLI(t, "token", "--config", cfg, "--sub", "ops@example.com", "--role", "admin", "--allow-unknown", "--ttl", "5m")
	if r := call(t, "GET", in.proxy+"/api/admin/features", strings.TrimSpace(out), "", ""); r.status != 200 ||
		r.body["user"] != "ops@example.com" || r.body["roles"] != "admin" {
		t.Errorf("--allow-unknown token: got %d %s", r.status, r.raw)
	}
}

// TestTokenEndsWithUser (bbolt, latch stopped between steps): a token for a
// stored user is refused once the user is deleted, and stays refused when
// the user is re-created; a --role token is not tied to the user and
// keeps working.
func TestTokenEndsWithUser(t *testing.T) {
	t.Parallel()
	cfg := tokenConfig(t, echoUpstream(t).URL)
	dir := filepath.Dir(cfg)
	mustCLI(t, "users", "add", "--config", cfg, "--email", "bob@example.com", "--role", "viewer")
	bound, _ := mustCLI(t, "token", "--config", cfg, "--sub", "bob@example.com")
	override, _ := mustCLI(t, "token", "--config", cfg, "--sub", "bob@example.com", "--role", "viewer")
	bound, override = strings.TrimSpace(bound), strings.TrimSpace(override)

	serveAndCheck := func(step string, wantBound int) {
		t.Helper()
		in := startLatchArgs(t, dir, []string{"serve", "--config", cfg}, nil)
		defer in.stop(t)
		if r := call(t, "GET", in.proxy+"/api/admin/features", bound, "", ""); r.status != wantBound ||
			wantBound == 200 && (r.body["user"] != "bob@example.com" || r.body["roles"] != "viewer") {
			t.Errorf("%s: the stored user's token: got %d %s, want %d", step, r.status, r.raw, wantBound)
		}
		if r := call(t, "GET", in.proxy+"/api/admin/features", override, "", ""); r.status != 200 || r.body["roles"] != "viewer" {
			t.Errorf("%s: the --role token: got %d %s, want 200", step, r.status, r.raw)
		}
	}
	serveAndCheck("stored", 200)
	mustCLI(t, "users", "delete", "--config", cfg, "--email", "bob@example.com")
	serveAndCheck("deleted", 401)
	mustCLI(t, "users", "add", "--config", cfg, "--email", "bob@example.com", "--role", "viewer")
	serveAndCheck("re-created", 401)
}

// TestTokenFollowsStoreEtcd (etcd, latch running): a stored user's token
// acts with the roles stored now, and a running latch refuses it once the
// CLI deletes the user.
func TestTokenFollowsStoreEtcd(t *testing.T) {
	t.Parallel()
	s := newEtcdSetup(t, 1)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "latch.yaml")
	if err := os.WriteFile(cfg, []byte(s.config(t, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startLatchArgs(t, dir, []string{"serve", "--config", cfg}, nil)
	out, _ := mustCLI(t, "token", "--config", cfg, "--sub", viewEmail, "--ttl", "10m")
	tok := strings.TrimSpace(out)
	features := func() answer { return call(t, "GET", in.proxy+"/api/admin/features", tok, "", "") }
	if r := features(); r.status != 200 || r.body["user"] != viewEmail || r.body["roles"] != "viewer" {
		t.Fatalf("the viewer's token: got %d %s", r.status, r.raw)
	}
	mustCLI(t, "users", "set-roles", "--config", cfg, "--email", viewEmail, "--role", "editor")
	pollUntil(t, "the token to act with the stored role editor", func() bool {
		r := features()
		return r.status == 200 && r.body["roles"] == "editor"
	})
	mustCLI(t, "users", "delete", "--config", cfg, "--email", viewEmail)
	pollUntil(t, "the deleted user's token to be refused", func() bool { return features().status == 401 })
}
