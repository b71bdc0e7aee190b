package deploy_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/latch-dev/latch/config"
	"github.com/latch-dev/latch/proxy"
)

// repo is the path of a file in the repository, from this package's dir.
func repo(t testing.TB, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// object is one decoded manifest.
type object struct {
	file, kind, name string
	obj              any // a pointer to the API type
}

// kinds maps apiVersion/kind to a new value of its Go API type.
var kinds = map[string]func() any{
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/PersistentVolumeClaim":                func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeAll decodes every YAML document of data strictly (an unknown or
// duplicate field is an error) into the API type its apiVersion and kind
// name.
func decodeAll(t testing.TB, file string, data []byte) []object {
	t.Helper()
	var out []object
	for i, doc := range docSep.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		o, err := decodeStrict(file, []byte(doc))
		if err != nil {
			t.Errorf("%s, document %d: %v", file, i+1, err)
			continue
		}
		out = append(out, o)
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func decodeStrict(file string, doc []byte) (object, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return object{}, err
	}
	mk, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return object{}, fmt.Errorf("%s/%s is not a kind this test knows", tm.APIVersion, tm.Kind)
	}
	v := mk()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return object{}, fmt.Errorf("%s %s: %w", tm.Kind, tm.Metadata.Name, err)
	}
	return object{file: file, kind: tm.Kind, name: tm.Metadata.Name, obj: v}, nil
}

// decodeFiles decodes the named files under dir.
func decodeFiles(t testing.TB, dir string, files ...string) []object {
	t.Helper()
	var all []object
	for _, f := range files {
		all = append(all, decodeAll(t, f, readFile(t, filepath.Join(dir, f)))...)
	}
	return all
}

// kustomization is the part of a kustomization.yaml the tests read.
type kustomization struct {
	Resources       []string `json:"resources"`
	SecretGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
	} `json:"secretGenerator"`
}

