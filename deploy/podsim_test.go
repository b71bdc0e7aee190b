package deploy_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/latch-dev/latch/proxy/authn"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// latchBinary builds latch from this working tree once per test process.
func latchBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(envLatchBin); p != "" {
		return p
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "latch-deploy-test-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "latch")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", builtBin, "./cmd/latch")
		cmd.Dir = repo(t, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/latch: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

const (
	envInPod    = "LATCH_DEPLOY_TEST_IN_POD" // set in the re-executed test inside the pod's namespaces
	envLatchBin = "LATCH_DEPLOY_TEST_BIN"
)

// TestPodSimulation runs the base's pod as far as one can without a
// cluster. The test re-executes itself in a new user and network namespace,
// so latch binds the manifest's fixed ports on a loopback of its own, as
// in a pod's network namespace. There it:
//   - lays the ConfigMap and the signing key Secret out as the kubelet does
//     (timestamped dir, ..data symlink, per-file symlinks), mapping the
//     volumeMounts' absolute paths into a temp root;
//   - runs the first-admin Job's command on the data volume;
//   - starts latch with the container's exact command, args and env plus
//     Kubernetes service-link variables, and a stand-in app on the
//     upstream's loopback port;
//   - probes what the readiness and liveness probes name until ready;
//   - redeems nothing, but validates the Job's reset link through latch;
//   - swaps the ConfigMap the kubelet way with a policy that lets viewers
//     read one more route, and sees that route's answer go from 403 to the
//     app's 200 and latch_policy_info's hash change to the new files'.
func TestPodSimulation(t *testing.T) {
	if os.Getenv(envInPod) == "" {
		t.Parallel()
		runInPodNamespaces(t)
		return
	}
	inPod(t)
}

// runInPodNamespaces re-executes this test in new user and network
// namespaces and reports its output.
func runInPodNamespaces(t *testing.T) {
	bin := latchBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPodSimulation$", "-test.v", "-test.count=1", "-test.timeout=110s")
	cmd.Env = append(os.Environ(), envInPod+"=1", envLatchBin+"="+bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		// The namespaces could not be made (user namespaces disabled).
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot start the pod simulation in new user and network namespaces: %v", err)
		}
		t.Skipf("cannot start the pod simulation in new user and network namespaces: %v", err)
	case err != nil:
		t.Fatalf("the pod simulation failed (%v):\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestPodSimulation") {
		t.Fatalf("the pod simulation did not pass:\n%s", out)
	}
	if testing.Verbose() {
		t.Logf("pod simulation:\n%s", out)
	}
}

// loopbackUp brings up lo in this (new) network namespace, as the
// container runtime does for a pod.
func loopbackUp(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatalf("bringing lo up: %v", err)
	}
}

// serviceLinks are the variables the kubelet would set for svc (when
// enableServiceLinks is true), as if it were named name, at clusterIP.
func serviceLinks(name, clusterIP string, svc *corev1.Service) []string {
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil // headless Services get none
	}
	p := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	first := svc.Spec.Ports[0]
	env := []string{
		p + "_SERVICE_HOST=" + clusterIP,
		fmt.Sprintf("%s_SERVICE_PORT=%d", p, first.Port),
		fmt.Sprintf("%s_PORT=%s://%s:%d", p, strings.ToLower(string(protocol(first))), clusterIP, first.Port),
	}
	for _, sp := range svc.Spec.Ports {
		proto := string(protocol(sp))
		if sp.Name != "" {
			env = append(env, fmt.Sprintf("%s_SERVICE_PORT_%s=%d", p, strings.ToUpper(strings.ReplaceAll(sp.Name, "-", "_")), sp.Port))
		}
		pre := fmt.Sprintf("%s_PORT_%d_%s", p, sp.Port, proto)
		env = append(env,
			fmt.Sprintf("%s=%s://%s:%d", pre, strings.ToLower(proto), clusterIP, sp.Port),
			pre+"_PROTO="+strings.ToLower(proto),
			fmt.Sprintf("%s_PORT=%d", pre, sp.Port),
			pre+"_ADDR="+clusterIP)
	}
	return env
}

