package denylist

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/session"
)

var exp = time.Date(2030, time.March, 4, 12, 30, 45, 123456000, time.UTC)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		r    session.Revocation
		ok   bool
	}{
		{"jti", session.Revocation{JTI: "a1", Exp: exp}, true},
		{"subject", session.Revocation{Subject: "client:billing", Gen: 3, Exp: exp}, true},
		{"subject at generation 0", session.Revocation{Subject: "user:u_x", Exp: exp}, true},
		{"longest id", session.Revocation{JTI: strings.Repeat("x", MaxIDLen), Exp: exp}, true},
		{"nothing", session.Revocation{Exp: exp}, false},
		{"both", session.Revocation{JTI: "a1", Subject: "client:billing", Exp: exp}, false},
		{"jti with a generation", session.Revocation{JTI: "a1", Gen: 1, Exp: exp}, false},
		{"no expiry", session.Revocation{JTI: "a1"}, false},
		{"id too long", session.Revocation{Subject: strings.Repeat("x", MaxIDLen+1), Exp: exp}, false},
		{"not UTF-8", session.Revocation{JTI: "a\xff", Exp: exp}, false},
		{"NUL", session.Revocation{Subject: "client:\x00", Exp: exp}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.r)
			if tc.ok && err != nil {
				t.Errorf("Check: got %v, want nil", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalid) {
				t.Errorf("Check: got %v, want %v", err, ErrInvalid)
			}
		})
	}
}

func TestKey(t *testing.T) {
	j, s := Key(session.Revocation{JTI: "x"}), Key(session.Revocation{Subject: "x"})
	if j == s {
		t.Errorf("Key of a jti and a subject spelled alike: both %q, want different keys", j)
	}
}

func TestMerge(t *testing.T) {
	later := exp.Add(time.Hour)
	tests := []struct {
		name       string
		a, b, want session.Revocation
	}{
		{"later exp wins", session.Revocation{JTI: "a", Exp: exp}, session.Revocation{JTI: "a", Exp: later}, session.Revocation{JTI: "a", Exp: later}},
		{"earlier exp loses", session.Revocation{JTI: "a", Exp: later}, session.Revocation{JTI: "a", Exp: exp}, session.Revocation{JTI: "a", Exp: later}},
		{"greater gen wins", session.Revocation{Subject: "s", Gen: 2, Exp: exp}, session.Revocation{Subject: "s", Gen: 5, Exp: exp}, session.Revocation{Subject: "s", Gen: 5, Exp: exp}},
		{"lesser gen loses, later exp wins", session.Revocation{Subject: "s", Gen: 5, Exp: exp}, session.Revocation{Subject: "s", Gen: 2, Exp: later}, session.Revocation{Subject: "s", Gen: 5, Exp: later}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Merge(tc.a, tc.b); got != tc.want {
				t.Errorf("Merge: got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEncodeParse(t *testing.T) {
	for _, r := range []session.Revocation{
		{JTI: "a1", Exp: exp},
		{JTI: "with spaces and : colons", Exp: exp},
		{Subject: "client:billing", Gen: 18446744073709551615, Exp: exp},
		{Subject: "user:ü", Exp: time.UnixMicro(-1).UTC()},
	} {
		got, err := Parse(Encode(r))
		if err != nil || got != r {
			t.Errorf("Parse(Encode(%+v)): got %+v, %v; want it back", r, got, err)
		}
	}
}

func TestParseCorrupt(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"kind only", "j"},
		{"no id", "j0 1"},
		{"unknown kind", "x0 1 a"},
		{"empty id", "j0 1 "},
		{"generation not a number", "sx 1 a"},
		{"generation too large", "s18446744073709551616 1 a"},
		{"expiry not a number", "j0 x a"},
		{"leading zero", "s01 1 a"},
		{"plus sign", "j0 +1 a"},
		{"jti with a generation", "j1 1 a"},
		{"not UTF-8", "j0 1 \xff"},
		{"NUL", "s0 1 \x00"},
		{"id too long", "j0 1 " + strings.Repeat("x", MaxIDLen+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := Parse(tc.in); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Parse(%q): got %+v, %v; want an error wrapping %v", tc.in, r, err, ErrCorrupt)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Encode(session.Revocation{JTI: "a1", Exp: exp}))
	f.Add(Encode(session.Revocation{Subject: "client:billing", Gen: 3, Exp: exp}))
	f.Add("s01 1 a")
	f.Add("j0 -1 x")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := Parse(in)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrCorrupt", in, err)
			}
			return
		}
		if Check(r) != nil || Encode(r) != in {
			t.Fatalf("Parse(%q) = %+v: not an entry whose Encode is the input", in, r)
		}
	})
}
