package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/proxy"
)

// BenchmarkServe compares the real latch (config, authn with a cached
// token, the shipped policy, the bbolt store, metrics and the JSON access
// line) with a bare ReverseProxy on the same transport, both in process in
// front of the same loopback upstream: the ratio of their ns/op is latch's
// overhead without the load generator's noise. impl=latch-session sends a
// browser session cookie instead of the JWT: the same route, the same
// policy decision, a session read through the cache instead of a cached
// JWT (the target: no more CPU than impl=latch).
func BenchmarkServe(b *testing.B) {
	a, upURL, token, session := benchApp(b)
	bench := func(b *testing.B, h http.Handler, cookie bool) {
		front := httptest.NewServer(h)
		defer front.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", front.URL+"/api/admin/features/x", nil)
				if cookie {
					req.Header.Set("Cookie", session)
				} else {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	b.Run("impl=bare", func(b *testing.B) {
		bench(b, &httputil.ReverseProxy{Transport: proxy.NewTransport(proxy.TransportOptions{}), BufferPool: proxy.BufferPool(),
			Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(upURL); pr.SetXForwarded() }}, false)
	})
	b.Run("impl=latch", func(b *testing.B) {
		bench(b, a.handler, false)
	})
	b.Run("impl=latch-session", func(b *testing.B) {
		bench(b, a.handler, true)
	})
}

// benchApp is the real latch in front of a loopback upstream, as serve
// builds it, with a JWT (`latch token`, role viewer) and a browser
// session's Cookie header (a viewer signed in on the login form).
func benchApp(b *testing.B) (a *app, upURL *url.URL, token, session string) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(up.Close)
	upURL, _ = url.Parse(up.URL)

	dir := b.TempDir()
	cfgPath := filepath.Join(dir, "latch.yaml")
	cfgText := "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nupstream: " + up.URL + "\ndata_dir: data\n" +
		"policy:\n  model: " + repoFile(b, "policies/model.conf") + "\n  rules: " + repoFile(b, "policies/policy.csv") + "\n"
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		b.Fatal(err)
	}
	log, access, err := newLogger(cfg.Log, &syncWriter{w: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	const password = "Bench-Passw0rd!x"
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := run(context.Background(), []string{"users", "add", "--config", cfgPath, "--email", "sess@example.com", "--role", "viewer", "--password-stdin"},
		nil, strings.NewReader(password+"\n"), io.Discard, io.Discard); err != nil {
		b.Fatal(err)
	}
	a, err = prepare(cfg, log, access) // as serve does: data dir, key, build
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.close() })
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "--config", cfgPath, "--sub", "bench@example.com", "--role", "viewer", "--allow-unknown"},
		nil, strings.NewReader(""), &out, io.Discard); err != nil {
		b.Fatal(err)
	}
	token = strings.TrimSpace(out.String())

	// One sign-in for every run: the login limits count attempts.
	front := httptest.NewServer(a.handler)
	session = sessionCookie(b, front.URL, "sess@example.com", password)
	front.Close()
	return a, upURL, token, session
}

// BenchmarkCredential is the CPU of one request authenticated by each kind
// of credential, on a route latch answers itself (GET /.latch/me: no
// upstream, no network), with the real authenticator and store cache:
// cred=jwt a cached JWT, cred=session a session cookie. The target:
// session no more than jwt.
func BenchmarkCredential(b *testing.B) {
	a, _, token, session := benchApp(b)
	for _, cred := range []string{"jwt", "session"} {
		b.Run("cred="+cred, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "http://latch.test/.latch/me", nil)
				if cred == "jwt" {
					req.Header.Set("Authorization", "Bearer "+token)
				} else {
					req.Header.Set("Cookie", session)
				}
				w := httptest.NewRecorder()
				a.handler.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