func protocol(sp corev1.ServicePort) corev1.Protocol {
	if sp.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return sp.Protocol
}

func inPod(t *testing.T) {
	loopbackUp(t)
	bin := latchBinary(t)
	objs, k := baseObjects(t)
	root := t.TempDir()
	p := latchPod(t, objs, k, root)
	cfg := p.cfg

	// The app: a stand-in on the upstream's loopback port.
	up, err := url.Parse(cfg.Upstream)
	if err != nil {
		t.Fatal(err)
	}
	appLn, err := net.Listen("tcp", up.Host)
	if err != nil {
		t.Fatalf("the app's port %s: %v", up.Host, err)
	}
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app: %s %s as %s\n", r.Method, r.URL.Path, r.Header.Get(cfg.Auth.UserHeader))
	}), ReadHeaderTimeout: 5 * time.Second}
	go app.Serve(appLn)
	t.Cleanup(func() { app.Close() })

	// The first-admin Job, on the same volumes.
	job := find[batchv1.Job](t, decodeFiles(t, repo(t, "deploy/kubernetes/jobs"), "first-admin.yaml"), "")
	jc := job.Spec.Template.Spec.Containers[0]
	var jobEnv []string
	for _, e := range jc.Env {
		jobEnv = append(jobEnv, e.Name+"="+p.mapPath(e.Value))
	}
	jobCtx, jobCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer jobCancel()
	jobCmd := exec.CommandContext(jobCtx, bin, p.mapPaths(append(jc.Command[1:], jc.Args...))...)
	jobCmd.Env = jobEnv
	jobOut, err := jobCmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the first-admin Job's command: %v\n%s", err, jobOut)
	}
	link := regexp.MustCompile(`reset link \(valid until [^)]*\): (\S+)`).FindSubmatch(jobOut)
	if link == nil {
		t.Fatalf("the first-admin Job printed no reset link:\n%s", jobOut)
	}
	resetURL, err := url.Parse(string(link[1]))
	if err != nil || !strings.HasPrefix(resetURL.String(), cfg.PublicURL+"/") {
		t.Errorf("reset link %s does not start with public_url %s", link[1], cfg.PublicURL)
	}

	// latch, with the container's command, args and env, and service links.
	env := append([]string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME=legacy-app-5d9c7b6f4-x2x7k",
		"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443",
	}, p.env...)
	for i, svc := range all[corev1.Service](objs) {
		ip := fmt.Sprintf("10.96.0.%d", 20+i)
		env = append(env, serviceLinks(svc.Name, ip, svc)...)
		env = append(env, serviceLinks("latch", ip, svc)...) // as if it were named latch
	}
	if !strings.Contains(strings.Join(env, " "), "LATCH_SERVICE_HOST=") {
		t.Fatal("no LATCH_SERVICE_HOST among the simulated service links")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, p.command[1:]...)
	cmd.Env = env
	cmd.Dir = root
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("latch's output:\n%s", logs.String())
		}
	})

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(u string, hdr http.Header) (int, string, error) {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return 0, "", err
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	// poll retries f every 100ms until it is true, latch exits, or 30s pass.
	poll := func(what string, f func() bool) {
		t.Helper()
		deadline := time.NewTimer(30 * time.Second)
		defer deadline.Stop()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for !f() {
			select {
			case err := <-exited:
				stopped = true
				t.Fatalf("latch exited (%v) while waiting for %s", err, what)
			case <-deadline.C:
				t.Fatalf("timed out waiting for %s", what)
			case <-tick.C:
			}
		}
	}

	probeURL := func(pr *corev1.Probe) string {
		return fmt.Sprintf("http://127.0.0.1:%d%s", resolvePort(p.latch, pr.HTTPGet.Port), pr.HTTPGet.Path)
	}
	ready, live := probeURL(p.latch.ReadinessProbe), probeURL(p.latch.LivenessProbe)
	poll("the readinessProbe "+ready+" to answer 200", func() bool {
		code, _, _ := get(ready, nil)
		return code == http.StatusOK
	})
	if code, body, err := get(live, nil); code != http.StatusOK {
		t.Errorf("livenessProbe %s: %d %s %v", live, code, body, err)
	}

	_, listenPort, _ := net.SplitHostPort(cfg.Listen)
	_, adminPort, _ := net.SplitHostPort(cfg.AdminListen)
	proxyURL := "http://127.0.0.1:" + listenPort
	metricsURL := "http://127.0.0.1:" + adminPort + "/metrics"

	// The Job's admin can set a password through this latch.
	vURL := proxyURL + "/.latch/reset/validate?token=" + url.QueryEscape(resetURL.Query().Get("token"))
	if code, body, err := get(vURL, nil); code != http.StatusOK || !strings.Contains(body, "admin@example.com") {
		t.Errorf("validating the Job's reset link: %d %s %v", code, body, err)
	}

	cmDir := filepath.Join(root, p.configMount)
	policyHash := func(data map[string]string) string {
		sum := sha256.Sum256([]byte(data[filepath.Base(cfg.Policy.Model)] + data[filepath.Base(cfg.Policy.Rules)]))
		return hex.EncodeToString(sum[:])[:12]
	}
	infoRE := regexp.MustCompile(`(?m)^latch_policy_info\{hash="([0-9a-f]+)"\} 1$`)
	servedHash := func() string {
		_, body, _ := get(metricsURL, nil)
		if m := infoRE.FindStringSubmatch(body); m != nil {
			return m[1]
		}
		return ""
	}
	if got, want := servedHash(), policyHash(p.cm.Data); got != want {
		t.Fatalf("latch_policy_info hash %q, want %q (the ConfigMap's files)", got, want)
	}

	// A viewer's token, signed with the Secret's key.
	a, err := authn.New(authn.Options{SigningKeyFile: cfg.Auth.SigningKeyFile})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.Mint("carol@example.com", []string{"viewer"}, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	bearer := http.Header{"Authorization": {"Bearer " + tok}}
	const route = "/api/admin/deploy-test"
	if code, body, err := get(proxyURL+route, bearer); code != http.StatusForbidden {
		t.Fatalf("GET %s as a viewer before the change: %d %s %v, want 403", route, code, body, err)
	}

	// The kubelet's swap: a new timestamped dir, ..data renamed over.
	newData := map[string]string{}
	for k, v := range p.cm.Data {
		newData[k] = v
	}
	rules := filepath.Base(cfg.Policy.Rules)
	newData[rules] += "\np, role:viewer, " + route + ", ^GET$, allow\n"
	kubeletWrite(t, cmDir, newData, 0o644, time.Unix(2, 0))
	want := policyHash(newData)
	poll("latch_policy_info to show the swapped policy's hash "+want, func() bool { return servedHash() == want })
	if code, body, err := get(proxyURL+route, bearer); code != http.StatusOK || !strings.Contains(body, "app: GET "+route+" as carol@example.com") {
		t.Errorf("GET %s as a viewer after the change: %d %q %v, want the app's 200", route, code, body, err)
	}

	// SIGTERM, as the kubelet stops the container: a clean exit.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped = true
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("latch exited with %v after SIGTERM", err)
		}
	case <-time.After(time.Duration(cfg.ShutdownGrace.D()) + 10*time.Second):
		cmd.Process.Kill()
		<-exited
		t.Error("latch did not exit within shutdown_grace after SIGTERM")
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("latch logged errors:\n%s", logs.String())
	}
	t.Logf("latch's log:\n%s", firstLines(logs.String(), 12))
}

func firstLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var b strings.Builder
	for i := 0; i < n && sc.Scan(); i++ {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
