package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAuth accepts "Bearer <subject>:<role,role>" for subjects in its set
// and refuses everything else.
type fakeAuth struct{ err error }

func (f fakeAuth) Authenticate(ctx context.Context, h http.Header) (Identity, *Denial, error) {
	if f.err != nil {
		return Identity{}, nil, f.err
	}
	v := h.Values("Authorization")
	if len(v) == 0 {
		return Identity{}, &Denial{Reason: "missing", Message: "no credential"}, nil
	}
	tok, ok := strings.CutPrefix(v[0], "Bearer ")
	sub, roles, ok2 := strings.Cut(tok, ":")
	if !ok || !ok2 || !strings.Contains(sub, "@") {
		return Identity{}, &Denial{Reason: "malformed", Message: "The token is malformed."}, nil
	}
	return Identity{Subject: sub, Roles: strings.Split(roles, ","), Kind: "jwt", IssuedAt: time.Unix(1000, 0)}, nil, nil
}

// eachPair decides as policy.Engine.DecideAll does, with decide standing
// for one pair: every method on every reading, methods outer; the first
// pair denied or failed decides, else the last.
func eachPair(methods, readings []string, decide func(method, path string) (Decision, error)) (Decision, error) {
	var d Decision
	for _, m := range methods {
		for _, p := range readings {
			var err error
			d, err = decide(m, p)
			d.Method, d.Path = m, p
			if err != nil || !d.Allow {
				return d, err
			}
		}
	}
	return d, nil
}

// pairs lists every method and reading pair as "METHOD path".
func pairs(methods, readings []string) []string {
	var out []string
	for _, m := range methods {
		for _, p := range readings {
			out = append(out, m+" "+p)
		}
	}
	return out
}

// fakeDecider allows role admin everything and role viewer GET only. It
// records every pair it was asked to decide.
type fakeDecider struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (d *fakeDecider) Decide(sub string, roles []string, methods, readings []string) (Decision, error) {
	d.mu.Lock()
	d.calls = append(d.calls, pairs(methods, readings)...)
	d.mu.Unlock()
	return eachPair(methods, readings, func(method, path string) (Decision, error) { return d.decide(roles, method, path) })
}

func (d *fakeDecider) decide(roles []string, method, path string) (Decision, error) {
	if d.err != nil {
		return Decision{}, d.err
	}
	for _, r := range roles {
		if r == "admin" && (strings.HasPrefix(path, "/api/admin/") || strings.HasPrefix(path, "/.latch/users")) {
			return Decision{Allow: true, Rule: []string{"role:admin", "/api/admin/*", "*"}}, nil
		}
		if r == "viewer" && method == "GET" && (strings.HasPrefix(path, "/api/admin/") || strings.HasPrefix(path, "/.latch/users")) {
			return Decision{Allow: true, Rule: []string{"role:viewer", "/api/admin/*", "GET"}}, nil
		}
	}
	if strings.HasPrefix(path, "/.latch/users") || strings.HasPrefix(path, "/api/admin/user-admin/") {
		return Decision{Permission: "ADMIN"}, nil
	}
	return Decision{Pattern: "/api/admin/*"}, nil
}

// recording is an upstream that records each request it receives.
type recording struct {
	mu   sync.Mutex
	reqs []*http.Request
	srv  *httptest.Server
}

func newRecording(t *testing.T) *recording {
	rec := &recording{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r.Clone(context.Background()))
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "upstream saw "+r.URL.EscapedPath())
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recording) last(t *testing.T) *http.Request {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("upstream received no request")
	}
	return rec.reqs[len(rec.reqs)-1]
}

func (rec *recording) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// newFront serves a Handler for upstream with the fakes, adjusted by mod.
func newFront(t *testing.T, upstream string, mod func(*Options)) *httptest.Server {
	t.Helper()
	o := Options{Upstream: mustURL(t, upstream), Authenticator: fakeAuth{}, Decider: &fakeDecider{}}
	if mod != nil {
		mod(&o)
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	return front
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// wantError checks that resp is an error in the API page's shape.
func wantError(t *testing.T, resp *http.Response, status int, name string) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status: got %d, want %d (body %s)", resp.StatusCode, status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if id, _ := body["id"].(string); !uuidV4.MatchString(id) {
		t.Errorf("id: got %q, want a UUID v4", body["id"])
	}
	if body["name"] != name {
		t.Errorf("name: got %q, want %q", body["name"], name)
	}
	if m, _ := body["message"].(string); m == "" {
		t.Error("message: empty")
	}
	return body
}

// testTransport is the tests' own: every httptest.Server.Close calls
// http.DefaultTransport.CloseIdleConnections, which breaks the requests
// of parallel tests in flight on it ("CloseIdleConnections called").
var testTransport = new(http.Transport)

// testClient is http.DefaultClient on testTransport.
var testClient = &http.Client{Transport: testTransport}

func do(t *testing.T, method, u string, hdr http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
