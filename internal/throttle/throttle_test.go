package throttle

import (
	"testing"
	"time"
)

func TestConfigDelay(t *testing.T) {
	c := withDefaults(Config{})
	tests := []struct {
		failures int64
		want     time.Duration
	}{
		{0, 0}, {1, 0}, {5, 0},
		{6, time.Second}, {7, 2 * time.Second}, {8, 4 * time.Second},
		{15, 512 * time.Second}, {16, 15 * time.Minute}, {17, 15 * time.Minute},
		{1 << 40, 15 * time.Minute},
	}
	for _, tt := range tests {
		if got := c.delay(tt.failures); got != tt.want {
			t.Errorf("delay(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// PW-06: a wait is what is left of the delay, and never more than Max,
// even when the last attempt was made by a process whose clock is ahead.
func TestConfigWait(t *testing.T) {
	c := withDefaults(Config{Free: 1, Base: time.Second, Max: time.Minute})
	tests := []struct {
		name     string
		failures int64
		last     time.Time
		want     time.Duration
	}{
		{"within the allowance", 1, t0, 0},
		{"the whole delay", 2, t0, time.Second},
		{"part of the delay passed", 3, t0.Add(-1500 * time.Millisecond), 500 * time.Millisecond},
		{"the delay passed", 3, t0.Add(-time.Hour), 0},
		{"capped", 40, t0, time.Minute},
		{"another clock ahead: capped at Max", 2, t0.Add(time.Hour), time.Minute},
		{"another clock ahead, within the allowance", 1, t0.Add(time.Hour), 0},
	}
	for _, tt := range tests {
		if got := c.wait(tt.failures, tt.last, t0); got != tt.want {
			t.Errorf("%s: wait = %v, want %v", tt.name, got, tt.want)
		}
	}
}
