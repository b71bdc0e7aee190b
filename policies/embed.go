// Package policies holds the shipped Casbin model, rules and known answers
// that ops copy and edit. The files are data; this package only embeds them
// so `latch demo` can run from anywhere.
package policies

import "embed"

// Files holds model.conf, policy.csv and policy.tests.
//
//go:embed model.conf policy.csv policy.tests
var Files embed.FS
