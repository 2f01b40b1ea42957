package redis

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
)

var base = time.Date(2030, time.March, 4, 12, 30, 45, 0, time.UTC)

var codecTests = []struct {
	name string
	r    *session.Record
}{
	{"full", &session.Record{ID: "alice-1", Gen: 3, Version: 17, UserAgent: "ua", Created: base, AbsDeadline: base, Data: map[string][]byte{"k": []byte("v")}}},
	{"test record", storekit.Record("alice", 1)},
	{"id with a newline", &session.Record{ID: "a\nb 1 2", Gen: 1 << 60, Version: 1}},
	{"no data", &session.Record{Created: base, LastSeen: base, IdleDeadline: base, AbsDeadline: base}},
	{"zero times", &session.Record{UserAgent: "ua", Data: map[string][]byte{"": {}}}},
	{"binary and long", &session.Record{
		Created: base.Add(123456 * time.Microsecond), LastSeen: base.In(time.FixedZone("x", 3600)),
		IdleDeadline: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), AbsDeadline: time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC),
		UserAgent: strings.Repeat("ü", 200), IP: "2001:db8::1",
		Data: map[string][]byte{"\x00\xff": {0, 1, 2}, "big": bytes.Repeat([]byte{0xab}, 300), "nil": nil},
	}},
}

// encodeStored encodes r as the scripts store it.
func encodeStored(r *session.Record) string {
	return fmt.Sprintf("%d %d %d %d\n%s%s", r.Gen, r.Version, expireAt(r.AbsDeadline), len(r.ID), r.ID, encodeRecord(r))
}

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range codecTests {
		t.Run(tc.name, func(t *testing.T) {
			var got session.Record
			if err := decodeStored(encodeStored(tc.r), &got); err != nil {
				t.Fatalf("decodeStored: %v", err)
			}
			if got.Gen != tc.r.Gen || got.Version != tc.r.Version || got.ID != tc.r.ID {
				t.Errorf("Gen, Version, ID: got %d, %d, %q; want %d, %d, %q", got.Gen, got.Version, got.ID, tc.r.Gen, tc.r.Version, tc.r.ID)
			}
			for _, f := range []struct {
				name      string
				got, want time.Time
			}{
				{"Created", got.Created, tc.r.Created},
				{"LastSeen", got.LastSeen, tc.r.LastSeen},
				{"IdleDeadline", got.IdleDeadline, tc.r.IdleDeadline},
				{"AbsDeadline", got.AbsDeadline, tc.r.AbsDeadline},
			} {
				if !f.got.Equal(f.want.Truncate(time.Microsecond)) {
					t.Errorf("%s: got %v, want %v", f.name, f.got, f.want)
				}
			}
			if got.UserAgent != tc.r.UserAgent || got.IP != tc.r.IP {
				t.Errorf("UserAgent, IP: got %q, %q; want %q, %q", got.UserAgent, got.IP, tc.r.UserAgent, tc.r.IP)
			}
			if !maps.EqualFunc(got.Data, tc.r.Data, bytes.Equal) {
				t.Errorf("Data: got %q, want %q", got.Data, tc.r.Data)
			}
		})
	}
}

// Decoded values share one buffer, but appending to one can't overwrite
// another.
func TestDecodedValuesAreCapped(t *testing.T) {
	var got session.Record
	r := &session.Record{Data: map[string][]byte{"a": []byte("1"), "b": []byte("2")}}
	if err := decodeRecord(string(encodeRecord(r)), &got); err != nil {
		t.Fatalf("decodeRecord: %v", err)
	}
	_ = append(got.Data["a"], 'x')
	_ = append(got.Data["b"], 'x')
	if string(got.Data["a"]) != "1" || string(got.Data["b"]) != "2" {
		t.Errorf("after appending: got a=%q b=%q, want a=\"1\" b=\"2\"", got.Data["a"], got.Data["b"])
	}
}

// stored is a valid stored header, with id "a"; header a valid start of
// the rest: format, four times, empty user agent and IP.
const (
	stored = "1 1 1 1\na"
	header = "\x01\x00\x00\x00\x00\x00\x00"
)

