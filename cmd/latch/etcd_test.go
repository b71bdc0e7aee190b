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
	// requestTimeout is store.etcd.request_timeout; short, so that tests
	// of an unreachable etcd do not wait long.
	requestTimeout string
}

var etcdPrefixes atomic.Int64

// newEtcdSetup starts an n-member cluster and seeds the admin, the viewer
// and alice (no password), as seededLatch does for bbolt.
func newEtcdSetup(t *testing.T, members int) *etcdSetup {
	t.Helper()
	s := &etcdSetup{cluster: etcdtest.Start(t, members), prefix: fmt.Sprintf("/latch-e2e-%d/", etcdPrefixes.Add(1)),
		requestTimeout: "1s"}
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
	dir := t.TempDir()
	path := filepath.Join(dir, "latch.yaml")
	if err := os.WriteFile(path, []byte(s.config(t, extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	return startLatchArgs(t, dir, []string{"serve", "--config", path}, nil)
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
	return call(t, "POST", in.proxy+"/auth/reset/password", "", "application/json", string(b))
}

// TestEtcdTwoReplicas runs two latch replicas on one etcd: a link issued
// through one is validated and redeemed through the other, the rate limit
// is shared, 50 redemptions split across both have one winner, and the new
// password works on both.
func TestEtcdTwoReplicas(t *testing.T) {
	s := newEtcdSetup(t, 1)
	// 50 default-cost argon2 hashes (slower still under -race) hold both
	// cores for seconds, starving etcd's goroutines in this process.
	s.requestTimeout = "20s"
	a, b := s.replica(t, ""), s.replica(t, "")
	admin := loginToken(t, a, adminEmail, adminPass)

	token := linkToken(t, issueLink(t, a, admin, userEmail))
	v := call(t, "GET", b.proxy+"/auth/reset/validate?token="+token, "", "", "")
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
	call(t, "GET", a.proxy+"/auth/reset/validate?token="+token, "", "", "").wantErr(t, 403, "UsedTokenError", "")
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
			resp, err := http.Post(in.proxy+"/auth/reset/password", "application/json", bytes.NewReader(body))
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
	s := newEtcdSetup(t, 1)
	in := s.replica(t, "")
	admin := loginToken(t, in, adminEmail, adminPass)
	token := linkToken(t, issueLink(t, in, admin, userEmail))

	s.cluster.Stop(0)
	start := time.Now()
	login(t, in, adminEmail, adminPass).wantErr(t, 503, "ServiceUnavailableError", "")
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("login with etcd down took %v, want about request_timeout (1s)", took)
	}
	call(t, "GET", in.proxy+"/auth/reset/validate?token="+token, "", "", "").wantErr(t, 503, "ServiceUnavailableError", "unavailable")
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
