package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		file string
		want string // a substring the message must hold
	}{
		{"bad-upstream-scheme.yaml", `upstream: "ftp://x" is not an http(s) URL`},
		{"missing-upstream.yaml", `upstream: is required (an http(s) URL)`},
		{"unknown-key.yaml", `line 2: unknown key "upstrem_timeout" (did you mean "upstream_timeout"?)`},
		{"unknown-key-typo.yaml", `line 1: unknown key "upstrem" (did you mean "upstream"?)`},
		{"unknown-nested-key.yaml", `line 3: unknown key "policy.rulez" (did you mean "policy.rules"?)`},
		{"misplaced-key.yaml", `line 2: unknown key "signing_key_file" (did you mean "auth.signing_key_file"?`},
		{"dotted-key.yaml", `line 2: unknown key "policy.rules" (write it nested: policy: on its own line, then rules: indented under it)`},
		{"unknown-far-key.yaml", `line 3: unknown key "policy.frobnicate" (the keys of policy are model, rules, tests, protect,`},
		{"bad-duration.yaml", `line 2: upstream_timeout: "soon" is not a duration like "30s"`},
		{"duration-number.yaml", `line 2: shutdown_grace: "30" is not a duration like "30s" (add a unit: "30s")`},
		{"duration-as-list.yaml", `line 2: idle_timeout: want a duration like "30s", not a list`},
		{"negative-timeout.yaml", `upstream_timeout: "-5s" must be positive`},
		{"negative-settle.yaml", `policy.settle: "-1s" must not be negative`},
		{"bad-listen.yaml", `listen: "8080" is not a host:port address`},
		{"same-listeners.yaml", `admin_listen: "127.0.0.1:8080" must differ from listen`},
		{"bad-protect.yaml", `policy.protect[0]: "api/admin" is not a clean absolute path prefix`},
		{"list-as-string.yaml", `line 3: policy.protect: want a list of path prefixes, like [/api/admin/], not "/api/admin/"`},
		{"list-as-map.yaml", `line 5: store.etcd.endpoints: want a list of etcd client URLs, like [https://etcd-0:2379], not a map`},
		{"list-item-list.yaml", `line 3: policy.protect[0]: want one value in the list, not a list`},
		{"map-as-string.yaml", `line 2: policy: want a map of keys (model, rules, tests, protect, max_rule_drop, poll_interval, settle), not "strict"`},
		{"map-as-list.yaml", `line 2: auth: want a map of keys (signing_key_file, api_tokens_file,`},
		{"top-level-not-map.yaml", `line 1: the file: want a map of keys (listen, admin_listen,`},
		{"wrong-type.yaml", `line 1: upstream: want one URL, not a list`},
		{"string-as-map.yaml", `line 2: listen: want one host:port address, not a map`},
		{"int-as-string.yaml", `line 2: max_header_bytes: want a whole number, not "lots"`},
		{"int-as-float.yaml", `line 2: max_body_bytes: want a whole number, not "1.5"`},
		{"int-quoted.yaml", `line 3: login.max_concurrent: want a whole number, not "4"`},
		{"bool-as-string.yaml", `line 2: admin_pprof: want true or false, not "maybe"`},
		{"bool-as-list.yaml", `line 2: admin_pprof: want true or false, not a list`},
		{"strip-authorization.yaml", `line 3: "auth.strip_authorization" was replaced by auth.handoff`},
		{"handoff-bad.yaml", `auth.handoff[0]: "/api/client/" is not "<path prefix> <mode>"`},
		{"handoff-bad.yaml", `auth.handoff[1]: "/api/ token" names no mode latch knows (headers, jwt or passthrough)`},
		{"handoff-bad.yaml", `auth.handoff[2]: "api/ jwt" does not start with a clean absolute path prefix`},
		{"namespace-bad.yaml", `namespace: "/.Latch/x" is not a path prefix like /.latch`},
		{"handoff-jwt-bad.yaml", `auth.handoff_jwt.audience: "latch" must differ from latch's own audience`},
		{"handoff-jwt-bad.yaml", `auth.handoff_jwt.ttl: "500ms" must be at least 1s`},
		{"reset-url-dir.yaml", `reset.url: "https://app.example.com/" must name a page`},
		{"float-as-string.yaml", `line 3: policy.max_rule_drop: want a number, not "half"`},
		{"bad-rule-drop.yaml", `policy.max_rule_drop: 1.5 must be in (0, 1]`},
		{"bad-log-format.yaml", `log.format: "xml" is not json or text`},
		{"bad-user-header.yaml", `auth.user_header: "X Latch User" is not a header name`},
		{"bad-jwks-url.yaml", `auth.jwt.jwks_url: "file:///etc/keys.json" is not an http(s) URL`},
		{"bad-public-url.yaml", `public_url: "example.com" is not an http(s) URL`},
		{"bad-store-backend.yaml", `store.backend: "sqlite" is not a known backend`},
		{"etcd-no-endpoints.yaml", `store.etcd.endpoints: must list at least one etcd client URL`},
		{"duplicate-key.yaml", `line 2: key "upstream" appears twice (first at line 1); keep one`},
		{"syntax-error.yaml", `not valid YAML: `},
		{"two-documents.yaml", `line 2: a second YAML document starts here`},
		{"several-mistakes.yaml", "line 2: unknown key \"upstrem_timeout\" (did you mean \"upstream_timeout\"?)\n" +
			"line 4: policy.protect: want a list of path prefixes, like [/api/admin/], not \"/api/admin/\"\n" +
			"line 5: admin_pprof: want true or false, not \"maybe\""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tt.file), nil)
			if err == nil {
				t.Fatalf("Load(%s): got nil error, want one holding %q", tt.file, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%s):\n got %q\nwant it to hold %q", tt.file, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.file) {
				t.Errorf("Load(%s): error %q does not name the file", tt.file, err)
			}
			msg := strings.ReplaceAll(err.Error(), filepath.Join("testdata", tt.file), "FILE")
			for _, internal := range []string{"!!", "unmarshal", "config.", "yaml: ", "reflect", "[]string", "time.Duration", "int64", "float64", "not found in type"} {
				if strings.Contains(msg, internal) {
					t.Errorf("Load(%s): error %q holds the internal %q", tt.file, err, internal)
				}
			}
		})
	}
}

