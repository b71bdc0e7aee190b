package deploy_test

import (
	"context"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/proxy/authn"
)

// kustomizeVersion is the kustomize CLI the tests run, as a Go module
// through the module proxy (the newest release that builds with Go 1.26).
const kustomizeVersion = "v5.8.2"

// tool finds an installed program, or skips (fails under CI=1, where
// .ci/deps installs it).
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; .ci/deps installs Debian's %s", name, pkg)
	}
	t.Skipf("%s is not installed; `make deps` installs Debian's %s", name, pkg)
	return ""
}

// copyTree copies dir src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKustomizeBuild renders the base and the etcd overlay with the pinned
// kustomize (go run, so the first run downloads and builds it), decodes the
// output strictly, and holds it to the checks the plain base passes; the
// overlay must run three replicas on etcd with a budget keeping two.
func TestKustomizeBuild(t *testing.T) {
	t.Parallel()
	// A copy, with the files the README has a user make: the signing key
	// (latch keygen) and the etcd credentials.
	dir := t.TempDir()
	copyTree(t, repo(t, "deploy/kubernetes"), dir)
	os.WriteFile(filepath.Join(dir, "base", "signing.key"), []byte(testKey(t)), 0o600)
	os.WriteFile(filepath.Join(dir, "overlays/etcd/etcd-password"), []byte("etcd-secret\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "overlays/etcd/etcd-ca.pem"), []byte("-----BEGIN CERTIFICATE-----\n"), 0o600)

	build := func(t *testing.T, kdir string) []object {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "run", "sigs.k8s.io/kustomize/kustomize/v5@"+kustomizeVersion, "build", kdir)
		cmd.Dir = dir // outside any module: go run pkg@version ignores go.mod
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kustomize build %s: %v\n%s", kdir, err, stderr.String())
		}
		return decodeAll(t, "kustomize build "+filepath.Base(kdir), out)
	}
	k := readKustomization(t, filepath.Join(dir, "base"))

	t.Run("base", func(t *testing.T) {
		objs := build(t, filepath.Join(dir, "base"))
		// The generated Secret carries the key file under the key name
		// latch's config points at (checkPod), with a hashed name the
		// Deployment refers to.
		var sec *corev1.Secret
		for _, s := range all[corev1.Secret](objs) {
			if strings.HasPrefix(s.Name, "latch-signing-key-") {
				sec = s
			}
		}
		if sec == nil {
			t.Fatal("kustomize made no latch-signing-key Secret")
		}
		key := generatedKey(t, k, "latch-signing-key")
		if len(sec.Data[key]) == 0 {
			t.Errorf("Secret %s has no %s", sec.Name, key)
		}
		p := checkPod(t, objs, k, t.TempDir())
		var ref string
		for _, v := range p.dep.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				ref = v.Secret.SecretName
			}
		}
		if ref != sec.Name {
			t.Errorf("the Deployment mounts Secret %q, kustomize made %q", ref, sec.Name)
		}
		if !strings.Contains(p.dep.Spec.Template.Spec.Containers[1].Image+p.dep.Spec.Template.Spec.Containers[0].Image, "registry.example.com/latch:") {
			t.Error("kustomize's images: did not set latch's image")
		}
	})
	t.Run("overlays/etcd", func(t *testing.T) {
		objs := build(t, filepath.Join(dir, "overlays/etcd"))
		// The overlay's generated etcd Secret: lay it out from the output.
		p := checkPod(t, objs, k, t.TempDir())
		dep := find[appsv1.Deployment](t, objs, "")
		if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 3 {
			t.Errorf("replicas %v, want 3", dep.Spec.Replicas)
		}
		if dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
			t.Errorf("strategy %s, want RollingUpdate", dep.Spec.Strategy.Type)
		}
		if p.cfg.Store.Backend != "etcd" || len(p.cfg.Store.Etcd.Endpoints) == 0 {
			t.Errorf("store %q endpoints %q, want etcd", p.cfg.Store.Backend, p.cfg.Store.Etcd.Endpoints)
		}
		for _, f := range []string{p.cfg.Store.Etcd.PasswordFile, p.cfg.Store.Etcd.CAFile} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("etcd file %s is not on a mounted volume: %v", f, err)
			}
		}
		if len(all[corev1.PersistentVolumeClaim](objs)) != 0 {
			t.Error("the etcd overlay still makes a PersistentVolumeClaim")
		}
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				t.Errorf("volume %s still claims a PersistentVolumeClaim", v.Name)
			}
		}
		pdb := find[policyv1.PodDisruptionBudget](t, objs, "")
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 2 || pdb.Spec.MaxUnavailable != nil {
			t.Errorf("PodDisruptionBudget minAvailable %v maxUnavailable %v, want 2 and none", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
		}
	})
}

