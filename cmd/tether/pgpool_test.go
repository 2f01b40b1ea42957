package main

import (
	"strings"
	"testing"
	"time"
)

var poolConfigTests = []struct {
	name    string
	url     string
	timeout time.Duration // the connect timeout wanted; 0: an error
}{
	{"no connect_timeout", "postgres://tether@127.0.0.1:5432/tether", pgConnectTimeout},
	{"connect_timeout given", "postgres://tether@127.0.0.1/tether?connect_timeout=2", 2 * time.Second},
	{"connect_timeout 0 is none: the default", "postgresql://tether@db/tether?connect_timeout=0", pgConnectTimeout},
	{"search_path kept", "postgres://tether:secret@db/tether?search_path=a&connect_timeout=10", 10 * time.Second},
	{"several hosts", "postgres://tether@db1:5432,db2:5433/tether", pgConnectTimeout},
	{"keyword/value form", "host=127.0.0.1 user=tether dbname=tether connect_timeout=3", 3 * time.Second},
	{"negative connect_timeout", "postgres://tether@db/tether?connect_timeout=-1", 0},
	{"connect_timeout not a number", "postgres://tether@db/tether?connect_timeout=5s", 0},
	{"bad port", "postgres://tether:secret@db:99999/tether", 0},
	{"bad escape", "postgres://tether:sec%zzret@db/tether", 0},
}

// MISC-05: every PostgreSQL pool has a connect timeout and TCP keepalives.
func TestMISC05_PoolConfig(t *testing.T) {
	for _, tt := range poolConfigTests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := poolConfig(tt.url)
			if tt.timeout == 0 {
				if err == nil {
					t.Fatalf("got no error, want one")
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "sec%zz") {
					t.Errorf("error %q repeats the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.ConnConfig.ConnectTimeout; got != tt.timeout {
				t.Errorf("connect timeout %v, want %v", got, tt.timeout)
			}
			if cfg.ConnConfig.DialFunc == nil {
				t.Error("no dial function")
			}
		})
	}
}

func FuzzPoolConfig(f *testing.F) {
	for _, tt := range poolConfigTests {
		f.Add(tt.url)
	}
	f.Fuzz(func(t *testing.T, url string) {
		cfg, err := poolConfig(url)
		if err != nil {
			if err != errPoolURL {
				t.Fatalf("error %v, want errPoolURL", err)
			}
			return
		}
		if cfg.ConnConfig.ConnectTimeout <= 0 || cfg.ConnConfig.DialFunc == nil {
			t.Fatalf("%q: connect timeout %v, dial function set %v", url, cfg.ConnConfig.ConnectTimeout, cfg.ConnConfig.DialFunc != nil)
		}
	})
}