func TestLoadMinimalDefaults(t *testing.T) {
	c, err := Load("testdata/minimal.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("testdata")
	checks := []struct{ name, got, want string }{
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"admin_listen", c.AdminListen, "127.0.0.1:9091"},
		{"public_url", c.PublicURL, "http://127.0.0.1:8080"},
		{"reset.url", c.Reset.URL, "http://127.0.0.1:8080/.latch/reset-password"},
		{"policy.model", c.Policy.Model, filepath.Join(abs, "policies/model.conf")},
		{"data_dir", c.DataDir, filepath.Join(abs, "data")},
		{"policy.protect", strings.Join(c.Policy.Protect, ","), "/api/admin/"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.Reset.TTL.D() != 24*time.Hour {
		t.Errorf("reset.ttl: got %v, want 24h", c.Reset.TTL)
	}
}

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://unleash.example.com" {
		t.Errorf("public_url: got %q, want trailing slash trimmed", c.PublicURL)
	}
	if c.Reset.URL != "https://unleash.example.com/.latch/reset-password" {
		t.Errorf("reset.url: got %q", c.Reset.URL)
	}
	if c.UpstreamTimeout.D() != 10*time.Second || c.Auth.JWT.Leeway.D() != 10*time.Second {
		t.Errorf("durations: got %v and %v, want 10s and 10s", c.UpstreamTimeout, c.Auth.JWT.Leeway)
	}
	if c.DataDir != "/var/lib/latch" {
		t.Errorf("data_dir: got %q, want absolute path untouched", c.DataDir)
	}
	if got := strings.Join(c.Policy.Protect, ","); got != "/api/admin/,/internal/" {
		t.Errorf("policy.protect: got %q", got)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := []string{
		"LATCH_UPSTREAM=http://10.0.0.1:9000",
		"LATCH_POLICY_RULES=/etc/latch/rules.csv",
		"LATCH_UPSTREAM_TIMEOUT=2s",
		"LATCH_AUTH_HANDOFF=/api/client/ passthrough, /api/ jwt",
		"LATCH_POLICY_PROTECT=/a/, /b/",
		"LATCH_LOGIN_MAX_CONCURRENT=7",
		"PATH=/usr/bin",
	}
	c, err := Load("testdata/minimal.yaml", env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Upstream != "http://10.0.0.1:9000" {
		t.Errorf("upstream: got %q", c.Upstream)
	}
	if c.Policy.Rules != "/etc/latch/rules.csv" {
		t.Errorf("policy.rules: got %q", c.Policy.Rules)
	}
	if c.UpstreamTimeout.D() != 2*time.Second {
		t.Errorf("upstream_timeout: got %v", c.UpstreamTimeout)
	}
	if got := strings.Join(c.Auth.Handoff, "|"); got != "/api/client/ passthrough|/api/ jwt" {
		t.Errorf("auth.handoff: got %q", got)
	}
	if got := strings.Join(c.Policy.Protect, "|"); got != "/a/|/b/" {
		t.Errorf("policy.protect: got %q", got)
	}
	if c.Login.MaxConcurrent != 7 {
		t.Errorf("login.max_concurrent: got %d", c.Login.MaxConcurrent)
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct{ env, want string }{
		{"LATCH_UPSTREAM_TIMEOUT=fast", `LATCH_UPSTREAM_TIMEOUT: "fast" is not a duration`},
		{"LATCH_UPSTREM=http://x", `LATCH_UPSTREM: no such configuration key (did you mean LATCH_UPSTREAM?)`},
		{"LATCH_AUTH_STRIP_AUTHORIZATION=true", `LATCH_AUTH_STRIP_AUTHORIZATION: no such configuration key (auth.strip_authorization was replaced by auth.handoff`},
		{"LATCH_POLICY_SETTLE=-1s", `policy.settle: "-1s" must not be negative`},
		{"LATCH_POLICY_SETTLE=soon", `LATCH_POLICY_SETTLE: "soon" is not a duration`},
		// Service-link names with values Kubernetes never sets are typos.
		{"LATCH_SERVICE_HOST=latch.example.com", `LATCH_SERVICE_HOST: no such configuration key`},
		{"LATCH_ADMIN_PORT=9091", `LATCH_ADMIN_PORT: no such configuration key`},
		{"LATCH_PORT_8080_TCP_PORT=9090", `LATCH_PORT_8080_TCP_PORT: no such configuration key`},
		{"LATCH_PORT_8080_TCP=tcp://10.0.0.1:9090", `LATCH_PORT_8080_TCP: no such configuration key`},
		{"LATCH_PORT_8080_TCP_PROTO=udp", `LATCH_PORT_8080_TCP_PROTO: no such configuration key`},
		{"LATCH_SERVICE_PORT=http", `LATCH_SERVICE_PORT: no such configuration key`},
		{"LATCH_LOGIN_MAX_CONCURRENT=many", `"many" is not an integer`},
		{"LATCH_ADMIN_PPROF=yes please", `is not true or false`},
		{"LATCH_UPSTREAM=ftp://x", `upstream: "ftp://x" is not an http(s) URL`},
	}
	for _, tt := range tests {
		_, err := Load("testdata/minimal.yaml", []string{tt.env})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %s: got %v, want error holding %q", tt.env, err, tt.want)
		}
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	c := Default()
	c.Upstream = "ftp://x"
	c.Log.Level = "loud"
	err := c.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want *FieldError", err)
	}
	for _, want := range []string{"upstream:", "log.level:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to name %s", err, want)
		}
	}
}