var corruptRecords = []struct{ name, in string }{
	{"empty", ""},
	{"no header", "1 1 1 0"},
	{"header of three", "1 1 0\n" + header},
	{"header of five", "1 1 1 0 0\n" + header},
	{"header not a number", "1 x 1 0\n" + header},
	{"header with a sign", "+1 1 1 0\n" + header},
	{"header with a leading zero", "01 1 1 0\n" + header},
	{"id past the end", "1 1 1 99\nab"},
	{"unknown format", stored + "\x02" + header[1:] + "\x00"},
	{"times cut short", stored + "\x01\x00\x00"},
	{"time overflowing", stored + "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f"},
	{"no data count", stored + header},
	{"string past the end", stored + "\x01\x00\x00\x00\x00\x05ab"},
	{"count past the bytes", stored + header + "\x03\x01a\x00"},
	{"huge count", stored + header + "\xff\xff\xff\xff\xff\xff\xff\xff\x7f"},
	{"value past the end", stored + header + "\x01\x01a\x09b"},
	{"key twice", stored + header + "\x02\x01a\x00\x01a\x00"},
	{"bytes after the end", stored + header + "\x00\x00"},
}

func TestDecodeRecordCorrupt(t *testing.T) {
	for _, tc := range corruptRecords {
		t.Run(tc.name, func(t *testing.T) {
			var r session.Record
			if err := decodeStored(tc.in, &r); !errors.Is(err, errCorrupt) {
				t.Errorf("decodeStored(%q): got error %v, want %v", tc.in, err, errCorrupt)
			}
		})
	}
}

// Stored records are trusted, but a damaged one must give an error, never
// a panic.
func FuzzDecodeStored(f *testing.F) {
	for _, tc := range codecTests {
		f.Add(encodeStored(tc.r))
	}
	for _, tc := range corruptRecords {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var got, again session.Record
		if err := decodeStored(in, &got); err != nil {
			return
		}
		if err := decodeStored(encodeStored(&got), &again); err != nil || again.ID != got.ID || again.Version != got.Version ||
			!maps.EqualFunc(again.Data, got.Data, bytes.Equal) || again.UserAgent != got.UserAgent || !again.Created.Equal(got.Created) {
			t.Errorf("decodeStored(encodeStored(%+v)): got %+v, error %v", got, again, err)
		}
	})
}

var messageTests = []struct {
	name string
	in   string
	want session.Event // zero: an error
}{
	{"changed", "c\x00\x00\x00\x00\x00\x00\x00\x07" + strings.Repeat("h", 32), session.Event{Kind: session.Changed, Hash: session.Hash([]byte(strings.Repeat("h", 32)))}},
	{"revoked", "u\x00\x00\x00\x00\x00\x00\x00\x07alice", session.Event{Kind: session.UserRevoked, UserID: "alice"}},
	{"revoked, empty user", "u\x00\x00\x00\x00\x00\x00\x00\x07", session.Event{Kind: session.UserRevoked}},
	{"token revoked", "t\x00\x00\x00\x00\x00\x00\x00\x07j0 1893760245123456 jti:1", session.Event{Kind: session.TokenRevoked,
		Revocation: session.Revocation{JTI: "jti:1", Exp: time.UnixMicro(1893760245123456).UTC()}}},
	{"subject revoked", "t\x00\x00\x00\x00\x00\x00\x00\x07s2 1893760245123456 client:billing", session.Event{Kind: session.TokenRevoked,
		Revocation: session.Revocation{Subject: "client:billing", Gen: 2, Exp: time.UnixMicro(1893760245123456).UTC()}}},
	{"token revoked, corrupt entry", "t\x00\x00\x00\x00\x00\x00\x00\x07j0 01 jti", session.Event{}},
	{"empty", "", session.Event{}},
	{"short header", "c\x00\x00", session.Event{}},
	{"short hash", "c\x00\x00\x00\x00\x00\x00\x00\x07abc", session.Event{}},
	{"unknown kind", "x\x00\x00\x00\x00\x00\x00\x00\x07abc", session.Event{}},
}

func TestParseMessage(t *testing.T) {
	for _, tc := range messageTests {
		t.Run(tc.name, func(t *testing.T) {
			origin, got, err := parseMessage(tc.in)
			if tc.want == (session.Event{}) {
				if !errors.Is(err, errCorrupt) {
					t.Errorf("parseMessage(%q): got %v, error %v; want error %v", tc.in, got, err, errCorrupt)
				}
				return
			}
			if err != nil || got != tc.want || origin != 7 {
				t.Errorf("parseMessage(%q): got %d, %+v, %v; want 7, %+v, nil", tc.in, origin, got, err, tc.want)
			}
		})
	}
}

// Anyone who can publish on the channel can send anything.
func FuzzParseMessage(f *testing.F) {
	for _, tc := range messageTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		_, ev, err := parseMessage(in)
		if err == nil && ev.Kind != session.Changed && ev.Kind != session.UserRevoked && ev.Kind != session.TokenRevoked {
			t.Errorf("parseMessage(%q): got %+v and no error", in, ev)
		}
	})
}