// TestSystemdUnit: `systemd-analyze verify` accepts latch.service without
// a word, and the unit has the hardening and the commands the README
// promises.
//
// verify checks that ExecStart's binary exists and is executable, so the
// test verifies a copy in a temp dir whose ExecStart names a latch built
// from this tree in place of /usr/local/bin/latch; nothing else changes.
// verify prints warnings (an unknown or misspelt setting) but exits 0, so
// any output fails the test too. --man=no: no man pages to look up here.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	unit := string(readFile(t, repo(t, "deploy/systemd/latch.service")))
	settings := map[string][]string{}
	for _, l := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	want := map[string]string{
		"ProtectSystem": "strict", "StateDirectory": "latch", "NoNewPrivileges": "yes",
		"PrivateTmp": "yes", "ProtectHome": "yes", "CapabilityBoundingSet": "",
		"Restart": "on-failure", "ExecReload": "/bin/kill -HUP $MAINPID",
		"SystemCallFilter": "@system-service", "DynamicUser": "yes",
	}
	for k, v := range want {
		if !containsStr(settings[k], v) {
			t.Errorf("latch.service: want %s=%s, have %q", k, v, settings[k])
		}
	}
	if len(settings["RestrictAddressFamilies"]) == 0 {
		t.Error("latch.service: no RestrictAddressFamilies")
	}
	exec0 := settings["ExecStart"]
	if len(exec0) != 1 || !strings.HasPrefix(exec0[0], "/usr/local/bin/latch serve --config /etc/latch/latch.yaml") {
		t.Fatalf("ExecStart %q, want /usr/local/bin/latch serve --config /etc/latch/latch.yaml", exec0)
	}
	// The data_dir latch is told is the StateDirectory.
	if !containsStr(settings["Environment"], "LATCH_DATA_DIR=/var/lib/latch") {
		t.Errorf("Environment %q: want LATCH_DATA_DIR=/var/lib/latch (StateDirectory=latch)", settings["Environment"])
	}

	analyze := tool(t, "systemd-analyze", "systemd")
	bin := latchBinary(t)
	dir := t.TempDir()
	copyUnit := strings.Replace(unit, "ExecStart=/usr/local/bin/latch ", "ExecStart="+bin+" ", 1)
	path := filepath.Join(dir, "latch.service")
	if err := os.WriteFile(path, []byte(copyUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify latch.service: %v\n%s", err, out)
	}
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestCompose loads compose.yaml with compose-go's loader (schema
// validation on, unknown keys refused) and checks that the app is reachable
// only through latch, that latch forwards to it, and that Prometheus
// scrapes latch's admin port with a config promtool accepts.
func TestCompose(t *testing.T) {
	t.Parallel()
	dir := repo(t, "deploy/compose")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	project, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "compose.yaml")}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) {
		o.SkipValidation = false
		o.SkipInterpolation = false
		o.SkipResolveEnvironment = false
		o.SetProjectName("latch-demo", true)
	})
	if err != nil {
		t.Fatalf("compose-go: %v", err)
	}
	svc := func(name string) types.ServiceConfig {
		s, err := project.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	app, latch, prom := svc("app"), svc("latch"), svc("prometheus")

	// The app publishes nothing and shares only internal networks, each
	// with latch.
	if len(app.Ports) != 0 {
		t.Errorf("the app publishes ports %v", app.Ports)
	}
	for name := range app.Networks {
		if !project.Networks[name].Internal {
			t.Errorf("the app is on network %s, which is not internal", name)
		}
		if _, ok := latch.Networks[name]; !ok {
			t.Errorf("the app's network %s is not latch's", name)
		}
		if _, ok := prom.Networks[name]; ok {
			t.Errorf("Prometheus shares the app's network %s", name)
		}
	}
	// latch's upstream is the app's port.
	upstream := latch.Environment["LATCH_UPSTREAM"]
	appPort := regexp.MustCompile(`--port=(\d+)`).FindStringSubmatch(strings.Join(app.Command, " "))
	if upstream == nil || appPort == nil || *upstream != "http://app:"+appPort[1] {
		t.Errorf("LATCH_UPSTREAM %v, want http://app:<the app's --port %v>", upstream, appPort)
	}
	if latch.Build == nil || filepath.Clean(latch.Build.Context) != repo(t, ".") {
		t.Errorf("latch is not built from the repository's Dockerfile: %+v", latch.Build)
	}
	// The env it gets is a valid config on the image's config file.
	var env []string
	for k, v := range latch.Environment {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	imageCfg, err := config.Load(repo(t, "config/latch.example.yaml"), env)
	if err != nil {
		t.Fatalf("the image's config with compose's env: %v", err)
	}

	// Prometheus scrapes latch's admin port, by latch's service name.
	promCfg := readFile(t, filepath.Join(dir, "prometheus.yml"))
	var pc struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(promCfg, &pc); err != nil {
		t.Fatal(err)
	}
	_, adminPort, _ := net.SplitHostPort(imageCfg.AdminListen)
	found := false
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if containsStr(st.Targets, "latch:"+adminPort) && sc.JobName == "latch" {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("prometheus.yml has no job latch scraping latch:%s (admin_listen)", adminPort)
	}
	// promtool checks prometheus.yml with the files compose mounts beside
	// it, laid out as in the container.
	promtool := tool(t, "promtool", "prometheus")
	etc := t.TempDir()
	var promFile string
	for _, v := range prom.Volumes {
		if v.Type != types.VolumeTypeBind || !strings.HasPrefix(v.Target, "/etc/prometheus/") {
			continue
		}
		dst := filepath.Join(etc, strings.TrimPrefix(v.Target, "/etc/prometheus/"))
		if err := os.WriteFile(dst, readFile(t, v.Source), 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.Join(prom.Command, " "), "--config.file="+v.Target) {
			promFile = dst
		}
	}
	if promFile == "" {
		t.Fatal("Prometheus's --config.file is not a file compose mounts")
	}
	if out, err := exec.CommandContext(ctx, promtool, "check", "config", promFile).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
}

// ruleFile is a Prometheus rules file.
type ruleFile struct {
	Groups []monitoringv1.RuleGroup `json:"groups"`
}

// TestPrometheusRule: the PrometheusRule's group "latch" is exactly
// cmd/latch/testdata/alerts.yml (itself kept equal to the README's block,
// checked here too); all its groups pass `promtool check rules`, the
// existing rule unit tests (cmd/latch/testdata/alerts_test.yml) and this
// package's tests of the added alerts (testdata/alerts_deploy_test.yml).
func TestPrometheusRule(t *testing.T) {
	t.Parallel()
	objs, _ := baseObjects(t)
	pr := find[monitoringv1.PrometheusRule](t, objs, "")
	var tested ruleFile
	if err := yaml.UnmarshalStrict(readFile(t, repo(t, "cmd/latch/testdata/alerts.yml")), &tested); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	byName := map[string]monitoringv1.RuleGroup{}
	for _, g := range pr.Spec.Groups {
		byName[g.Name] = g
	}
	for _, g := range tested.Groups {
		if !reflect.DeepEqual(byName[g.Name], g) {
			t.Errorf("PrometheusRule group %q differs from cmd/latch/testdata/alerts.yml", g.Name)
		}
	}
	// The README's block is alerts.yml.
	readme := string(readFile(t, repo(t, "README.md")))
	if _, after, ok := strings.Cut(readme, "### Alerts"); !ok {
		t.Error("README has no ### Alerts section")
	} else if m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(after); m == nil {
		t.Error("README's Alerts section has no yaml block")
	} else {
		var doc ruleFile
		if err := yaml.UnmarshalStrict([]byte(m[1]), &doc); err != nil || !reflect.DeepEqual(doc, tested) {
			t.Errorf("README's alert rules differ from cmd/latch/testdata/alerts.yml (%v)", err)
		}
	}
	// Every alert names metrics latch serves (or up).
	golden := string(readFile(t, repo(t, "README.md")))
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			for _, m := range regexp.MustCompile(`\blatch_[a-z_]+`).FindAllString(r.Expr.String(), -1) {
				if !strings.Contains(golden, "`"+m+"`") {
					t.Errorf("alert %s uses %s, which README's metric tables do not list", r.Alert, m)
				}
			}
		}
	}

	promtool := tool(t, "promtool", "prometheus")
	dir := t.TempDir()
	rules, err := yaml.Marshal(ruleFile{Groups: pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	// alerts.yml is the name both unit-test files load.
	os.WriteFile(filepath.Join(dir, "alerts.yml"), rules, 0o644)
	os.WriteFile(filepath.Join(dir, "alerts_test.yml"), readFile(t, repo(t, "cmd/latch/testdata/alerts_test.yml")), 0o644)
	os.WriteFile(filepath.Join(dir, "alerts_deploy_test.yml"), readFile(t, repo(t, "deploy/testdata/alerts_deploy_test.yml")), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
		{"test", "rules", "alerts_deploy_test.yml"},
	} {
		cmd := exec.CommandContext(ctx, promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestOpenSSLKeys: the openssl lines deploy/README.md gives as the
// equivalents of latch keygen write a key latch's loader accepts, with mode
// 0600.
func TestOpenSSLKeys(t *testing.T) {
	t.Parallel()
	openssl := tool(t, "openssl", "openssl")
	readme := string(readFile(t, repo(t, "deploy/README.md")))
	_, after, ok := strings.Cut(readme, "The same with `openssl`")
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(after)
	if !ok || m == nil {
		t.Fatal("deploy/README.md: no openssl block after \"The same with `openssl`\"")
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(m[1]), "\n") {
		if strings.Contains(l, "openssl ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("want an Ed25519 and an HS256 openssl line, got %q", lines)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, l := range lines {
		dir := t.TempDir()
		cmd := exec.CommandContext(ctx, "sh", "-c", l)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(openssl)+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", l, err, out)
			continue
		}
		key := filepath.Join(dir, "signing.key")
		fi, err := os.Stat(key)
		if err != nil {
			t.Errorf("%s wrote no signing.key: %v", l, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", l, fi.Mode().Perm())
		}
		if _, err := authn.New(authn.Options{SigningKeyFile: key}); err != nil {
			t.Errorf("%s: latch refuses the key: %v", l, err)
		}
	}
}
