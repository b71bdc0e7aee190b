// Package etcdtest runs a real etcd cluster inside a test process, on
// loopback with free ports and data in t.TempDir(), for the tests of
// etcdstore and of cmd/latch. Only tests import it; the latch binary does
// not link the etcd server.
//
// Members use short heartbeat and election timeouts (25ms, 250ms) so that a
// stopped leader is replaced within about a second, and skip fsync: the
// tests are about latch, not about etcd's durability.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// startTimeout bounds waiting for a member to join its cluster.
const startTimeout = 30 * time.Second

// Cluster is a running embedded etcd cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	members []*member
}

type member struct {
	name       string
	dir        string
	client     url.URL
	peer       url.URL
	etcd       *embed.Etcd // nil while stopped
	initial    string
	clusterTok string
}

// Start starts an n-member cluster and waits until it is serving. It is
// stopped when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	tok := fmt.Sprintf("latch-test-%d", time.Now().UnixNano())
	var initial []string
	for i := range n {
		m := &member{name: fmt.Sprintf("m%d", i), dir: filepath.Join(t.TempDir(), "etcd"), clusterTok: tok}
		m.client, m.peer = freeURL(t), freeURL(t)
		initial = append(initial, m.name+"="+m.peer.String())
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
	}
	t.Cleanup(c.Close)
	for i := range c.members {
		c.startMember(i)
	}
	for i := range c.members {
		c.waitReady(i)
	}
	return c
}

// freeURL returns an http URL on a loopback port free right now.
func freeURL(t testing.TB) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

func (c *Cluster) startMember(i int) {
	c.t.Helper()
	m := c.members[i]
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{m.client}, []url.URL{m.client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{m.peer}, []url.URL{m.peer}
	cfg.InitialCluster = m.initial
	cfg.InitialClusterToken = m.clusterTok
	cfg.TickMs, cfg.ElectionMs = 25, 250
	cfg.UnsafeNoFsync = true
	cfg.EnableGRPCGateway = false
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(filepath.Dir(m.dir), m.name+".log")}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		c.t.Fatalf("etcdtest: starting member %s: %v", m.name, err)
	}
	m.etcd = e
}

func (c *Cluster) waitReady(i int) {
	c.t.Helper()
	e := c.members[i].etcd
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		c.t.Fatalf("etcdtest: member %s failed: %v", c.members[i].name, err)
	case <-time.After(startTimeout):
		c.t.Fatalf("etcdtest: member %s not ready after %v", c.members[i].name, startTimeout)
	}
}

// Endpoints are the client URLs of every member, running or not.
func (c *Cluster) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.client.String())
	}
	return eps
}

// Leader is the index of the member that leads, or -1 if none is known.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.members {
		if m.etcd != nil && m.etcd.Server.Leader() != 0 && m.etcd.Server.Leader() == m.etcd.Server.MemberID() {
			return i
		}
	}
	return -1
}

// Stop stops member i, keeping its data, as a crash or shutdown would.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.members[i]; m.etcd != nil {
		m.etcd.Close()
		m.etcd = nil
	}
}

// Restart starts a stopped member i again on its ports and data, and waits
// until it serves.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.members[i].etcd != nil {
		return
	}
	c.startMember(i)
	c.waitReady(i)
}

// Close stops every member. It is safe to call more than once.
func (c *Cluster) Close() {
	for i := range c.members {
		c.Stop(i)
	}
}
