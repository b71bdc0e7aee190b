package config

import (
	"fmt"
	"net"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every override variable's name.
const EnvPrefix = "LATCH_"

// Key describes one configuration key for the reference documentation and
// for env overrides.
type Key struct {
	Path    string // "policy.rules"
	Env     string // "LATCH_POLICY_RULES"
	Default string // formatted default, "" when none
}

// Keys lists every key with its env name and default, in file order.
func Keys() []Key {
	var keys []Key
	walk(reflect.ValueOf(Default()).Elem(), "", func(path string, v reflect.Value) {
		keys = append(keys, Key{Path: path, Env: EnvName(path), Default: format(v)})
	})
	return keys
}

// EnvName is the environment variable that overrides the key at path:
// "policy.rules" is LATCH_POLICY_RULES.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// walk calls fn for every leaf (non-struct) field, with its dotted yaml path.
func walk(v reflect.Value, prefix string, fn func(string, reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			walk(f, path, fn)
			continue
		}
		fn(path, f)
	}
}

func format(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case []string:
		return strings.Join(x, ",")
	default:
		return fmt.Sprint(x)
	}
}

// applyEnv sets each field whose LATCH_<PATH> variable is present in env.
// Variables with the prefix that name no key are an error, so a typo is
// never silently ignored.
func applyEnv(c *Config, env []string) error {
	vals := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			vals[k] = v
		}
	}
	if len(vals) == 0 {
		return nil
	}
	var errs []string
	walk(reflect.ValueOf(c).Elem(), "", func(path string, f reflect.Value) {
		name := EnvName(path)
		s, ok := vals[name]
		if !ok {
			return
		}
		delete(vals, name)
		if err := set(f, s); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %q %v", name, s, err))
		}
	})
	for k, v := range vals {
		if serviceLink(k, v) {
			continue
		}
		msg := fmt.Sprintf("%s: no such configuration key", k)
		var names []string
		for _, key := range Keys() {
			names = append(names, key.Env)
		}
		switch best := closest(k, names); {
		case k == EnvPrefix+"AUTH_STRIP_AUTHORIZATION":
			msg += " (auth.strip_authorization was replaced by auth.handoff, LATCH_AUTH_HANDOFF: mode headers, the default, removes the credential latch consumed)"
		case best != "":
			msg += fmt.Sprintf(" (did you mean %s?)", best)
		}
		errs = append(errs, msg)
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("environment: %s", strings.Join(errs, "; "))
	}
	return nil
}

func set(f reflect.Value, s string) error {
	switch f.Interface().(type) {
	case Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("is not a duration like \"30s\"")
		}
		f.Set(reflect.ValueOf(Duration(d)))
		return nil
	case []string:
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		f.Set(reflect.ValueOf(out))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("is not true or false")
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("is not an integer")
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("is not a number")
		}
		f.SetFloat(x)
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// Kubernetes service links: for a Service named latch (or latch-<x>, whose
// variables start LATCH_<X>_), Kubernetes sets in every pod
//
//	LATCH_SERVICE_HOST=10.96.0.12
//	LATCH_SERVICE_PORT=8080
//	LATCH_SERVICE_PORT_<PORT NAME>=8080
//	LATCH_PORT=tcp://10.96.0.12:8080
//	LATCH_PORT_8080_TCP=tcp://10.96.0.12:8080
//	LATCH_PORT_8080_TCP_PROTO=tcp
//	LATCH_PORT_8080_TCP_PORT=8080
//	LATCH_PORT_8080_TCP_ADDR=10.96.0.12
//
// (Docker's legacy links use the same shapes). They are not configuration
// and are ignored, but only with exactly these names and values, so a typo
// of a real key is still refused.
var (
	linkHost     = regexp.MustCompile(`^LATCH(_[A-Z0-9_]+)?_SERVICE_HOST$`)
	linkPort     = regexp.MustCompile(`^LATCH(_[A-Z0-9_]+)?_SERVICE_PORT(_[A-Z0-9_]+)?$`)
	linkURL      = regexp.MustCompile(`^LATCH(_[A-Z0-9_]+)?_PORT$`)
	linkProtoURL = regexp.MustCompile(`^LATCH(?:_[A-Z0-9_]+)?_PORT_([0-9]+)_(TCP|UDP|SCTP)$`)
	linkPart     = regexp.MustCompile(`^LATCH(?:_[A-Z0-9_]+)?_PORT_([0-9]+)_(TCP|UDP|SCTP)_(PROTO|PORT|ADDR)$`)
)

func serviceLink(name, value string) bool {
	if m := linkPart.FindStringSubmatch(name); m != nil {
		switch m[3] {
		case "PROTO":
			return value == strings.ToLower(m[2])
		case "PORT":
			return value == m[1]
		}
		return net.ParseIP(value) != nil
	}
	if m := linkProtoURL.FindStringSubmatch(name); m != nil {
		proto, port, ok := linkAddr(value)
		return ok && proto == strings.ToLower(m[2]) && port == m[1]
	}
	switch {
	case linkHost.MatchString(name):
		return net.ParseIP(value) != nil
	case linkPort.MatchString(name):
		n, err := strconv.Atoi(value)
		return err == nil && n > 0 && n < 1<<16
	case linkURL.MatchString(name):
		_, _, ok := linkAddr(value)
		return ok
	}
	return false
}

// linkAddr splits "tcp://10.96.0.12:8080" into "tcp" and "8080".
func linkAddr(v string) (proto, port string, ok bool) {
	proto, hostPort, ok := strings.Cut(v, "://")
	if !ok || (proto != "tcp" && proto != "udp" && proto != "sctp") {
		return "", "", false
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil || net.ParseIP(host) == nil {
		return "", "", false
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n >= 1<<16 {
		return "", "", false
	}
	return proto, port, true
}
