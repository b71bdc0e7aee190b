package main

import (
	"testing"
	"time"
)

func TestSessionCache(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	changed := time.Unix(500, 0)

	exact := newSessionCache(3, 0, 0, clock)
	exact.put("a", changed)
	now = now.Add(24 * time.Hour)
	if got, fresh, _ := exact.get("a"); !fresh || !got.Equal(changed) {
		t.Errorf("ttl 0: got %v fresh=%v, want %v fresh after a day", got, fresh, changed)
	}
	exact.drop("a")
	if _, fresh, usable := exact.get("a"); fresh || usable {
		t.Error("dropped entry still served")
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		exact.put(k, changed)
	}
	if len(exact.m) > 3 {
		t.Errorf("cache holds %d entries, want at most 3", len(exact.m))
	}

	shared := newSessionCache(10, 5*time.Second, 5*time.Minute, clock)
	shared.put("a", changed)
	tests := []struct {
		after         time.Duration
		fresh, usable bool
	}{
		{time.Second, true, true},
		{6 * time.Second, false, true},
		{6 * time.Minute, false, false},
	}
	start := now
	for _, tt := range tests {
		now = start.Add(tt.after)
		if _, fresh, usable := shared.get("a"); fresh != tt.fresh || usable != tt.usable {
			t.Errorf("after %v: fresh=%v usable=%v, want %v %v", tt.after, fresh, usable, tt.fresh, tt.usable)
		}
	}
}
