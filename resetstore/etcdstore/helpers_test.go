package etcdstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-dev/latch/resetstore"
	"github.com/latch-dev/latch/resetstore/etcdstore"
	"github.com/latch-dev/latch/resetstore/etcdstore/etcdtest"
)

// cheapHash keeps argon2id fast in tests; the format is the same.
var cheapHash = resetstore.HashParams{Time: 1, MemoryKiB: 64, Threads: 1}

var ctx = context.Background()

// prefixes gives every store opened by a test its own key space.
var prefixes atomic.Int64

func uniquePrefix() string { return fmt.Sprintf("/t%d/", prefixes.Add(1)) }

// open opens a store on c with cheap hashing and a short request timeout,
// closed when the test ends. A zero opts.Prefix means a fresh one.
func open(t testing.TB, c *etcdtest.Cluster, opts etcdstore.Options) *etcdstore.Store {
	t.Helper()
	opts.Endpoints = c.Endpoints()
	if opts.Prefix == "" {
		opts.Prefix = uniquePrefix()
	}
	if opts.Hash == (resetstore.HashParams{}) {
		opts.Hash = cheapHash
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 2 * time.Second
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = time.Second
	}
	s, err := etcdstore.Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func mustAddUser(t testing.TB, s *etcdstore.Store, email, password string) {
	t.Helper()
	if _, err := s.AddUser(ctx, email, nil, password); err != nil {
		t.Fatalf("AddUser(%q): %v", email, err)
	}
}

func mustIssue(t testing.TB, s *etcdstore.Store, email string) string {
	t.Helper()
	tok, _, err := s.IssueResetToken(ctx, email)
	if err != nil {
		t.Fatalf("IssueResetToken(%q): %v", email, err)
	}
	return tok
}
