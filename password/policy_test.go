package password

import (
	"errors"
	"strings"
	"testing"
)

func TestPW01_Length(t *testing.T) {
	tests := []struct {
		name     string
		policy   Policy
		password string
		want     error
	}{
		{"7 characters", Policy{}, "tether7", ErrTooShort},
		{"8 characters", Policy{}, "tether-8", nil},
		{"7 code points in 13 bytes", Policy{}, "ключ-аб", ErrTooShort},
		{"8 code points in 14 bytes", Policy{}, "ключ-аб8", nil},
		{"7 emoji in 28 bytes", Policy{}, strings.Repeat("🔑", 7), ErrTooShort},
		{"8 emoji", Policy{}, strings.Repeat("🔑", 8), nil},
		{"14 with MinLength 15", Policy{MinLength: 15}, "fourteen chars", ErrTooShort},
		{"15 with MinLength 15", Policy{MinLength: 15}, "fifteen chars!!", nil},
		{"1024 bytes", Policy{}, strings.Repeat("ab", 512), nil},
		{"1025 bytes", Policy{}, strings.Repeat("ab", 512) + "c", ErrTooLong},
		{"64 bytes with MaxLength 64", Policy{MaxLength: 64}, strings.Repeat("🔑", 16), nil},
		{"68 bytes with MaxLength 64", Policy{MaxLength: 64}, strings.Repeat("🔑", 17), ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.Check(tt.password, "alice"); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestPW01_NoCompositionRules: any mix of characters of an acceptable
// length is accepted as is.
func TestPW01_NoCompositionRules(t *testing.T) {
	tests := []struct{ name, password string }{
		{"lower case only", "correct horse battery staple"},
		{"digits only", "83920174615"},
		{"spaces around, kept as typed", "  padded with spaces  "},
		{"control characters", "tab\there and\nnewline"},
		{"NUL", "nul\x00inside"},
		{"no ASCII at all", "密码是一句很长的话"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := (Policy{}).Check(tt.password, "alice"); err != nil {
				t.Errorf("got %v, want <nil>", err)
			}
		})
	}
}

// TestPW09_PolicyNormalizes: Check judges the normalised password, the one
// Hash stores, and refuses invalid UTF-8 as Hash does.
func TestPW09_PolicyNormalizes(t *testing.T) {
	tests := []struct {
		name     string
		password string
		want     error
	}{
		{"7 decomposed é: 14 code points, 7 once normalised", strings.Repeat("e\u0301", 7), ErrTooShort},
		{"4 ligatures: 8 code points once normalised", "\ufb01\ufb02\ufb01\ufb02", nil},
		{"full-width username", "\uff21\uff4c\uff49\uff43\uff45.smith", ErrMatchesUsername},
		{"full-width common password", "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44", ErrCommon},
		{"invalid UTF-8", "invalid \xff\xfe utf-8", ErrInvalidUTF8},
		{"Latin-1", "cr\xe8me br\xfbl\xe9e", ErrInvalidUTF8},
		{"too long and invalid", strings.Repeat("\xff", MaxBytes+1), ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := (Policy{}).Check(tt.password, "alice.smith"); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	if err := (Policy{}).Check("élodie.smith", "E\u0301lodie.smith"); !errors.Is(err, ErrMatchesUsername) {
		t.Errorf("decomposed username: got %v, want ErrMatchesUsername", err)
	}
}

func TestPW01_PolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		wantErr string
	}{
		{"zero", Policy{}, ""},
		{"recommended", Policy{MinLength: 15}, ""},
		{"shortest MaxLength", Policy{MaxLength: 64}, ""},
		{"MinLength below 8", Policy{MinLength: 7}, "MinLength=7, want at least 8"},
		{"negative MinLength", Policy{MinLength: -1}, "MinLength=-1"},
		{"MaxLength below 64", Policy{MaxLength: 63}, "MaxLength=63 is outside 64..1024"},
		{"MaxLength above MaxBytes", Policy{MaxLength: 1025}, "MaxLength=1025 is outside 64..1024"},
		{"MinLength above MaxLength", Policy{MinLength: 100, MaxLength: 64}, "MinLength=100 is more than MaxLength=64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want <nil>", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want ErrInvalidConfig with %q", err, tt.wantErr)
			}
			// An invalid policy refuses every password rather than letting
			// weak ones through.
			if err := tt.policy.Check("a perfectly fine password", "alice"); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Check: got %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestPW02_Common(t *testing.T) {
	tests := []struct {
		password string
		want     error
	}{
		{"password", ErrCommon},
		{"Password", ErrCommon},
		{"PASSWORD1", ErrCommon},
		{"P@ssw0rd", ErrCommon},
		{"12345678", ErrCommon},
		{"iloveyou", ErrCommon},
		{"qwerty123", ErrCommon},
		{"1q2w3e4r5t", ErrCommon},
		{"trustno1", ErrCommon},
		{"football2024", ErrCommon},
		{"123456", ErrTooShort}, // common, but too short comes first
		{"password is not enough", nil},
		{"tether-2-go", nil},
	}
	for _, tt := range tests {
		t.Run(tt.password, func(t *testing.T) {
			if err := (Policy{}).Check(tt.password, "alice"); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestPW02_CommonListFormat holds common.txt to what commonPasswords
// expects: one lower-case password per line, each once, no blank line.
func TestPW02_CommonListFormat(t *testing.T) {
	if !strings.HasSuffix(commonText, "\n") || strings.Contains(commonText, "\r") {
		t.Fatal("want LF line endings and a final newline")
	}
	lines := strings.Split(strings.TrimSuffix(commonText, "\n"), "\n")
	seen := make(map[string]bool, len(lines))
	long := 0
	for i, line := range lines {
		switch {
		case line == "":
			t.Errorf("line %d: blank", i+1)
		case line != strings.ToLower(line):
			t.Errorf("line %d: %q is not lower case", i+1, line)
		case seen[line]:
			t.Errorf("line %d: %q again", i+1, line)
		}
		seen[line] = true
		if len(line) >= defaultMinLength {
			long++
		}
	}
	if long < 1000 {
		t.Errorf("got %v entries of 8 characters or more, want at least 1000", long)
	}
	for _, pw := range []string{"123456", "password", "qwerty", "iloveyou", "12345678", "123456789", "qwertyuiop"} {
		if _, ok := commonPasswords()[pw]; !ok {
			t.Errorf("%q is missing", pw)
		}
	}
}

func TestPW02_Username(t *testing.T) {
	tests := []struct {
		name     string
		password string
		username string
		want     error
	}{
		{"same", "alice.smith", "alice.smith", ErrMatchesUsername},
		{"other case", "ALICE.Smith", "alice.smith", ErrMatchesUsername},
		{"username not canonical", "alice.smith", " Alice.Smith ", ErrMatchesUsername},
		{"non-ASCII case", "ÉLODIE-MARTIN", "élodie-martin", ErrMatchesUsername},
		{"username and more", "alice.smith1", "alice.smith", nil},
		{"no username", "alice.smith", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := (Policy{}).Check(tt.password, tt.username); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestPolicyMessages: what a user is told says what to do.
func TestPolicyMessages(t *testing.T) {
	tests := []struct {
		name     string
		policy   Policy
		password string
		want     string
	}{
		{"too short", Policy{}, "short", "password is too short: use at least 8 characters"},
		{"too short for 15", Policy{MinLength: 15}, "fourteen chars", "password is too short: use at least 15 characters"},
		{"too long", Policy{MaxLength: 64}, strings.Repeat("x", 65), "password is too long: use at most 64 characters (fewer if some are not plain ASCII)"},
		{"common", Policy{}, "iloveyou", "password is too common: it is on a list of passwords attackers try first; choose another, for example a few unrelated words"},
		{"username", Policy{}, "alice.smith", "password is the same as the username: choose a password that is not your username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.password, "alice.smith")
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}
