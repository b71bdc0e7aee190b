package config

import (
	"errors"
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
		{"unknown-key.yaml", `field upstrem_timeout not found`},
		{"unknown-nested-key.yaml", `field rulez not found`},
		{"bad-duration.yaml", `"soon" is not a duration like "30s"`},
		{"negative-timeout.yaml", `upstream_timeout: "-5s" must be positive`},
		{"bad-listen.yaml", `listen: "8080" is not a host:port address`},
		{"same-listeners.yaml", `admin_listen: "127.0.0.1:8080" must differ from listen`},
		{"bad-protect.yaml", `policy.protect[0]: "api/admin" is not a clean absolute path prefix`},
		{"bad-rule-drop.yaml", `policy.max_rule_drop: 1.5 must be in (0, 1]`},
		{"bad-log-format.yaml", `log.format: "xml" is not json or text`},
		{"bad-user-header.yaml", `auth.user_header: "X Latch User" is not a header name`},
		{"bad-jwks-url.yaml", `auth.jwt.jwks_url: "file:///etc/keys.json" is not an http(s) URL`},
		{"bad-public-url.yaml", `public_url: "example.com" is not an http(s) URL`},
		{"bad-store-backend.yaml", `store.backend: "sqlite" is not a known backend`},
		{"etcd-no-endpoints.yaml", `store.etcd.endpoints: must list at least one etcd client URL`},
		{"wrong-type.yaml", `cannot unmarshal !!seq into string`},
		{"duplicate-key.yaml", `mapping key "upstream" already defined at line 1`},
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
		{"reset.url", c.Reset.URL, "http://127.0.0.1:8080/reset-password"},
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
	if c.Reset.URL != "https://unleash.example.com/reset-password" {
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
		"LATCH_AUTH_STRIP_AUTHORIZATION=true",
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
	if !c.Auth.StripAuthorization {
		t.Error("auth.strip_authorization: got false")
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
		{"LATCH_UPSTREM=http://x", `LATCH_UPSTREM: no such configuration key`},
		{"LATCH_LOGIN_MAX_CONCURRENT=many", `"many" is not an integer`},
		{"LATCH_AUTH_STRIP_AUTHORIZATION=yes please", `is not true or false`},
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
