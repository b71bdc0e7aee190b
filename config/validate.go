package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// FieldError is one bad field: its key path, its value, and what is wrong.
type FieldError struct {
	Field  string
	Value  any
	Reason string
}

func (e *FieldError) Error() string {
	switch v := e.Value.(type) {
	case string:
		return fmt.Sprintf("%s: %q %s", e.Field, v, e.Reason)
	case nil:
		return fmt.Sprintf("%s: %s", e.Field, e.Reason)
	default:
		return fmt.Sprintf("%s: %v %s", e.Field, v, e.Reason)
	}
}

// Validate reports every bad field, each as a *FieldError, joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field string, value any, reason string) {
		errs = append(errs, &FieldError{Field: field, Value: value, Reason: reason})
	}
	addr := func(field, v string) {
		if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			bad(field, v, "is not a host:port address")
		}
	}
	httpURL := func(field, v string, required bool) {
		if v == "" {
			if required {
				bad(field, nil, "is required (an http(s) URL)")
			}
			return
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(field, v, "is not an http(s) URL")
			return
		}
		if u.User != nil {
			bad(field, v, "must not carry credentials")
		}
	}
	positive := func(field string, d Duration) {
		if d <= 0 {
			bad(field, d.String(), "must be positive")
		}
	}
	nonNegative := func(field string, d Duration) {
		if d < 0 {
			bad(field, d.String(), "must not be negative")
		}
	}
	required := func(field, v string) {
		if v == "" {
			bad(field, nil, "is required")
		}
	}

	addr("listen", c.Listen)
	addr("admin_listen", c.AdminListen)
	if c.Listen != "" && c.Listen == c.AdminListen && !strings.HasSuffix(c.Listen, ":0") {
		bad("admin_listen", c.AdminListen, "must differ from listen: metrics are never served on the proxy port")
	}
	httpURL("upstream", c.Upstream, true)
	httpURL("public_url", c.PublicURL, true)
	httpURL("reset.url", c.Reset.URL, true)
	if u, err := url.Parse(c.Reset.URL); err == nil && c.Reset.URL != "" && (u.Path == "" || strings.HasSuffix(u.Path, "/")) {
		bad("reset.url", c.Reset.URL, "must name a page (a path not ending in /), like <public_url>/.latch/reset-password")
	}
	required("data_dir", c.DataDir)
	if !validNamespace(c.Namespace) {
		bad("namespace", c.Namespace, "is not a path prefix like /.latch (lower-case letters, digits, '.', '-', '_', not / alone)")
	}
	positive("upstream_timeout", c.UpstreamTimeout)
	positive("dial_timeout", c.DialTimeout)
	positive("idle_timeout", c.IdleTimeout)
	positive("read_header_timeout", c.ReadHeaderTimeout)
	nonNegative("shutdown_grace", c.ShutdownGrace)
	if c.MaxHeaderBytes < 1024 {
		bad("max_header_bytes", c.MaxHeaderBytes, "must be at least 1024")
	}
	if c.MaxBodyBytes < 1024 {
		bad("max_body_bytes", c.MaxBodyBytes, "must be at least 1024")
	}
	if c.MaxIdleConnsPerHost < 1 {
		bad("max_idle_conns_per_host", c.MaxIdleConnsPerHost, "must be at least 1")
	}

	required("policy.model", c.Policy.Model)
	required("policy.rules", c.Policy.Rules)
	if len(c.Policy.Protect) == 0 {
		bad("policy.protect", nil, "must list at least one path prefix")
	}
	for i, p := range c.Policy.Protect {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#\\%;") || strings.Contains(p, "..") {
			bad(fmt.Sprintf("policy.protect[%d]", i), p, "is not a clean absolute path prefix")
		}
	}
	if c.Policy.MaxRuleDrop <= 0 || c.Policy.MaxRuleDrop > 1 {
		bad("policy.max_rule_drop", c.Policy.MaxRuleDrop, "must be in (0, 1]")
	}
	nonNegative("policy.poll_interval", c.Policy.PollInterval)
	nonNegative("policy.settle", c.Policy.Settle)

	header := func(field, v string) {
		if v == "" || strings.IndexFunc(v, func(r rune) bool {
			return !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) >= 0 {
			bad(field, v, "is not a header name (letters, digits and '-')")
		}
	}
	header("auth.user_header", c.Auth.UserHeader)
	header("auth.roles_header", c.Auth.RolesHeader)
	if strings.EqualFold(c.Auth.UserHeader, c.Auth.RolesHeader) {
		bad("auth.roles_header", c.Auth.RolesHeader, "must differ from auth.user_header")
	}
	for _, h := range []string{"Authorization", "Host", "Cookie", "Connection", "X-Forwarded-For", "X-Request-Id"} {
		for _, f := range []struct{ field, v string }{{"auth.user_header", c.Auth.UserHeader}, {"auth.roles_header", c.Auth.RolesHeader}} {
			if strings.EqualFold(f.v, h) {
				bad(f.field, f.v, "is reserved")
			}
		}
	}
	for i, h := range c.Auth.Handoff {
		prefix, mode, ok := strings.Cut(strings.TrimSpace(h), " ")
		mode = strings.TrimSpace(mode)
		switch {
		case !ok || strings.ContainsAny(mode, " \t"):
			bad(fmt.Sprintf("auth.handoff[%d]", i), h, "is not \"<path prefix> <mode>\" (like \"/api/client/ passthrough\")")
		case !strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, "?#\\%;") || strings.Contains(prefix, ".."):
			bad(fmt.Sprintf("auth.handoff[%d]", i), h, "does not start with a clean absolute path prefix")
		case mode != "headers" && mode != "jwt" && mode != "passthrough":
			bad(fmt.Sprintf("auth.handoff[%d]", i), h, "names no mode latch knows (headers, jwt or passthrough)")
		}
	}
	required("auth.handoff_jwt.audience", c.Auth.HandoffJWT.Audience)
	if a := c.Auth.HandoffJWT.Audience; a != "" && (a == c.Auth.JWT.Audience || a == "latch") {
		bad("auth.handoff_jwt.audience", a, "must differ from latch's own audience (auth.jwt.audience): the upstream's tokens must not be latch's")
	}
	if c.Auth.HandoffJWT.TTL < Duration(time.Second) {
		bad("auth.handoff_jwt.ttl", c.Auth.HandoffJWT.TTL.String(), "must be at least 1s")
	}
	positive("session.idle_timeout", c.Session.IdleTimeout)
	positive("session.absolute_timeout", c.Session.AbsoluteTimeout)
	httpURL("auth.jwt.jwks_url", c.Auth.JWT.JWKSURL, false)
	positive("auth.jwt.jwks_refresh", c.Auth.JWT.JWKSRefresh)
	positive("auth.jwt.ttl", c.Auth.JWT.TTL)
	nonNegative("auth.jwt.leeway", c.Auth.JWT.Leeway)
	required("auth.jwt.subject_claim", c.Auth.JWT.SubjectClaim)
	required("auth.jwt.roles_claim", c.Auth.JWT.RolesClaim)

	positive("reset.ttl", c.Reset.TTL)
	nonNegative("reset.min_interval", c.Reset.MinInterval)
	positive("reset.sweep_interval", c.Reset.SweepInterval)
	if c.Login.MaxConcurrent < 0 {
		bad("login.max_concurrent", c.Login.MaxConcurrent, "must not be negative (0: half the CPUs)")
	}
	if c.Login.MaxPerSecond < 0 {
		bad("login.max_per_second", c.Login.MaxPerSecond, "must not be negative (0: one per CPU)")
	}
	if c.Login.PerAccountPerMinute < 1 {
		bad("login.per_account_per_minute", c.Login.PerAccountPerMinute, "must be at least 1")
	}
	if c.Login.PerAddressPerMinute < 1 {
		bad("login.per_address_per_minute", c.Login.PerAddressPerMinute, "must be at least 1")
	}
	switch c.Store.Backend {
	case "bbolt":
	case "etcd":
		if len(c.Store.Etcd.Endpoints) == 0 {
			bad("store.etcd.endpoints", nil, "must list at least one etcd client URL when store.backend is etcd")
		}
		for i, ep := range c.Store.Etcd.Endpoints {
			if u, err := url.Parse(ep); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(fmt.Sprintf("store.etcd.endpoints[%d]", i), ep, "is not an http(s) URL")
			}
		}
		if !strings.HasPrefix(c.Store.Etcd.Prefix, "/") {
			bad("store.etcd.prefix", c.Store.Etcd.Prefix, "must start with /")
		}
		positive("store.etcd.dial_timeout", c.Store.Etcd.DialTimeout)
		positive("store.etcd.request_timeout", c.Store.Etcd.RequestTimeout)
		if (c.Store.Etcd.CertFile == "") != (c.Store.Etcd.KeyFile == "") {
			bad("store.etcd.key_file", c.Store.Etcd.KeyFile, "and store.etcd.cert_file must be set together")
		}
		if (c.Store.Etcd.Username == "") != (c.Store.Etcd.PasswordFile == "") {
			bad("store.etcd.password_file", c.Store.Etcd.PasswordFile, "and store.etcd.username must be set together")
		}
	default:
		bad("store.backend", c.Store.Backend, "is not a known backend (bbolt or etcd)")
	}
	positive("store.lock_timeout", c.Store.LockTimeout)
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", c.Log.Format, "is not json or text")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", c.Log.Level, "is not debug, info, warn or error")
	}
	return errors.Join(errs...)
}

// validNamespace: a path of at least one segment, each of lower-case
// letters, digits, '.', '-' and '_', none empty, "." or ".."; a trailing
// slash is allowed (fillDerived trims it). proxy.New checks the same.
func validNamespace(ns string) bool {
	ns = strings.TrimSuffix(ns, "/")
	if len(ns) < 2 || ns[0] != '/' {
		return false
	}
	for _, seg := range strings.Split(ns[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		if strings.IndexFunc(seg, func(r rune) bool {
			return !(r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z')
		}) >= 0 {
			return false
		}
	}
	return true
}
