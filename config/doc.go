// Package config parses and validates latch's YAML configuration file.
//
// Loading happens in three steps, in this order:
//
//  1. defaults (Default),
//  2. a strict YAML decode. Unknown and duplicate keys and values of the
//     wrong kind are errors in the user's terms, with the line:
//     `line 2: unknown key "upstrem" (did you mean "upstream"?)`,
//     `line 3: policy.protect: want a list of path prefixes, like [/api/admin/], not "/api/admin/"`.
//     No YAML tag or Go type reaches the user.
//  3. environment overrides: every scalar key can be set by LATCH_<PATH>,
//     where PATH is the key's path upper-cased with "." replaced by "_"
//     (policy.rules is LATCH_POLICY_RULES). List keys take a
//     comma-separated value. Any other LATCH_ variable is an error, except
//     the service links Kubernetes injects for a Service named latch or
//     latch-<x> (LATCH_SERVICE_HOST, LATCH_PORT_8080_TCP_ADDR, ...), which
//     are recognised by name and value and ignored.
//
// Then Validate checks every field and reports each bad one with its name
// and value. Relative file paths are resolved against the directory of the
// config file, as Prometheus does, so a config file and the policies beside
// it can be moved together.
//
// The package has no side effects: it reads the one file it is given and the
// environment map it is passed, and opens nothing else.
package config
