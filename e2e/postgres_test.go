//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// pgBin is where Debian's postgresql package puts the server programs of
// its newest installed major version (15 on bookworm):
// /usr/lib/postgresql/<major>/bin. LATCH_E2E_PG_BIN overrides it.
func pgBin() string {
	if dir := os.Getenv("LATCH_E2E_PG_BIN"); dir != "" {
		return dir
	}
	best, bestMajor := "/usr/lib/postgresql/15/bin", -1
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	for _, m := range matches {
		dir := filepath.Dir(m)
		if major, err := strconv.Atoi(filepath.Base(filepath.Dir(dir))); err == nil && major > bestMajor {
			best, bestMajor = dir, major
		}
	}
	return best
}

// startPostgres runs a throwaway PostgreSQL cluster on 127.0.0.1 and a
// free port, in a fresh directory, trusting connections (it accepts only
// loopback ones and holds nothing of value), without fsync. It returns a
// DATABASE_URL for the database "unleash" of the superuser "unleash".
//
// PostgreSQL refuses to run as root. As root, initdb and the server run
// as the user "postgres" that Debian's package creates, in a directory it
// owns (the test's own temp dirs are root's, mode 0700).
func startPostgres(t *testing.T) string {
	t.Helper()
	bin := pgBin()
	need(t, "PostgreSQL (Debian's postgresql)", filepath.Join(bin, "postgres"))

	dir, err := os.MkdirTemp("", "latch-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // after the server stopped: cleanups run last-in first-out
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs another user and there is no \"postgres\": %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	as := func(cmd *exec.Cmd) *exec.Cmd {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = dir
		return cmd
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // initdb and createdb
	defer cancel()
	initdb := as(exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "unleash", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"))
	initdb.WaitDelay = 2 * time.Second
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}

	port := freePort(t)
	// SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for clients).
	pg := startProc(t, "postgres", syscall.SIGINT, 15*time.Second, as(exec.Command(filepath.Join(bin, "postgres"),
		"-D", data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
	)))
	pg.waitLine(t, regexp.MustCompile(`database system is ready to accept connections`), 60*time.Second)

	createdb := exec.CommandContext(ctx, filepath.Join(bin, "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "unleash", "unleash")
	createdb.WaitDelay = 2 * time.Second
	if out, err := createdb.CombinedOutput(); err != nil {
		t.Fatalf("createdb: %v\n%s", err, out)
	}
	return fmt.Sprintf("postgres://unleash@127.0.0.1:%d/unleash", port)
}