func readKustomization(t testing.TB, dir string) kustomization {
	t.Helper()
	var k kustomization
	if err := yaml.Unmarshal(readFile(t, filepath.Join(dir, "kustomization.yaml")), &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	return k
}

// baseObjects decodes every resource the base kustomization lists.
func baseObjects(t testing.TB) ([]object, kustomization) {
	t.Helper()
	dir := repo(t, "deploy/kubernetes/base")
	k := readKustomization(t, dir)
	return decodeFiles(t, dir, k.Resources...), k
}

func find[T any](t testing.TB, objs []object, name string) *T {
	t.Helper()
	var found *T
	for _, o := range objs {
		if v, ok := o.obj.(*T); ok && (name == "" || o.name == name) {
			if found != nil {
				t.Fatalf("more than one %T named %q", v, name)
			}
			found = v
		}
	}
	if found == nil {
		var zero T
		t.Fatalf("no %T named %q", &zero, name)
	}
	return found
}

func all[T any](objs []object) []*T {
	var out []*T
	for _, o := range objs {
		if v, ok := o.obj.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestManifestsDecodeStrictly: every file under deploy/kubernetes (the
// base, the overlay's patches, the first-admin Job) decodes into the real
// API types with unknown fields refused, and the base lists every manifest
// in its directory.
func TestManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	root := repo(t, "deploy/kubernetes")
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") && d.Name() != "kustomization.yaml" {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d manifests under %s", len(files), root)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if objs := decodeAll(t, rel, readFile(t, f)); len(objs) == 0 {
			t.Errorf("%s: no object", rel)
		}
	}
	k := readKustomization(t, filepath.Join(root, "base"))
	for _, f := range files {
		if filepath.Dir(f) == filepath.Join(root, "base") && !slices.Contains(k.Resources, filepath.Base(f)) {
			t.Errorf("base/kustomization.yaml does not list %s", filepath.Base(f))
		}
	}
}

// TestBaseMatchesLatch: the base's manifests agree with each other and with
// latch: see checkPod.
func TestBaseMatchesLatch(t *testing.T) {
	t.Parallel()
	objs, k := baseObjects(t)
	checkPod(t, objs, k, t.TempDir())

	// The ConfigMap's policy is the shipped one.
	cm := find[corev1.ConfigMap](t, objs, "latch")
	for _, f := range []string{"model.conf", "policy.csv", "policy.tests"} {
		if want := string(readFile(t, repo(t, "policies/"+f))); cm.Data[f] != want {
			t.Errorf("ConfigMap latch's %s differs from policies/%s", f, f)
		}
	}
}

// pod is the latch pod of a Deployment, resolved against its ConfigMap
// and laid out on disk the way the kubelet does.
type pod struct {
	dep          *appsv1.Deployment
	latch, app   *corev1.Container
	root         string            // the temp dir standing for the container's file system
	mounts       map[string]string // mountPath -> volume name (latch container)
	env          []string          // the latch container's env, paths mapped into root
	command      []string          // command + args, paths mapped into root
	cfg          *config.Config    // latch's config as the container loads it
	cm           *corev1.ConfigMap
	configMount  string // where the ConfigMap is mounted
	secretMount  string // where the signing key Secret is mounted
	secretKey    string // the Secret's key holding the signing key
	configVolume string
}

// imageBinary is where the Dockerfile puts latch in the image.
func imageBinary(t testing.TB) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^COPY --from=build /out/latch (\S+)$`).FindSubmatch(readFile(t, repo(t, "Dockerfile")))
	if m == nil {
		t.Fatal("Dockerfile: no COPY of /out/latch")
	}
	return string(m[1])
}

// latchPod finds the Deployment's latch container (the one running the
// image's latch binary) and the app container, lays out its volumes under
// root with the kubelet's layout, and loads latch's config from there with
// the container's env, as the container would.
func latchPod(t testing.TB, objs []object, k kustomization, root string) *pod {
	t.Helper()
	p := &pod{dep: find[appsv1.Deployment](t, objs, ""), root: root, mounts: map[string]string{}}
	spec := &p.dep.Spec.Template.Spec
	bin := imageBinary(t)
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if len(c.Command) > 0 && c.Command[0] == bin {
			p.latch = c
		} else {
			p.app = c
		}
	}
	if p.latch == nil || p.app == nil || len(spec.Containers) != 2 {
		t.Fatalf("want two containers, latch (command %s) and the app; got %d", bin, len(spec.Containers))
	}
	for _, m := range p.latch.VolumeMounts {
		if m.SubPath != "" {
			t.Errorf("volumeMount %s uses subPath: the kubelet never updates such a file, so policy changes would not arrive", m.Name)
		}
		p.mounts[m.MountPath] = m.Name
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	for mountPath, name := range p.mounts {
		v, ok := volumes[name]
		if !ok {
			t.Fatalf("volumeMount %s names no volume", name)
		}
		dir := filepath.Join(root, mountPath)
		switch {
		case v.ConfigMap != nil:
			p.cm = find[corev1.ConfigMap](t, objs, v.ConfigMap.Name)
			p.configMount, p.configVolume = mountPath, name
			kubeletWrite(t, dir, p.cm.Data, 0o644, time.Unix(1, 0))
		case v.Secret != nil:
			files := map[string]string{}
			if strings.HasPrefix(v.Secret.SecretName, "latch-signing-key") {
				p.secretMount = mountPath
				p.secretKey = generatedKey(t, k, "latch-signing-key")
				files[p.secretKey] = testKey(t)
			} else {
				files = secretData(t, objs, v.Secret.SecretName)
			}
			mode := os.FileMode(0o644)
			if v.Secret.DefaultMode != nil {
				mode = os.FileMode(*v.Secret.DefaultMode)
			}
			if spec.SecurityContext != nil && spec.SecurityContext.FSGroup != nil {
				mode |= 0o440 // the kubelet's fsGroup ownership for a read-only volume
			}
			kubeletWrite(t, dir, files, mode, time.Unix(1, 0))
		case v.PersistentVolumeClaim != nil, v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("volume %s: a kind this test does not lay out", name)
		}
	}
	if p.cm == nil || p.secretMount == "" {
		t.Fatal("the latch container mounts no ConfigMap or no signing key Secret")
	}
	p.command = p.mapPaths(append(slices.Clone(p.latch.Command), p.latch.Args...))
	for _, e := range p.latch.Env {
		if e.ValueFrom != nil {
			t.Fatalf("env %s: valueFrom is not simulated", e.Name)
		}
		p.env = append(p.env, e.Name+"="+p.mapPath(e.Value))
	}
	var cfgPath string
	for i, a := range p.command {
		if a == "--config" && i+1 < len(p.command) {
			cfgPath = p.command[i+1]
		}
	}
	if cfgPath == "" {
		t.Fatalf("latch's args name no --config: %q", p.latch.Args)
	}
	cfg, err := config.Load(cfgPath, p.env)
	if err != nil {
		t.Fatalf("latch's config as the container loads it: %v", err)
	}
	p.cfg = cfg
	return p
}

// mapPath puts an absolute path that lies on one of the container's
// volumeMounts under root; any other string is left alone.
func (p *pod) mapPath(s string) string {
	for mountPath := range p.mounts {
		if s == mountPath || strings.HasPrefix(s, mountPath+"/") {
			return filepath.Join(p.root, s)
		}
	}
	return s
}

func (p *pod) mapPaths(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p.mapPath(s)
	}
	return out
}

// generatedKey is the one key of the kustomization's secretGenerator name.
func generatedKey(t testing.TB, k kustomization, name string) string {
	t.Helper()
	for _, g := range k.SecretGenerator {
		if g.Name == name {
			if len(g.Files) != 1 {
				t.Fatalf("secretGenerator %s: want one file, got %q", name, g.Files)
			}
			key, _, _ := strings.Cut(g.Files[0], "=")
			return path.Base(key)
		}
	}
	t.Fatalf("kustomization has no secretGenerator %s", name)
	return ""
}

func secretData(t testing.TB, objs []object, name string) map[string]string {
	t.Helper()
	for _, s := range all[corev1.Secret](objs) {
		if s.Name == name {
			out := map[string]string{}
			for k, v := range s.Data {
				out[k] = string(v)
			}
			return out
		}
	}
	t.Fatalf("no Secret %s", name)
	return nil
}

// testKey is a fresh Ed25519 signing key in PKCS#8 PEM.
func testKey(t testing.TB) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// kubeletWrite lays files out in dir as the kubelet's atomic writer does
// for a ConfigMap or Secret volume: the files in a hidden timestamped
// directory, a ..data symlink to it, and one symlink per file through
// ..data. Called again on the same dir, it swaps the content the way the
// kubelet does: a new timestamped directory, a ..data_tmp symlink renamed
// over ..data (one atomic step), then the old directory removed.
func kubeletWrite(t testing.TB, dir string, files map[string]string, mode os.FileMode, stamp time.Time) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	ts := ".." + stamp.UTC().Format("2006_01_02_15_04_05.000000000")
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(dir, ts, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			t.Fatal(err)
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkPod checks a kustomization's objects against each other and
// against latch:
//   - latch's config, loaded from the ConfigMap with the container's env,
//     names files that are the ConfigMap's keys (all of them) and a signing
//     key that is the Secret's key; its data_dir is a writable volume;
//   - the probes name the admin port (admin_listen) and the paths latch's
//     admin handler serves; the liveness probe is /healthz, readiness /readyz;
//   - the Service targets latch's listen port only; the app listens where
//     latch's upstream points, on loopback, and no Service or NetworkPolicy
//     rule opens that port;
//   - the pod and every container are hardened; latch has resource requests;
//   - the PDB, the ServiceMonitor and the NetworkPolicy select the pod.
func checkPod(t *testing.T, objs []object, k kustomization, root string) *pod {
	t.Helper()
	p := latchPod(t, objs, k, root)
	cfg, spec := p.cfg, &p.dep.Spec.Template.Spec

	// Files latch's config names are the ConfigMap's and the Secret's keys.
	cmDir := filepath.Join(root, p.configMount)
	used := map[string]bool{}
	for key, file := range map[string]string{"policy.model": cfg.Policy.Model, "policy.rules": cfg.Policy.Rules, "policy.tests": cfg.Policy.Tests} {
		if filepath.Dir(file) != cmDir {
			t.Errorf("%s is %s, not a file of the ConfigMap mounted at %s", key, file, p.configMount)
		}
		if _, ok := p.cm.Data[filepath.Base(file)]; !ok {
			t.Errorf("%s names %s, which is not a key of ConfigMap %s", key, filepath.Base(file), p.cm.Name)
		}
		used[filepath.Base(file)] = true
	}
	for i, a := range p.command {
		if a == "--config" {
			cfgFile := p.command[i+1]
			if filepath.Dir(cfgFile) != cmDir {
				t.Errorf("--config %s is not in the ConfigMap mounted at %s", p.latch.Args, p.configMount)
			}
			used[filepath.Base(cfgFile)] = true
		}
	}
	for key := range p.cm.Data {
		if !used[key] {
			t.Errorf("ConfigMap %s holds %s, which latch's config does not name", p.cm.Name, key)
		}
	}
	if want := filepath.Join(root, p.secretMount, p.secretKey); cfg.Auth.SigningKeyFile != want {
		t.Errorf("auth.signing_key_file is %s, want the Secret's %s at %s", cfg.Auth.SigningKeyFile, p.secretKey, want)
	}
	dataWritable := false
	for _, m := range p.latch.VolumeMounts {
		if filepath.Join(root, m.MountPath) == cfg.DataDir && !m.ReadOnly {
			dataWritable = true
		}
	}
	if !dataWritable {
		t.Errorf("data_dir %s is not a writable volumeMount", cfg.DataDir)
	}
	for _, f := range []string{cfg.DataDir, cfg.Policy.Model, cfg.Auth.SigningKeyFile, cfg.Store.Etcd.PasswordFile, cfg.Store.Etcd.CAFile} {
		if f != "" && !strings.HasPrefix(f, root+"/") {
			t.Errorf("latch's config names %s, outside the container's volumes", f)
		}
	}

	// Ports and probes.
	ports := map[string]int32{}
	for _, cp := range p.latch.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	wantPort := func(what, addr string, name string) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("%s %q: %v", what, addr, err)
			return
		}
		if fmt.Sprint(ports[name]) != port {
			t.Errorf("%s is %s, but the latch container's port %q is %d", what, addr, name, ports[name])
		}
	}
	wantPort("listen", cfg.Listen, "http")
	wantPort("admin_listen", cfg.AdminListen, "admin")
	admin := proxy.Admin(nil, prometheus.NewRegistry(), proxy.AdminOptions{})
	for _, pr := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{{"readinessProbe", p.latch.ReadinessProbe, "/readyz"}, {"livenessProbe", p.latch.LivenessProbe, "/healthz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("latch has no HTTP %s", pr.what)
			continue
		}
		g := pr.probe.HTTPGet
		if g.Path != pr.path {
			t.Errorf("%s path %s, want %s", pr.what, g.Path, pr.path)
		}
		if port := resolvePort(p.latch, g.Port); port != ports["admin"] {
			t.Errorf("%s port %s is %d, not admin_listen's port %d", pr.what, g.Port.String(), port, ports["admin"])
		}
		rec := httptest.NewRecorder()
		admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, g.Path, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s: latch's admin handler answers %s with %d", pr.what, g.Path, rec.Code)
		}
	}

	// The app is latch's upstream, on the pod's loopback, on no Service.
	up, err := url.Parse(cfg.Upstream)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(up.Hostname()); ip == nil || !ip.IsLoopback() {
		t.Errorf("upstream %s is not on the pod's loopback", cfg.Upstream)
	}
	appPorts := map[int32]bool{}
	for _, cp := range p.app.Ports {
		appPorts[cp.ContainerPort] = true
		if fmt.Sprint(cp.ContainerPort) != up.Port() {
			t.Errorf("the app's port %d is not upstream's %s", cp.ContainerPort, up.Port())
		}
	}
	if len(appPorts) == 0 {
		t.Error("the app container declares no port (latch's upstream)")
	}
	podLabels := labels.Set(p.dep.Spec.Template.Labels)
	latchPorts := map[int32]bool{ports["http"]: true, ports["admin"]: true}
	services := all[corev1.Service](objs)
	var proxySvc bool
	for _, s := range services {
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			continue
		}
		for _, sp := range s.Spec.Ports {
			port := resolvePort(p.latch, sp.TargetPort)
			if !latchPorts[port] || appPorts[port] {
				t.Errorf("Service %s port %s targets %d, not a latch port", s.Name, sp.Name, port)
			}
			if port == ports["http"] {
				proxySvc = true
			}
		}
	}
	if !proxySvc {
		t.Error("no Service targets latch's listen port")
	}
	np := find[networkingv1.NetworkPolicy](t, objs, "")
	if sel, err := metav1Selector(np.Spec.PodSelector.MatchLabels); err != nil || !sel.Matches(podLabels) {
		t.Errorf("NetworkPolicy %s does not select the pod", np.Name)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("NetworkPolicy %s does not restrict ingress", np.Name)
	}
	for i, r := range np.Spec.Ingress {
		if len(r.Ports) == 0 {
			t.Errorf("NetworkPolicy %s ingress rule %d allows every port, the app's too", np.Name, i)
		}
		for _, pp := range r.Ports {
			if pp.Port == nil {
				t.Errorf("NetworkPolicy %s ingress rule %d allows every port", np.Name, i)
				continue
			}
			if port := resolvePort(p.latch, *pp.Port); !latchPorts[port] || appPorts[port] {
				t.Errorf("NetworkPolicy %s opens port %s (%d), not a latch port", np.Name, pp.Port.String(), port)
			}
		}
	}

	// Hardening.
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		t.Error("enableServiceLinks is not false")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("the pod is not runAsNonRoot with seccomp RuntimeDefault")
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s: want a read-only root fs, no privilege escalation, every capability dropped", c.Name)
		}
		if sc != nil && sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s is privileged", c.Name)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := p.latch.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("latch has no %s request", r)
		}
	}
	if q, ok := p.latch.Resources.Limits[corev1.ResourceMemory]; !ok || q.Cmp(p.latch.Resources.Requests[corev1.ResourceMemory]) < 0 {
		t.Error("latch's memory limit is missing or below its request")
	}

	// The PDB and the ServiceMonitor find the pod and its metrics.
	pdb := find[policyv1.PodDisruptionBudget](t, objs, "")
	if sel, err := metav1Selector(pdb.Spec.Selector.MatchLabels); err != nil || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget %s does not select the pod", pdb.Name)
	}
	sm := find[monitoringv1.ServiceMonitor](t, objs, "")
	var scraped bool
	for _, s := range services {
		if !labels.SelectorFromSet(sm.Spec.Selector.MatchLabels).Matches(labels.Set(s.Labels)) {
			continue
		}
		for _, ep := range sm.Spec.Endpoints {
			for _, sp := range s.Spec.Ports {
				if sp.Name == ep.Port && resolvePort(p.latch, sp.TargetPort) == ports["admin"] && ep.Path == "/metrics" {
					scraped = true
				}
			}
		}
	}
	if !scraped {
		t.Error("the ServiceMonitor scrapes no Service port that targets latch's /metrics on the admin port")
	}
	return p
}

func metav1Selector(m map[string]string) (labels.Selector, error) {
	if len(m) == 0 {
		return nil, fmt.Errorf("empty selector")
	}
	return labels.SelectorFromSet(m), nil
}

// resolvePort is the container port a named or numbered port means.
func resolvePort(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return -1
}

// TestFirstAdminJob: the Job runs latch's `users add` from the same image
// path, with the Deployment's ConfigMap, data volume and data_dir.
func TestFirstAdminJob(t *testing.T) {
	t.Parallel()
	objs, _ := baseObjects(t)
	dep := find[appsv1.Deployment](t, objs, "")
	job := find[batchv1.Job](t, decodeFiles(t, repo(t, "deploy/kubernetes/jobs"), "first-admin.yaml"), "latch-first-admin")
	jc := job.Spec.Template.Spec.Containers[0]
	if len(jc.Command) < 3 || jc.Command[0] != imageBinary(t) || jc.Command[1] != "users" || jc.Command[2] != "add" {
		t.Errorf("the Job's command is %q, want %s users add", jc.Command, imageBinary(t))
	}
	var k struct {
		Images []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	if err := yaml.Unmarshal(readFile(t, repo(t, "deploy/kubernetes/base/kustomization.yaml")), &k); err != nil || len(k.Images) != 1 {
		t.Fatalf("base/kustomization.yaml images: %v %+v", err, k.Images)
	}
	if want := k.Images[0].NewName + ":" + k.Images[0].NewTag; jc.Image != want {
		t.Errorf("the Job's image is %s, the Deployment's (kustomization images:) %s", jc.Image, want)
	}
	if labels.SelectorFromSet(dep.Spec.Selector.MatchLabels).Matches(labels.Set(job.Spec.Template.Labels)) {
		t.Error("the Job's pod matches the Deployment's selector (and so its Service)")
	}
	vol := func(spec corev1.PodSpec, name string) corev1.Volume {
		for _, v := range spec.Volumes {
			if v.Name == name {
				return v
			}
		}
		t.Fatalf("no volume %s", name)
		return corev1.Volume{}
	}
	var latch corev1.Container
	for _, c := range dep.Spec.Template.Spec.Containers {
		if len(c.Command) > 0 && c.Command[0] == imageBinary(t) {
			latch = c
		}
	}
	mounts := map[string]string{}
	for _, m := range latch.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	for _, m := range jc.VolumeMounts {
		want, ok := mounts[m.MountPath]
		if !ok {
			t.Errorf("the Job mounts %s, where latch mounts nothing", m.MountPath)
			continue
		}
		jv, dv := vol(job.Spec.Template.Spec, m.Name), vol(dep.Spec.Template.Spec, want)
		jy, _ := yaml.Marshal(jv.VolumeSource)
		dy, _ := yaml.Marshal(dv.VolumeSource)
		if !bytes.Equal(jy, dy) {
			t.Errorf("the Job's volume at %s is %s, latch's is %s", m.MountPath, jy, dy)
		}
	}
	env := map[string]string{}
	for _, e := range latch.Env {
		env[e.Name] = e.Value
	}
	for _, e := range jc.Env {
		if env[e.Name] != e.Value {
			t.Errorf("the Job sets %s=%s, latch %q", e.Name, e.Value, env[e.Name])
		}
	}
	if env["LATCH_DATA_DIR"] == "" || !slices.ContainsFunc(jc.Env, func(e corev1.EnvVar) bool { return e.Name == "LATCH_DATA_DIR" }) {
		t.Error("the Job and latch must both set LATCH_DATA_DIR")
	}
}