func TestKeysHaveEnvNames(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Keys() {
		if k.Env != "LATCH_"+strings.ToUpper(strings.ReplaceAll(k.Path, ".", "_")) {
			t.Errorf("key %s: env %s", k.Path, k.Env)
		}
		seen[k.Path] = true
	}
	for _, want := range []string{"upstream", "policy.rules", "auth.jwt.issuer", "reset.min_interval", "log.format"} {
		if !seen[want] {
			t.Errorf("Keys() lacks %s", want)
		}
	}
}

func TestParseBlankKeepsDefaults(t *testing.T) {
	for _, in := range []string{"", "  \n\n", "# only a comment\n"} {
		c, err := Parse(strings.NewReader(in), nil)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if c.Listen != Default().Listen || c.PublicURL != "http://"+Default().Listen {
			t.Errorf("Parse(%q): listen %q, public_url %q; want the defaults", in, c.Listen, c.PublicURL)
		}
	}
}

// TestEnvIgnoresKubernetesServiceLinks: the variables Kubernetes injects
// for a Service named latch (or latch-<x>) are not configuration keys and
// do not stop latch; the real keys still apply beside them.
func TestEnvIgnoresKubernetesServiceLinks(t *testing.T) {
	t.Parallel()
	env := []string{
		"LATCH_SERVICE_HOST=10.96.0.12",
		"LATCH_SERVICE_PORT=8080",
		"LATCH_SERVICE_PORT_HTTP=8080",
		"LATCH_SERVICE_PORT_ADMIN_METRICS=9091",
		"LATCH_PORT=tcp://10.96.0.12:8080",
		"LATCH_PORT_8080_TCP=tcp://10.96.0.12:8080",
		"LATCH_PORT_8080_TCP_PROTO=tcp",
		"LATCH_PORT_8080_TCP_PORT=8080",
		"LATCH_PORT_8080_TCP_ADDR=10.96.0.12",
		"LATCH_PORT_9091_UDP=udp://10.96.0.12:9091",
		"LATCH_PORT_9091_SCTP_ADDR=10.96.0.12",
		"LATCH_ADMIN_SERVICE_HOST=fd00::12",
		"LATCH_ADMIN_PORT=tcp://[fd00::12]:9091",
		"LATCH_ADMIN_PORT_9091_TCP=tcp://[fd00::12]:9091",
		"LATCH_UPSTREAM_TIMEOUT=3s",
	}
	c, err := Load("testdata/minimal.yaml", env)
	if err != nil {
		t.Fatalf("Load with service links: %v", err)
	}
	if c.UpstreamTimeout.D() != 3*time.Second {
		t.Errorf("upstream_timeout beside the links: got %v, want 3s", c.UpstreamTimeout)
	}
}

