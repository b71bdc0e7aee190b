// Package config parses and validates latch's YAML configuration file.
//
// Loading happens in three steps, in this order:
//
//  1. defaults (Default),
//  2. a strict YAML decode that rejects unknown keys, naming them,
//  3. environment overrides: every scalar key can be set by LATCH_<PATH>,
//     where PATH is the key's path upper-cased with "." replaced by "_"
//     (policy.rules is LATCH_POLICY_RULES). List keys take a
//     comma-separated value.
//
// Then Validate checks every field and reports each bad one with its name
// and value. Relative file paths are resolved against the directory of the
// config file, as Prometheus does, so a config file and the policies beside
// it can be moved together.
//
// The package has no side effects: it reads the one file it is given and the
// environment map it is passed, and opens nothing else.
package config
