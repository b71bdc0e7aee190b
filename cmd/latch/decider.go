package main

import (
	"github.com/latch-dev/latch/policy"
	"github.com/latch-dev/latch/proxy"
)

// decider adapts the policy engine to the proxy: the proxy passes every
// method and every reading of the path, the engine decides them as one
// request (policy.Engine.DecideAll). latch policy explain asks it too.
type decider struct{ e *policy.Engine }

func (d decider) Decide(sub string, roles []string, methods, readings []string) (proxy.Decision, error) {
	v, err := d.e.DecideAll(sub, roles, methods, readings)
	return proxy.Decision{Allow: v.Allow, Rule: v.Rule, Permission: v.Permission, Pattern: v.Pattern,
		Method: v.Method, Path: v.Path}, err
}
