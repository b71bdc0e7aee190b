package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/latch-dev/latch"
	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/policies"
)

// demoUsers are seeded by `latch demo`; alice has no password and gets in
// through a reset link.
var demoUsers = []struct {
	email string
	roles []string
	admin bool
}{
	{"admin@example.com", []string{"admin"}, true},
	{"viewer@example.com", []string{"viewer"}, false},
	{"alice@example.com", nil, false},
}

// cmdDemo starts latch in front of an in-process echo upstream, with the
// shipped policies, a fresh data dir and demo users, and prints what to
// try.
func cmdDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags("demo", "demo [--listen ADDR] [--admin-listen ADDR] [--dir DIR]", e.stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "proxy address")
	adminListen := fs.String("admin-listen", "127.0.0.1:9091", "health and metrics address")
	dir := fs.String("dir", "", "data dir (default: a new temporary dir, removed on exit)")
	if done, err := parse(fs, args); done {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "latch-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	addr, err := resolvePort(*listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}

	up, err := startEchoUpstream()
	if err != nil {
		return err
	}
	defer up.Close()

	cfg, err := demoConfig(*dir, addr, *adminListen, "http://"+up.Addr().String())
	if err != nil {
		return err
	}
	passwords, stored, err := seedDemoUsers(ctx, cfg)
	if err != nil {
		return err
	}
	minter, err := openMinter(cfg)
	if err != nil {
		return err
	}
	// As `latch token` prints for a stored user: tied to the user, acting
	// with the roles stored now.
	tokens := map[string]string{}
	for _, d := range demoUsers[:2] {
		u := stored[d.email]
		if tokens[u.Email], _, err = minter.MintSession(u.Email, u.Roles, u.Generation, 12*time.Hour); err != nil {
			return err
		}
	}
	return serve(ctx, e, cfg, func(proxyAddr, adminAddr string) {
		printDemo(e.stdout, "http://"+proxyAddr, "http://"+adminAddr, *dir, tokens, passwords)
	})
}

// resolvePort picks a free port for ":0", so the links latch builds carry
// the real one.
func resolvePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return addr, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func demoConfig(dir, listen, adminListen, upstream string) (*config.Config, error) {
	pol := filepath.Join(dir, "policies")
	if err := os.MkdirAll(pol, 0o700); err != nil {
		return nil, err
	}
	for _, name := range []string{"model.conf", "policy.csv", "policy.tests"} {
		b, err := policies.Files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(pol, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	c := config.Default()
	c.Listen, c.AdminListen, c.Upstream = listen, adminListen, upstream
	c.DataDir = filepath.Join(dir, "data")
	c.Policy.Model = filepath.Join(pol, "model.conf")
	c.Policy.Rules = filepath.Join(pol, "policy.csv")
	c.Policy.Tests = filepath.Join(pol, "policy.tests")
	c.Log.Format = "text"
	c.Reset.MinInterval = config.Duration(10 * time.Second)
	c.PublicURL = "http://" + listen
	c.Reset.URL = c.PublicURL + c.Namespace + "/reset-password"
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, os.MkdirAll(c.DataDir, 0o700)
}

// seedDemoUsers adds the demo users (once per data dir) and returns the
// passwords it set and the users as stored.
func seedDemoUsers(ctx context.Context, cfg *config.Config) (map[string]string, map[string]latch.User, error) {
	st, err := openStore(cfg, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	passwords := map[string]string{}
	stored := map[string]latch.User{}
	for _, u := range demoUsers {
		pw := ""
		if u.email != "alice@example.com" {
			pw = "Demo-" + rand.Text()[:12] + "!1a"
		}
		_, err := st.AddUser(ctx, u.email, u.roles, pw)
		switch {
		case err == nil:
			passwords[u.email] = pw
		case strings.Contains(err.Error(), latch.ErrUserExists.Error()):
			passwords[u.email] = "(unchanged from an earlier demo run)"
		default:
			return nil, nil, err
		}
		if stored[u.email], err = st.GetUser(ctx, u.email); err != nil {
			return nil, nil, err
		}
	}
	return passwords, stored, nil
}

// startEchoUpstream serves the demo backend: it answers every request with
// what it received, so the identity headers latch adds are visible.
func startEchoUpstream() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"upstream": "latch demo echo",
			"method":   r.Method, "path": r.URL.EscapedPath(), "query": r.URL.RawQuery, "bodyBytes": n,
			"headers": map[string]string{
				"X-Latch-User": r.Header.Get("X-Latch-User"), "X-Latch-Roles": r.Header.Get("X-Latch-Roles"),
				"X-Forwarded-For": r.Header.Get("X-Forwarded-For"), "X-Request-Id": r.Header.Get("X-Request-Id"),
			},
		})
	})}
	go srv.Serve(ln)
	return ln, nil
}

func printDemo(w io.Writer, proxyURL, adminURL, dir string, tokens, passwords map[string]string) {
	route := proxyURL + "/api/admin/user-admin/reset-password"
	post := func(token, body string) string {
		auth := ""
		if token != "" {
			auth = fmt.Sprintf(` -H "Authorization: Bearer $%s"`, token)
		}
		return fmt.Sprintf(`curl -s -w ' -> %%{http_code}\n' -X POST %s%s -H 'Content-Type: application/json' -d '%s'`, route, auth, body)
	}
	fmt.Fprintf(w, `
latch demo is running.
  proxy:     %[1]s   (in front of a demo echo upstream)
  admin:     %[2]s/healthz  %[2]s/readyz  %[2]s/metrics
  data dir:  %[3]s
  users:     admin@example.com (role admin, password %[4]s)
             viewer@example.com (role viewer, password %[5]s)
             alice@example.com (no password yet: give her a reset link)

Paste these into a shell:

export ADMIN_TOKEN=%[6]s
export VIEWER_TOKEN=%[7]s

# The reset-password route, each documented answer:
# 200: a reset link for alice
%[8]s
# 400: the body does not match the schema
%[9]s
# 401: no credentials
%[10]s
# 403: a viewer may not reset passwords
%[11]s
# 404: no such user
%[12]s

# Anything else is forwarded; latch tells the upstream who is calling:
curl -s %[1]s/api/admin/features -H "Authorization: Bearer $VIEWER_TOKEN"
# Log in for a token:
curl -s -X POST %[1]s/.latch/login -H 'Content-Type: application/json' -d '{"email":"admin@example.com","password":"%[4]s"}'
# Open the 200's resetPasswordUrl in a browser to set alice's password.
# Or sign in with a browser (a session cookie) at %[1]s/.latch/login,
# then see who you are at %[1]s/.latch/me; log out with the form's POST to
# %[1]s/.latch/logout.

Press Ctrl-C to stop.
`, proxyURL, adminURL, dir, passwords["admin@example.com"], passwords["viewer@example.com"],
		tokens["admin@example.com"], tokens["viewer@example.com"],
		post("ADMIN_TOKEN", `{"id":"alice@example.com"}`),
		post("ADMIN_TOKEN", `{"id":123}`),
		post("", `{"id":"alice@example.com"}`),
		post("VIEWER_TOKEN", `{"id":"alice@example.com"}`),
		post("ADMIN_TOKEN", `{"id":"nobody@example.com"}`))
}
