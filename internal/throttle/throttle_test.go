package throttle

import (
	"reflect"
	"testing"
	"time"
)

func TestConfigDelay(t *testing.T) {
	c := withDefaults(Config{})
	tests := []struct {
		attempts int64
		free     int
		want     time.Duration
	}{
		{0, 5, 0}, {1, 5, 0}, {5, 5, 0},
		{6, 5, time.Second}, {7, 5, 2 * time.Second}, {8, 5, 4 * time.Second},
		{15, 5, 512 * time.Second}, {16, 5, 15 * time.Minute}, {17, 5, 15 * time.Minute},
		{1 << 40, 5, 15 * time.Minute},
		{1, 0, time.Second}, {2, 0, 2 * time.Second},
		{20, 20, 0}, {21, 20, time.Second},
	}
	for _, tt := range tests {
		if got := c.delay(tt.attempts, tt.free); got != tt.want {
			t.Errorf("delay(%d, %d) = %v, want %v", tt.attempts, tt.free, got, tt.want)
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
		attempts int64
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
		if got := c.wait(tt.attempts, c.Free, tt.last, t0); got != tt.want {
			t.Errorf("%s: wait = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestConfigKeys(t *testing.T) {
	c := withDefaults(Config{Free: 5})
	tests := []struct {
		name string
		keys []Key
		want []Key
	}{
		{"none", nil, []Key{}},
		{"0 means Config.Free", []Key{{Name: "ip:a"}}, []Key{{Name: "ip:a", Free: 5}}},
		{"sorted bytewise", []Key{{Name: "user:b", Free: 1}, {Name: "user:B", Free: 2}, {Name: "ip:a", Free: 3}},
			[]Key{{Name: "ip:a", Free: 3}, {Name: "user:B", Free: 2}, {Name: "user:b", Free: 1}}},
		{"a name given twice: the stricter allowance", []Key{{Name: "user:a", Free: 7}, {Name: "user:a", Free: 2}, {Name: "user:a", Free: 0}},
			[]Key{{Name: "user:a", Free: 2}}},
		{"the default is stricter", []Key{{Name: "user:a", Free: 7}, {Name: "user:a"}}, []Key{{Name: "user:a", Free: 5}}},
		{"the slower leak", []Key{{Name: "ip:a", Leak: time.Second}, {Name: "ip:a", Leak: time.Minute}, {Name: "ip:b", Leak: time.Second}, {Name: "ip:b"}},
			[]Key{{Name: "ip:a", Free: 5, Leak: time.Minute}, {Name: "ip:b", Free: 5}}},
	}
	for _, tt := range tests {
		got, err := c.keys(tt.keys)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: keys(%v) = %v, %v; want %v, nil", tt.name, tt.keys, got, err, tt.want)
		}
	}
	if got, err := c.keys([]Key{{Name: "ip:a", Free: 1}, {Name: "user:a", Free: -1}}); err == nil {
		t.Errorf("keys with Free -1 = %v, nil; want an error", got)
	}
}

// PW-06: an attempt is allowed only when no key must wait; then each key
// counts one more, at now (or at its later time, from a clock ahead);
// otherwise nothing is written.
func TestConfigReserve(t *testing.T) {
	c := withDefaults(Config{Free: 1, Base: time.Second, Max: time.Minute, Forget: time.Hour})
	ahead := t0.Add(time.Minute)
	tests := []struct {
		name     string
		keys     []Key
		recs     map[string]record
		wantWait time.Duration
		want     []record
	}{
		{"no records", []Key{{Name: "a", Free: 1}, {Name: "b", Free: 1}}, nil,
			0, []record{{1, t0}, {1, t0}}},
		{"within the allowance", []Key{{Name: "a", Free: 1}}, map[string]record{"a": {1, t0}},
			0, []record{{2, t0}}},
		{"one key must wait", []Key{{Name: "a", Free: 1}, {Name: "b", Free: 1}}, map[string]record{"b": {2, t0}},
			time.Second, nil},
		{"the longest wait", []Key{{Name: "a", Free: 1}, {Name: "b", Free: 1}}, map[string]record{"a": {3, t0}, "b": {2, t0}},
			2 * time.Second, nil},
		{"its own allowance", []Key{{Name: "a", Free: 3}}, map[string]record{"a": {3, t0}},
			0, []record{{4, t0}}},
		{"the delay passed", []Key{{Name: "a", Free: 1}}, map[string]record{"a": {2, t0.Add(-time.Second)}},
			0, []record{{3, t0}}},
		{"forgotten", []Key{{Name: "a", Free: 1}}, map[string]record{"a": {40, t0.Add(-time.Hour)}},
			0, []record{{1, t0}}},
		{"a clock ahead: its time stays", []Key{{Name: "a", Free: 1}}, map[string]record{"a": {1, ahead}},
			0, []record{{2, ahead}}},
		{"leaking: drained enough", []Key{{Name: "a", Free: 1, Leak: time.Second}}, map[string]record{"a": {3, t0.Add(-2 * time.Second)}},
			0, []record{{2, t0}}},
		{"leaking: not enough yet", []Key{{Name: "a", Free: 1, Leak: time.Minute}}, map[string]record{"a": {3, t0.Add(-time.Second)}},
			time.Second, nil},
		{"leaking: never below zero", []Key{{Name: "a", Free: 1, Leak: time.Second}}, map[string]record{"a": {3, t0.Add(-time.Minute)}},
			0, []record{{1, t0}}},
	}
	for _, tt := range tests {
		wait, got := c.reserve(tt.keys, tt.recs, t0)
		if wait != tt.wantWait || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: reserve = %v, %v; want %v, %v", tt.name, wait, got, tt.wantWait, tt.want)
		}
	}
}
