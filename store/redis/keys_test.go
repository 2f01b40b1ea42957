package redis

import (
	"strings"
	"testing"
	"time"
)

func TestUserKeys(t *testing.T) {
	k := keys{prefix: "p:"}
	tests := []struct{ user, want string }{
		{"alice", "p:{u:alice}:"},
		{"u-1_2.3@example.com+x=y", "p:{u:u-1_2.3@example.com+x=y}:"},
		{"a}b", "p:{u:a%7Db}:"},
		{"{a}:d:x", "p:{u:%7Ba%7D%3Ad%3Ax}:"},
		{"100%", "p:{u:100%25}:"},
		{"", "p:{u:}:"},
		{"ü", "p:{u:%C3%BC}:"},
	}
	for _, tc := range tests {
		if got := k.user(tc.user); got != tc.want {
			t.Errorf("user(%q): got %q, want %q", tc.user, got, tc.want)
		}
	}
}

// No user id can make its keys another user's: "a" with public id "x}:g"
// and the user "a}:d:x" with their generation were one key, unescaped.
func TestUserKeysDistinct(t *testing.T) {
	k := keys{prefix: "p:"}
	if a, b := idKey(k.user("a"), "x}:g"), genKey(k.user("a}:d:x")); a == b {
		t.Errorf("id key of a and generation of a}:d:x: both %q", a)
	}
}

func TestCheckPrefix(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"tether:", true},
		{"app:prod:sessions:", true},
		{"", true},
		{"{tether}:", false},
		{"te}ther:", false},
	}
	for _, tc := range tests {
		if err := checkPrefix(tc.prefix); (err == nil) != tc.ok {
			t.Errorf("checkPrefix(%q): got error %v, want ok=%v", tc.prefix, err, tc.ok)
		}
	}
}

// New checks its options before it connects.
func TestNewBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"brace in prefix", Options{KeyPrefix: "{tether}:"}, "key prefix"},
		{"negative MinReplicas", Options{MinReplicas: -1}, "MinReplicas -1"},
		{"negative timeout", Options{Timeout: -time.Second}, "timeouts must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(t.Context(), "redis://127.0.0.1:1", tc.opts)
			if err == nil {
				s.Close()
				t.Fatalf("New with %+v: got no error, want one", tc.opts)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New with %+v: got error %q, want it to say %q", tc.opts, err, tc.want)
			}
		})
	}
}
