//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// clientToken is the Unleash backend (SDK) token server.js is started
// with, for the default project and environment "development".
const clientToken = "default:development.e2e-client-token-0123456789abcdef"

// unleash is examples/unleash/server.js, running.
type unleash struct {
	url      string // base URL, http://127.0.0.1:PORT
	routeLog string // the hook's log of admin requests: "METHOD PATH ROLES" lines
	proc     *proc
}

// startUnleash runs examples/unleash/server.js on a free loopback port
// against dbURL. publicURL is latch's URL (Unleash's UNLEASH_URL). The
// first start on an empty database runs Unleash's migrations.
func startUnleash(t *testing.T, dbURL, publicURL string) *unleash {
	t.Helper()
	node := need(t, "Node.js", "node")
	dir := filepath.Join(repoRoot(t), "examples", "unleash")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "unleash-server", "package.json")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("examples/unleash has no node_modules and CI must run this test: run `make deps` (npm ci there)")
		}
		t.Skip("examples/unleash has no node_modules: run `make deps` (npm ci there)")
	}
	port := freePort(t)
	u := &unleash{
		url:      fmt.Sprintf("http://127.0.0.1:%d", port),
		routeLog: filepath.Join(t.TempDir(), "routes.log"),
	}
	cmd := exec.Command(node, "server.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(port),
		"DATABASE_URL="+dbURL,
		"UNLEASH_URL="+publicURL,
		"INIT_BACKEND_API_TOKENS="+clientToken,
		"LATCH_ROUTE_LOG="+u.routeLog,
		"LOG_LEVEL=warn",
		"NODE_ENV=production",
	)
	start := time.Now()
	u.proc = startProc(t, "unleash", 0, 20*time.Second, cmd)
	u.proc.waitLine(t, regexp.MustCompile(`unleash listening on `), 4*time.Minute)
	u.proc.waitHTTP(t, u.url+"/health", 200, 30*time.Second)
	t.Logf("unleash: up in %s", time.Since(start).Round(time.Millisecond))
	return u
}
