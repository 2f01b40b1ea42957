package password

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// emoji are 17 different emoji of 4 bytes each.
const emoji = "🔑🔒🔐🔓🛡🧩🎲🪁🌵🍋🐙🦊🚲🧭🎻🪐🌋"

// strongStart begins passwords that zxcvbn judges hard to guess.
const strongStart = "plum otter quietly 42 "

// pad returns s followed by as many x as make it n bytes long.
func pad(s string, n int) string {
	return s + strings.Repeat("x", n-len(s))
}

// upTo returns the longest start of s that has at most n bytes and ends
// on a character boundary.
func upTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// checkTest is a case of Policy.Check for the account "alice"; the tables
// also seed FuzzPolicyCheck.
type checkTest struct {
	name     string
	policy   Policy
	password string
	want     error
}

// runChecks runs the cases of tests against username.
func runChecks(t *testing.T, username string, tests []checkTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.Check(tt.password, username); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

var lengthTests = []checkTest{
	{"7 characters", Policy{}, "q7#Lm2v", ErrTooShort},
	{"8 characters", Policy{}, "q7#Lm2vX", nil},
	{"7 code points in 13 bytes", Policy{}, "ключ-аб", ErrTooShort},
	{"8 code points in 14 bytes", Policy{}, "ключ-аб8", nil},
	{"7 emoji in 28 bytes", Policy{}, emoji[:7*4], ErrTooShort},
	{"8 emoji", Policy{}, emoji[:8*4], nil},
	{"14 with MinLength 15", Policy{MinLength: 15}, "fourteen chars", ErrTooShort},
	{"15 with MinLength 15", Policy{MinLength: 15}, "fifteen chars!!", nil},
	{"1024 bytes", Policy{}, pad(strongStart, 1024), nil},
	{"1025 bytes", Policy{}, pad(strongStart, 1025), ErrTooLong},
	{"64 bytes with MaxLength 64", Policy{MaxLength: 64}, emoji[:16*4], nil},
	{"68 bytes with MaxLength 64", Policy{MaxLength: 64}, emoji, ErrTooLong},
}

func TestPW01_Length(t *testing.T) {
	runChecks(t, "alice", lengthTests)
}

// compositionTests: any mix of characters of an acceptable length is
// accepted as is.
var compositionTests = []checkTest{
	{"lower case only", Policy{}, "correct horse battery staple", nil},
	{"digits only", Policy{}, "83920174615", nil},
	{"spaces around, kept as typed", Policy{}, "  padded with spaces  ", nil},
	{"control characters", Policy{}, "tab\there and\nnewline", nil},
	{"NUL", Policy{}, "nul\x00inside", nil},
	{"no ASCII at all", Policy{}, "密码是一句很长的话", nil},
}

func TestPW01_NoCompositionRules(t *testing.T) {
	runChecks(t, "alice", compositionTests)
}

// normalizePolicyTests: Check judges the normalised password, the one Hash
// stores, and refuses invalid UTF-8 as Hash does.
var normalizePolicyTests = []checkTest{
	{"7 decomposed é: 14 code points, 7 once normalised", Policy{}, strings.Repeat("e\u0301", 7), ErrTooShort},
	{"6 code points, 10 once normalised", Policy{}, "\ufb01\ufb02\u338f\uff3a\u2460\ufb00", nil},
	{"full-width common password", Policy{}, "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44", ErrCommon},
	{"invalid UTF-8", Policy{}, "invalid \xff\xfe utf-8", ErrInvalidUTF8},
	{"Latin-1", Policy{}, "cr\xe8me br\xfbl\xe9e", ErrInvalidUTF8},
	{"too long and invalid", Policy{}, strings.Repeat("\xff", MaxBytes+1), ErrTooLong},
}

func TestPW09_PolicyNormalizes(t *testing.T) {
	runChecks(t, "alice", normalizePolicyTests)
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

// commonTests: what attackers try early is refused (PW-02), whatever its
// spelling; what they don't, is not.
var commonTests = []checkTest{
	{"password", Policy{}, "password", ErrCommon},
	{"capitalised", Policy{}, "Password", ErrCommon},
	{"upper case and a digit", Policy{}, "PASSWORD1", ErrCommon},
	{"l33t", Policy{}, "P@ssw0rd", ErrCommon},
	{"l33t and more", Policy{}, "Pa$$w0rd!", ErrCommon},
	{"reversed", Policy{}, "drowssap", ErrCommon},
	{"digits", Policy{}, "12345678", ErrCommon},
	{"digits down", Policy{}, "9876543210", ErrCommon},
	{"letters in order", Policy{}, "abcdefghijk", ErrCommon},
	{"breach favourite", Policy{}, "iloveyou", ErrCommon},
	{"breach favourite 2", Policy{}, "trustno1", ErrCommon},
	{"keyboard row", Policy{}, "qwertyuiop", ErrCommon},
	{"keyboard row and digits", Policy{}, "qwerty123", ErrCommon},
	{"keyboard columns", Policy{}, "1qaz2wsx3edc", ErrCommon},
	{"keyboard zigzag", Policy{}, "1q2w3e4r5t", ErrCommon},
	{"keyboard row with symbols", Policy{}, "asdfghjkl;", ErrCommon},
	{"word and digits", Policy{}, "monkey123", ErrCommon},
	{"word and year", Policy{}, "football2014", ErrCommon},
	{"name and year", Policy{}, "jennifer1987", ErrCommon},
	{"date", Policy{}, "19/08/1985", ErrCommon},
	{"ISO date", Policy{}, "1985-08-19", ErrCommon},
	{"repeated pattern", Policy{}, "abc123abc123", ErrCommon},
	{"the service and a year", Policy{}, "tether2017", ErrCommon},
	{"the service twice", Policy{}, "tethertether", ErrCommon},
	{"common, but too short first", Policy{}, "123456", ErrTooShort},
	{"a few words", Policy{}, "password is not enough", nil},
	{"a passphrase", Policy{}, "correct horse battery staple", nil},
	{"a short sentence", Policy{}, "my cat eats kale at 6", nil},
	{"words and digits", Policy{}, "tether-2-go", nil},
	{"xkcd's example", Policy{}, "Tr0ub4dour&3", nil},
}

func TestPW02_Common(t *testing.T) {
	runChecks(t, "alice", commonTests)
}

// prefixTests: zxcvbn judges the first 20 code points only (PW-04): a
// password that starts hard to guess is accepted whatever follows, one that
// starts easy to guess is refused whatever follows, and a common password
// or a long word is judged whole.
var prefixTests = []checkTest{
	{"strong start, then 1 KiB of one letter", Policy{}, pad(strongStart, MaxBytes), nil},
	{"weak start, then a strong end", Policy{}, "passwordpasswordpassword" + strongStart, ErrCommon},
	{"weak start, then 1 KiB of assorted text", Policy{}, pad("passwordpasswordpassword"+strings.Repeat(strongStart+emoji, 10), MaxBytes), ErrCommon},
	{"a word of 18 letters", Policy{}, "telecommunications", ErrCommon},
	{"a word of 20 letters", Policy{}, "internationalization", ErrCommon},
	{"the longest common password zxcvbn knows", Policy{}, "12345678900987654321", ErrCommon},
}

func TestPW02_LongPasswordJudgedOnItsStart(t *testing.T) {
	runChecks(t, "alice", prefixTests)
}

func TestPW02_Prefix(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"", 20, ""},
		{"short", 20, "short"},
		{"abcdef", 3, "abc"},
		{"ключ-аб8", 4, "ключ"},
		{emoji, 2, emoji[:8]},
		{"abc", 0, ""},
		{"abc", 3, "abc"},
	}
	for _, tt := range tests {
		if got := prefix(tt.s, tt.n); got != tt.want {
			t.Errorf("prefix(%q, %d): got %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

// blankTests: white space only, and one character repeated, are refused
// with their own errors (PW-02), in any spelling.
var blankTests = []checkTest{
	{"8 spaces", Policy{}, "        ", ErrBlank},
	{"12 spaces", Policy{}, "            ", ErrBlank},
	{"tabs and line breaks", Policy{}, "\t\n \t\n \r\n", ErrBlank},
	{"no-break spaces", Policy{}, strings.Repeat("\u00a0", 8), ErrBlank},
	{"ideographic spaces", Policy{}, strings.Repeat("\u3000", 8), ErrBlank},
	{"7 spaces", Policy{}, "       ", ErrTooShort},
	{"one letter 12 times", Policy{}, "aaaaaaaaaaaa", ErrRepeated},
	{"one letter, 1 KiB", Policy{}, strings.Repeat("a", MaxBytes), ErrRepeated},
	{"one digit", Policy{}, "11111111", ErrRepeated},
	{"one emoji", Policy{}, strings.Repeat("🔑", 8), ErrRepeated},
	{"one full-width letter", Policy{}, strings.Repeat("\uff41", 8), ErrRepeated},
	{"one decomposed é", Policy{}, strings.Repeat("e\u0301", 8), ErrRepeated},
	{"one letter, two cases", Policy{}, "aAaAaAaA", ErrCommon},
	{"two letters", Policy{}, "abababab", ErrCommon},
	{"a space, then one letter", Policy{}, " aaaaaaaaaaa", ErrCommon},
	{"words between spaces", Policy{}, "   plum otter quietly 42   ", nil},
}

func TestPW02_BlankOrRepeated(t *testing.T) {
	runChecks(t, "alice", blankTests)
}

// usernameTests: the username, and passwords built on it or on the name of
// the service, are refused (PW-02).
var usernameTests = []struct {
	name     string
	password string
	username string
	want     error
}{
	{"same", "alice.smith", "alice.smith", ErrMatchesUsername},
	{"other case", "ALICE.Smith", "alice.smith", ErrMatchesUsername},
	{"username not canonical", "alice.smith", " Alice.Smith ", ErrMatchesUsername},
	{"non-ASCII case", "ÉLODIE-MARTIN", "élodie-martin", ErrMatchesUsername},
	{"decomposed username", "élodie-martin", "E\u0301lodie-martin", ErrMatchesUsername},
	{"full-width password", "\uff41\uff4c\uff49\uff43\uff45\uff0e\uff53\uff4d\uff49\uff54\uff48", "alice.smith", ErrMatchesUsername},
	{"username and a digit", "alice.smith1", "alice.smith", ErrCommon},
	{"parts of the username", "martinélodie", "élodie-martin", ErrCommon},
	{"the service's name and a digit", "tether12", "alice", ErrCommon},
	{"no username", "alice.smith", "", nil},
	{"someone else's username", "zq.vexlund", "alice", nil},
}

func TestPW02_Username(t *testing.T) {
	for _, tt := range usernameTests {
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
		{"not UTF-8", Policy{}, "caf\xe9 au lait", "password is not valid UTF-8 text: set your terminal or client to UTF-8 and type it again"},
		{"blank", Policy{}, "          ", "password is only spaces: use letters, digits or other characters too, for example a few unrelated words"},
		{"repeated", Policy{}, "xxxxxxxxxx", "password is one character repeated: use different characters, for example a few unrelated words"},
		{"common", Policy{}, "iloveyou", "password is too common: attackers try it early (common passwords, words, names, dates, keyboard patterns, your username); choose another, for example a few unrelated words"},
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

// TestPolicyConcurrent: Check is safe for concurrent use (run with -race).
func TestPolicyConcurrent(t *testing.T) {
	done := make(chan error)
	for _, pw := range []string{"correct horse battery staple", "P@ssw0rd", "1qaz2wsx3edc", "19/08/1985"} {
		go func() { done <- (Policy{}).Check(pw, "alice") }()
	}
	for range 4 {
		<-done
	}
}

// FuzzPolicyCheck: Check never panics, and for any input either accepts
// or refuses with one of its sentinels; what it accepts, Hash accepts.
func FuzzPolicyCheck(f *testing.F) {
	for _, tests := range [][]checkTest{lengthTests, compositionTests, normalizePolicyTests, commonTests, prefixTests, blankTests} {
		for _, tt := range tests {
			f.Add(tt.password, "alice")
		}
	}
	for _, tt := range usernameTests {
		f.Add(tt.password, tt.username)
	}
	for _, tt := range normalizeTests {
		f.Add(tt.in, "")
	}
	f.Fuzz(func(t *testing.T, password, username string) {
		err := (Policy{}).Check(password, username)
		switch {
		case err == nil:
			if len(password) > MaxBytes || !utf8.ValidString(password) {
				t.Fatalf("accepted %q, which Hash refuses", password)
			}
			normalized, _ := Normalize(password)
			first, _ := utf8.DecodeRuneInString(normalized)
			if utf8.RuneCountInString(normalized) < defaultMinLength || strings.TrimSpace(normalized) == "" ||
				strings.Trim(normalized, string(first)) == "" {
				t.Fatalf("accepted %q: too short, blank or one character repeated", password)
			}
		case errors.Is(err, ErrTooLong), errors.Is(err, ErrInvalidUTF8), errors.Is(err, ErrTooShort),
			errors.Is(err, ErrBlank), errors.Is(err, ErrRepeated), errors.Is(err, ErrMatchesUsername),
			errors.Is(err, ErrCommon):
		default:
			t.Fatalf("got %v, want nil or a sentinel of the package", err)
		}
	})
}

// BenchmarkPolicyCheck: what Check costs, up to MaxLength bytes of the
// inputs that cost zxcvbn most (PW-04).
func BenchmarkPolicyCheck(b *testing.B) {
	const l33t = "4@8({[<3691!|70$5+%2" // every character zxcvbn reads as l33t
	tests := []struct{ name, password string }{
		{"passphrase", "correct horse battery staple"},
		{"common", "P@ssw0rd"},
		{"1KiB assorted", upTo(strings.Repeat("Ωé🔑 "+l33t+" correct horse 1990 ", 40), MaxBytes)},
		{"1KiB after every l33t character", pad(l33t+"qz.-", MaxBytes)},
		{"1KiB emoji", upTo(strings.Repeat(emoji, 16), MaxBytes)},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				(Policy{}).Check(tt.password, "alice")
			}
		})
	}
}
