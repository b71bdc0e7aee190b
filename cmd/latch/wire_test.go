package main

import (
	"testing"
	"time"

	"github.com/latch-dev/latch/config"
)

// policy.settle and policy.poll_interval say 0 for "off"; policy.Options
// says a negative (its zero is a default), so the mapping is the wiring.
func TestPolicyOptionsMapsOff(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ cfg, want time.Duration }{{0, -1}, {time.Second, time.Second}, {250 * time.Millisecond, 250 * time.Millisecond}} {
		cfg := config.Default()
		cfg.Policy.Settle = config.Duration(tt.cfg)
		cfg.Policy.PollInterval = config.Duration(tt.cfg)
		o := policyOptions(cfg)
		if o.Settle != tt.want || o.PollInterval != tt.want {
			t.Errorf("config %v: Settle %v, PollInterval %v; want %v", tt.cfg, o.Settle, o.PollInterval, tt.want)
		}
	}
}

// The session cookie is Secure (and __Host-) for an https public URL in
// any case of its scheme: config accepts HTTPS://, and a review found a
// prefix check turning Secure off for it.
func TestIsHTTPS(t *testing.T) {
	t.Parallel()
	for u, want := range map[string]bool{"https://a.example": true, "HTTPS://a.example": true, "Https://a.example/x": true,
		"http://a.example": false, "https-ish://a": false, "": false} {
		if got := isHTTPS(u); got != want {
			t.Errorf("isHTTPS(%q) = %v, want %v", u, got, want)
		}
	}
}
