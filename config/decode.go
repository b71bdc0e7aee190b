package config

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decode reads one YAML document from r into c. Before anything is set it
// checks the document against Config and reports every unknown key,
// duplicate key and value of the wrong kind, each with its line and in the
// user's terms (`line 3: policy.protect: want a list of path prefixes`),
// never YAML's or Go's (`cannot unmarshal !!str into []string`).
func decode(r io.Reader, c *Config) error {
	dec := yaml.NewDecoder(r)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty, blank or only comments: the defaults stand
		}
		return syntaxError(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return fmt.Errorf("line %d: a second YAML document starts here; latch reads one, put every key in it", next.Line)
	} else if !errors.Is(err, io.EOF) {
		return syntaxError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return nil
	}
	var ch checker
	ch.value(root, reflect.TypeOf(*c), "")
	if len(ch.errs) > 0 {
		return errors.Join(ch.errs...)
	}
	if err := root.Decode(c); err != nil {
		// The check above should have caught it; still no YAML internals.
		return errors.New(strings.NewReplacer("yaml: ", "", "unmarshal errors:\n  ", "").Replace(err.Error()))
	}
	return nil
}

// syntaxError rewrites a YAML parser error as "line N: not valid YAML: ...".
func syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			return fmt.Errorf("line %s: not valid YAML: %s", n, after)
		}
	}
	return fmt.Errorf("not valid YAML: %s", msg)
}

var durationType = reflect.TypeOf(Duration(0))

// checker walks a YAML node against the Go type it will be decoded into.
type checker struct{ errs []error }

func (ch *checker) fail(n *yaml.Node, format string, args ...any) {
	ch.errs = append(ch.errs, fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...)))
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// found describes what a node holds, for "want X, not Y".
func found(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func (ch *checker) value(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if isNull(n) {
		return // null keeps the default (and validation judges it)
	}
	want := func(what string) { ch.fail(n, "%s: want %s, not %s", orFile(path), what, found(n)) }
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			want(`a duration like "30s"`)
			return
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			hint := ""
			if n.ShortTag() == "!!int" || n.ShortTag() == "!!float" {
				hint = fmt.Sprintf(` (add a unit: "%ss")`, n.Value)
			}
			ch.fail(n, `%s: %q is not a duration like "30s"%s`, path, n.Value, hint)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			want("a map of keys (" + strings.Join(fieldNames(t), ", ") + ")")
			return
		}
		ch.mapping(n, t, path)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			want(listOf(path))
			return
		}
		for i, item := range n.Content {
			if item.Kind == yaml.AliasNode && item.Alias != nil {
				item = item.Alias
			}
			if item.Kind != yaml.ScalarNode || isNull(item) {
				ch.fail(item, "%s[%d]: want one value in the list, not %s", path, i, found(item))
			}
		}
	case n.Kind != yaml.ScalarNode:
		want(scalarWant(t, path))
	case t.Kind() == reflect.Bool:
		if n.ShortTag() != "!!bool" && !oldBool(n.Value) {
			want("true or false")
		}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		if n.ShortTag() != "!!int" {
			want("a whole number")
		}
	case t.Kind() == reflect.Float64:
		if n.ShortTag() != "!!int" && n.ShortTag() != "!!float" {
			want("a number")
		}
	}
}

// oldBool: yaml.v3 still decodes YAML 1.1's yes/no/on/off into a bool.
func oldBool(s string) bool {
	switch strings.ToLower(s) {
	case "y", "yes", "n", "no", "on", "off":
		return true
	}
	return false
}

// mapping checks each key of a map decoded into the struct type t.
func (ch *checker) mapping(n *yaml.Node, t reflect.Type, path string) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			ch.fail(k, "%s: a key must be a plain name, not %s", orTop(path), found(k))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" { // YAML merge key: check what it merges
			for _, m := range mergeSources(v) {
				ch.value(m, t, path)
			}
			continue
		}
		full := join(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			ch.fail(k, "key %q appears twice (first at line %d); keep one", full, line)
			continue
		}
		seen[k.Value] = k.Line
		f, ok := fieldByKey(t, k.Value)
		if !ok && full == "auth.strip_authorization" {
			ch.fail(k, "%q was replaced by auth.handoff: mode headers, the default, removes the credential latch consumed; list \"<prefix> passthrough\" where the upstream needs Authorization as sent", full)
			continue
		}
		if !ok {
			ch.fail(k, "unknown key %q%s", full, suggest(t, path, k.Value))
			continue
		}
		ch.value(v, f.Type, full)
	}
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	if v.Kind == yaml.SequenceNode {
		return v.Content
	}
	return []*yaml.Node{v}
}

func orFile(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); yamlName(f) == key && key != "" && key != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if name := yamlName(t.Field(i)); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// suggest proposes the key the user probably meant: a sibling a typo away,
// the same key in another section, or the nested form of a dotted key.
func suggest(t reflect.Type, path, key string) string {
	if path == "" && strings.Contains(key, ".") {
		for _, k := range Keys() {
			if k.Path == key {
				i := strings.LastIndex(key, ".")
				return fmt.Sprintf(" (write it nested: %s: on its own line, then %s: indented under it)", key[:i], key[i+1:])
			}
		}
	}
	if best := closest(key, fieldNames(t)); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", join(path, best))
	}
	var elsewhere []string
	for _, k := range Keys() {
		if k.Path == key || strings.HasSuffix(k.Path, "."+key) {
			elsewhere = append(elsewhere, k.Path)
		}
	}
	if len(elsewhere) > 0 {
		return fmt.Sprintf(" (did you mean %q? it belongs in another section)", elsewhere[0])
	}
	if path == "" {
		return " (the README's configuration reference lists every key)"
	}
	return fmt.Sprintf(" (the keys of %s are %s)", path, strings.Join(fieldNames(t), ", "))
}

// closest is the candidate nearest to s by edit distance, if it is near
// enough to be a typo (at most 2 edits, or a third of s); else "".
func closest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || (bestD > 2 && bestD > len(s)/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, by bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// listOf says what a list key holds, for "want a list of ...".
func listOf(path string) string {
	switch path {
	case "policy.protect":
		return "a list of path prefixes, like [/api/admin/]"
	case "auth.jwt.public_key_files":
		return "a list of PEM file paths, like [keys/idp.pem]"
	case "store.etcd.endpoints":
		return "a list of etcd client URLs, like [https://etcd-0:2379]"
	}
	return "a list, like [a, b]"
}

// scalarWant says what a scalar key holds, for "want ..., not a list".
func scalarWant(t reflect.Type, path string) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	}
	leaf := path[strings.LastIndex(path, ".")+1:]
	switch {
	case leaf == "listen" || strings.HasSuffix(leaf, "_listen"):
		return "one host:port address"
	case leaf == "upstream" || strings.HasSuffix(leaf, "url"):
		return "one URL"
	case strings.HasSuffix(leaf, "_file") || leaf == "data_dir" || path == "policy.model" || path == "policy.rules" || path == "policy.tests":
		return "one file path"
	}
	return "one value"
}