func TestPolicySettleKey(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/minimal.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.Settle.D() != time.Second {
		t.Errorf("policy.settle default: got %v, want 1s", c.Policy.Settle)
	}
	c, err = Load("testdata/minimal.yaml", []string{"LATCH_POLICY_SETTLE=0s"})
	if err != nil || c.Policy.Settle != 0 {
		t.Errorf("LATCH_POLICY_SETTLE=0s: got %v, %v; want 0 allowed", c, err)
	}
	var found bool
	for _, k := range Keys() {
		if k.Path == "policy.settle" {
			found = k.Env == "LATCH_POLICY_SETTLE" && k.Default == "1s"
		}
	}
	if !found {
		t.Error("Keys() lacks policy.settle with env LATCH_POLICY_SETTLE and default 1s")
	}
}

// TestExampleConfigLoads: the shipped example (the image's config) loads
// with only the upstream given, and sets policy.settle.
func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	c, err := Load("latch.example.yaml", []string{"LATCH_UPSTREAM=http://backend:4242"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.SigningKeyFile != "" {
		t.Errorf("auth.signing_key_file: %q; the image has no key there, leave it empty so latch creates <data_dir>/signing.key", c.Auth.SigningKeyFile)
	}
	b, err := os.ReadFile("latch.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "settle:") {
		t.Error("latch.example.yaml does not show policy.settle")
	}
}

func TestValidNamespace(t *testing.T) {
	for ns, want := range map[string]bool{
		"/.latch": true, "/.latch/": true, "/auth/x_1-y": true, "/a.b": true,
		"": false, "/": false, "//": false, ".latch": false, "/.Latch": false,
		"/a//b": false, "/a/./b": false, "/a/../b": false, "/a/.": false, "/..": false, "/a b": false,
	} {
		if got := validNamespace(ns); got != want {
			t.Errorf("validNamespace(%q) = %v, want %v", ns, got, want)
		}
	}
}
