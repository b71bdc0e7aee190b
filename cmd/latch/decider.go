package main

import (
	"github.com/latch-dev/latch/policy"
	"github.com/latch-dev/latch/proxy"
)

// decider adapts the policy engine to the proxy.
type decider struct{ e *policy.Engine }

func (d decider) Decide(sub string, roles []string, method, path string) (proxy.Decision, error) {
	r, err := d.e.Decide(sub, roles, method, path)
	return proxy.Decision{Allow: r.Allow, Rule: r.Rule, Permission: r.Permission, Pattern: r.Pattern}, err
}
