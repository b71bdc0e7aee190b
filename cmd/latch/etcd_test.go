package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-dev/latch/resetstore"
	"github.com/latch-dev/latch/resetstore/etcdstore"
	"github.com/latch-dev/latch/resetstore/etcdstore/etcdtest"
)

// etcdCheapHash keeps argon2id fast for the users these tests seed; the
// hash records its parameters, so latch verifies them as any other.
var etcdCheapHash = resetstore.HashParams{Time: 1, MemoryKiB: 64, Threads: 1}

// etcdSetup is one etcd cluster, a key prefix, a signing key shared by the
// replicas (so a JWT from one works on all) and an API token.
type etcdSetup struct {
	cluster  *etcdtest.Cluster
	prefix   string
	keyFile  string
	apiToken string
	apiFile  string
	upstream string
	// requestTimeout is store.etcd.request_timeout: 5s, room for a
	// loaded machine running -race; TestEtcdDown shortens it so that an
	// unreachable etcd is noticed sooner.
	requestTimeout string
}

var etcdPrefixes atomic.Int64

// newEtcdSetup starts an n-member cluster and seeds the admin, the viewer
// and alice (no password), as seededLatch does for bbolt.
func newEtcdSetup(t *testing.T, members int) *etcdSetup {
	t.Helper()
	s := &etcdSetup{cluster: etcdtest.Start(t, members), prefix: fmt.Sprintf("/latch-e2e-%d/", etcdPrefixes.Add(1)),
		requestTimeout: "5s"}
	dir := t.TempDir()
	s.keyFile = filepath.Join(dir, "signing.key")
	if err := ensureEd25519Key(s.keyFile); err != nil {
		t.Fatal(err)
	}
	s.apiToken = "ops-token-0123456789abcdef"
	sum := sha256.Sum256([]byte(s.apiToken))
	s.apiFile = filepath.Join(dir, "api_tokens")
	if err := os.WriteFile(s.apiFile, []byte(hex.EncodeToString(sum[:])+" ops@example.com admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.upstream = echoUpstream(t).URL

	st, err := etcdstore.Open(etcdstore.Options{Endpoints: s.cluster.Endpoints(), Prefix: s.prefix, Hash: etcdCheapHash})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, u := range []struct {
		email, pw string
		roles     []string
	}{{adminEmail, adminPass, []string{"admin"}}, {viewEmail, viewPass, []string{"viewer"}}, {userEmail, "", nil}} {
		if _, err := st.AddUser(context.Background(), u.email, u.roles, u.pw); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// config is a latch config on the setup's etcd; extra is appended.
func (s *etcdSetup) config(t *testing.T, extra string) string {
	return baseConfig(t, s.upstream, fmt.Sprintf(`auth:
  signing_key_file: %s
  api_tokens_file: %s
store:
  backend: etcd
  etcd:
    endpoints: [%s]
    prefix: %s
    dial_timeout: 1s
    request_timeout: %s
%s`, s.keyFile, s.apiFile, strings.Join(s.cluster.Endpoints(), ", "), s.prefix, s.requestTimeout, extra))
}

// replica starts one latch on the setup's etcd.
func (s *etcdSetup) replica(t *testing.T, extra string) *instance {
	t.Helper()
	return startLatchIn(t, t.TempDir(), s.config(t, extra))
}

func issueLink(t *testing.T, in *instance, admin, email string) answer {
	t.Helper()
	return call(t, "POST", in.proxy+resetRoute, admin, "application/json", `{"id":"`+email+`"}`)
}

func linkToken(t *testing.T, a answer) string {
	t.Helper()
	link, _ := a.body["resetPasswordUrl"].(string)
	i := strings.Index(link, "token=")
	if a.status != 200 || i < 0 {
		t.Fatalf("issuing a link: %d %s", a.status, a.raw)
	}
	return link[i+6:]
}

func redeem(t *testing.T, in *instance, token, pw string) answer {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"token": token, "password": pw})
	return call(t, "POST", in.proxy+"/.latch/reset/redeem", "", "application/json", string(b))
}

// TestEtcdTwoReplicas runs two latch replicas on one etcd: a link issued
// through one is validated and redeemed through the other, the rate limit
// is shared, 50 redemptions split across both have one winner, and the new
// password works on both.
func TestEtcdTwoReplicas(t *testing.T) {
	s := newEtcdSetup(t, 1)
	// 50 default-cost argon2 hashes (slower still under -race) hold both
	// cores for seconds, starving etcd's goroutines in this process: not
	// parallel, so that it starves no other test's etcd.
	s.requestTimeout = "20s"
	a, b := s.replica(t, ""), s.replica(t, "")
	admin := loginToken(t, a, adminEmail, adminPass)

	token := linkToken(t, issueLink(t, a, admin, userEmail))
	v := call(t, "GET", b.proxy+"/.latch/reset/validate?token="+token, "", "", "")
	if v.status != 200 || v.body["email"] != userEmail {
		t.Fatalf("validate on B: %d %s", v.status, v.raw)
	}
	// The per-user rate limit lives in etcd: B refuses a second link.
	issueLink(t, b, admin, userEmail).wantErr(t, 429, "RateLimitError", "per minute")

	const alicePass = "Al1ce-New-Passw0rd!"
	if r := redeem(t, b, token, alicePass); r.status != 200 {
		t.Fatalf("redeem on B: %d %s", r.status, r.raw)
	}
	redeem(t, a, token, alicePass+"x").wantErr(t, 403, "UsedTokenError", "")
	call(t, "GET", a.proxy+"/.latch/reset/validate?token="+token, "", "", "").wantErr(t, 403, "UsedTokenError", "")
	for _, in := range []*instance{a, b} {
		loginToken(t, in, userEmail, alicePass)
	}

	// 50 concurrent redemptions of one link, alternating replicas.
	token = linkToken(t, issueLink(t, b, admin, viewEmail))
	var (
		wg     sync.WaitGroup
		begin  = make(chan struct{})
		wins   atomic.Int32
		used   atomic.Int32
		winner atomic.Value
	)
	for i := range 50 {
		in := a
		if i%2 == 1 {
			in = b
		}
		wg.Go(func() {
			<-begin
			pw := fmt.Sprintf("Race-Passw0rd-%02d!", i)
			body, _ := json.Marshal(map[string]string{"token": token, "password": pw})
			resp, err := http.Post(in.proxy+"/.latch/reset/redeem", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				wins.Add(1)
				winner.Store(pw)
			case 403:
				used.Add(1)
			default:
				t.Errorf("redeemer %d: got %d", i, resp.StatusCode)
			}
		})
	}
	close(begin)
	wg.Wait()
	if wins.Load() != 1 || used.Load() != 49 {
		t.Fatalf("50 redeemers on two replicas: %d wins and %d used, want 1 and 49", wins.Load(), used.Load())
	}
	pw := winner.Load().(string)
	for _, in := range []*instance{a, b} {
		loginToken(t, in, viewEmail, pw)
		login(t, in, viewEmail, viewPass).wantErr(t, 401, "PasswordMismatch", "")
	}
}

// TestEtcdDown stops etcd under a running latch: reset and login answer 503
// ServiceUnavailableError, /readyz 503 naming the store, routes checked by
// the policy files alone keep working; all recover when etcd is back.
func TestEtcdDown(t *testing.T) {
	t.Parallel()
	s := newEtcdSetup(t, 1)
	s.requestTimeout = "1s"
	in := s.replica(t, "")
	admin := loginToken(t, in, adminEmail, adminPass)
	token := linkToken(t, issueLink(t, in, admin, userEmail))

	s.cluster.Stop(0)
	login(t, in, adminEmail, adminPass).wantErr(t, 503, "ServiceUnavailableError", "")
	call(t, "GET", in.proxy+"/.latch/reset/validate?token="+token, "", "", "").wantErr(t, 503, "ServiceUnavailableError", "unavailable")
	redeem(t, in, token, "Al1ce-New-Passw0rd!").wantErr(t, 503, "ServiceUnavailableError", "unavailable")
	// A latch JWT needs the user's password-change time from the store.
	issueLink(t, in, admin, viewEmail).wantErr(t, 503, "ServiceUnavailableError", "")
	// An API token needs only the policy files.
	if r := call(t, "GET", in.proxy+"/api/admin/features", s.apiToken, "", ""); r.status != 200 || r.body["user"] != "ops@example.com" {
		t.Errorf("protected route with an API token, etcd down: %d %s", r.status, r.raw)
	}
	code, body := getJSON(t, in.admin+"/readyz")
	failing, _ := body["failing"].(map[string]any)
	if code != 503 || failing["store"] == nil {
		t.Errorf("/readyz with etcd down: %d %v, want 503 naming the store", code, body)
	}

	s.cluster.Restart(0)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _ := getJSON(t, in.admin+"/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not recover after etcd came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The link issued before the outage still works: nothing was lost.
	if r := redeem(t, in, token, "Al1ce-New-Passw0rd!"); r.status != 200 {
		t.Errorf("redeem after recovery: %d %s", r.status, r.raw)
	}
	loginToken(t, in, userEmail, "Al1ce-New-Passw0rd!")
	linkToken(t, issueLink(t, in, admin, viewEmail))
}

// TestEtcdFailover stops the leader of a three-member etcd cluster under a
// steady stream of issuances and redemptions through two replicas: every
// link answered 200 stays redeemable, no link is redeemed twice, and the
// stream goes on once a new leader is elected.
func TestEtcdFailover(t *testing.T) {
	t.Parallel()
	s := newEtcdSetup(t, 3)
	s.requestTimeout = "5s"
	const workers = 4
	seed, err := etcdstore.Open(etcdstore.Options{Endpoints: s.cluster.Endpoints(), Prefix: s.prefix})
	if err != nil {
		t.Fatal(err)
	}
	for w := range workers {
		if _, err := seed.AddUser(context.Background(), fmt.Sprintf("w%d@example.com", w), nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	seed.Close()
	replicas := []*instance{s.replica(t, "reset:\n  min_interval: 0s\n"), s.replica(t, "reset:\n  min_interval: 0s\n")}
	admin := loginToken(t, replicas[0], adminEmail, adminPass)

	type tally struct{ issued, redeemed, ambiguous, afterStop int }
	var (
		stopped  atomic.Bool
		finish   = make(chan struct{})
		wg       sync.WaitGroup
		tallies  [workers]tally
		lastPass [workers]string
		after    [workers]atomic.Bool // the worker redeemed after the stop
	)
	// untilAnswered retries a request while it answers 503, up to 30 times.
	untilAnswered := func(send func() answer) (a answer, saw503 bool) {
		for range 30 {
			if a = send(); a.status != 503 {
				return a, saw503
			}
			saw503 = true
			time.Sleep(100 * time.Millisecond)
		}
		return a, saw503
	}
	for w := range workers {
		email := fmt.Sprintf("w%d@example.com", w)
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-finish:
					return
				default:
				}
				in, other := replicas[n%2], replicas[(n+1)%2]
				a := issueLink(t, in, admin, email)
				if a.status == 503 {
					continue // not issued, or issued and superseded by the next
				}
				link, _ := a.body["resetPasswordUrl"].(string)
				_, token, ok := strings.Cut(link, "token=")
				if a.status != 200 || !ok {
					t.Errorf("%s: issuing a link: %d %s", email, a.status, a.raw)
					return
				}
				tallies[w].issued++
				pw := fmt.Sprintf("Fail0ver-Pass-%d-%d!", w, n)
				r, saw503 := untilAnswered(func() answer { return redeem(t, other, token, pw) })
				switch {
				case r.status == 200:
					tallies[w].redeemed++
				case r.status == 403 && saw503:
					// A redemption that timed out had been applied.
					tallies[w].ambiguous++
				default:
					t.Errorf("%s: a link answered 200 then redeemed with %d %s", email, r.status, r.raw)
					return
				}
				lastPass[w] = pw
				if stopped.Load() {
					tallies[w].afterStop++
					after[w].Store(true)
				}
				if r, _ := untilAnswered(func() answer { return redeem(t, in, token, pw+"x") }); r.status != 403 {
					t.Errorf("%s: replaying a redeemed link answered %d %s, want 403", email, r.status, r.raw)
					return
				}
			}
		})
	}

	time.Sleep(time.Second)
	leader := s.cluster.Leader()
	if leader < 0 {
		t.Fatal("no etcd leader")
	}
	s.cluster.Stop(leader)
	stopped.Store(true)
	// Go on for 3s, and then until every worker has redeemed since the stop
	// (a request may wait out the election and its 5s timeout first); one
	// that has not within 30s fails below.
	stoppedAt := time.Now()
	for {
		time.Sleep(250 * time.Millisecond)
		all := true
		for w := range workers {
			all = all && after[w].Load()
		}
		if since := time.Since(stoppedAt); since >= 3*time.Second && all || since >= 30*time.Second {
			break
		}
	}
	close(finish)
	wg.Wait()

	redeemed, ambiguous := 0, 0
	for w, tl := range tallies {
		t.Logf("worker %d: %+v", w, tl)
		redeemed += tl.redeemed
		ambiguous += tl.ambiguous
		if tl.afterStop == 0 {
			t.Errorf("worker %d redeemed nothing after the leader stopped", w)
		}
		if lastPass[w] == "" {
			continue
		}
		for _, in := range replicas {
			loginToken(t, in, fmt.Sprintf("w%d@example.com", w), lastPass[w])
		}
	}
	// Each redemption was counted once, by the replica that applied it. An
	// ambiguous one (503, then 403 on retry) was applied by etcd, but the
	// replica may have lost the answer and so not counted it.
	var counted float64
	for _, in := range replicas {
		fams := parseMetrics(t, scrapeMetrics(t, in.admin))
		counted += metricValue(t, fams, "latch_reset_tokens_redeemed_total", nil)
		if up := metricValue(t, fams, "latch_store_etcd_up", nil); up != 1 {
			t.Errorf("latch_store_etcd_up = %v after failover, want 1", up)
		}
	}
	if int(counted) < redeemed || int(counted) > redeemed+ambiguous {
		t.Errorf("latch_reset_tokens_redeemed_total over both replicas = %v, want %d to %d (%d redeemed, %d ambiguous)",
			counted, redeemed, redeemed+ambiguous, redeemed, ambiguous)
	}
}

// TestEtcdMigrate copies a bbolt store to etcd and back with `latch store
// migrate`: users, password hashes (logins work) and live reset links
// survive both trips.
func TestEtcdMigrate(t *testing.T) {
	t.Parallel()
	s := newEtcdSetup(t, 1)
	s.prefix = "/latch-migrated/" // empty: the seeded users come from bbolt
	runCLI := func(args ...string) string {
		t.Helper()
		var out syncBuffer
		if err := run(context.Background(), args, nil, strings.NewReader(""), &out, &out); err != nil {
			t.Fatalf("latch %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	writeConfig := func(dir string) string {
		path := filepath.Join(dir, "latch.yaml")
		if err := os.WriteFile(path, []byte(s.config(t, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	// A bbolt store with a user, a password and a live link.
	dir1 := t.TempDir()
	cfg1 := writeConfig(dir1)
	if err := os.MkdirAll(filepath.Join(dir1, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	bolt, err := resetstore.Open(filepath.Join(dir1, "data", "latch.db"), resetstore.Options{Hash: etcdCheapHash})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := bolt.AddUser(ctx, adminEmail, []string{"admin"}, adminPass); err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.AddUser(ctx, userEmail, nil, ""); err != nil {
		t.Fatal(err)
	}
	token, _, err := bolt.IssueResetToken(ctx, userEmail)
	if err != nil {
		t.Fatal(err)
	}
	if err := bolt.Close(); err != nil {
		t.Fatal(err)
	}

	out := runCLI("store", "migrate", "--config", cfg1, "--from", "bbolt", "--to", "etcd")
	if want := "copied 2 users and 1 live reset tokens from bbolt to etcd"; !strings.Contains(out, want) {
		t.Errorf("migrate to etcd said %q, want %q", out, want)
	}
	in := startLatchArgs(t, dir1, []string{"serve", "--config", cfg1}, []string{"LATCH_STORE_BACKEND=etcd"})
	loginToken(t, in, adminEmail, adminPass)
	if v := call(t, "GET", in.proxy+"/.latch/reset/validate?token="+token, "", "", ""); v.status != 200 || v.body["email"] != userEmail {
		t.Errorf("the bbolt link on etcd: %d %s", v.status, v.raw)
	}
	in.stop(t)

	// Back into a fresh bbolt store.
	dir2 := t.TempDir()
	cfg2 := writeConfig(dir2)
	out = runCLI("store", "migrate", "--config", cfg2, "--from", "etcd", "--to", "bbolt")
	if want := "copied 2 users and 1 live reset tokens from etcd to bbolt"; !strings.Contains(out, want) {
		t.Errorf("migrate to bbolt said %q, want %q", out, want)
	}
	in = startLatchArgs(t, dir2, []string{"serve", "--config", cfg2}, []string{"LATCH_STORE_BACKEND=bbolt"})
	loginToken(t, in, adminEmail, adminPass)
	const pw = "Migrated-Passw0rd!"
	if r := redeem(t, in, token, pw); r.status != 200 {
		t.Fatalf("the link after bbolt → etcd → bbolt: %d %s", r.status, r.raw)
	}
	loginToken(t, in, userEmail, pw)

	// Usage mistakes.
	var buf syncBuffer
	for _, args := range [][]string{
		{"store"},
		{"store", "copy"},
		{"store", "migrate", "--config", cfg2, "--from", "etcd", "--to", "etcd"},
		{"store", "migrate", "--config", cfg2, "--from", "sql", "--to", "etcd"},
	} {
		if err := run(ctx, args, nil, nil, &buf, &buf); err == nil {
			t.Errorf("latch %v: got nil error", args)
		}
	}
	if err := run(ctx, []string{"store", "migrate", "--config", cfg1, "--from", "bbolt", "--to", "etcd"}, nil, nil, &buf, &buf); err != nil {
		t.Errorf("migrating again: %v", err)
	}
	empty := writeConfig(t.TempDir())
	if err := run(ctx, []string{"store", "migrate", "--config", empty, "--from", "bbolt", "--to", "etcd"}, nil, nil, &buf, &buf); err == nil ||
		!strings.Contains(err.Error(), "no store at") {
		t.Errorf("migrating from a missing bbolt file: %v", err)
	}
}
