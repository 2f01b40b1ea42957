package datacodec

import (
	"bytes"
	"errors"
	"maps"
	"testing"
)

var roundTripTests = []struct {
	name string
	data map[string][]byte
}{
	{"nil", nil},
	{"one", map[string][]byte{"theme": []byte("dark")}},
	{"empty key and value", map[string][]byte{"": {}}},
	{"binary", map[string][]byte{"\x00\xff": {0, 1, 2, 0xfe, 0xff}}},
	{"long value", map[string][]byte{"big": bytes.Repeat([]byte{0xab}, 300)}}, // two-byte length
	{"several", map[string][]byte{"a": []byte("1"), "b": nil, "c": []byte("333")}},
}

func TestDataRoundTrip(t *testing.T) {
	for _, tc := range roundTripTests {
		t.Run(tc.name, func(t *testing.T) {
			b := Encode(tc.data)
			if b == nil {
				t.Fatalf("Encode: got nil, want a value (nil is stored as NULL)")
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !maps.EqualFunc(got, tc.data, bytes.Equal) {
				t.Errorf("Decode(Encode(%q)): got %q, want %q", tc.data, got, tc.data)
			}
		})
	}
}

// Decoded values share the encoded bytes, but appending to one can't
// overwrite another.
func TestDecodedValuesAreCapped(t *testing.T) {
	got, err := Decode(Encode(map[string][]byte{"a": []byte("1"), "b": []byte("2")}))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	_ = append(got["a"], 'x')
	_ = append(got["b"], 'x')
	if string(got["a"]) != "1" || string(got["b"]) != "2" {
		t.Errorf("after appending: got a=%q b=%q, want a=\"1\" b=\"2\"", got["a"], got["b"])
	}
}

var corruptTests = []struct {
	name string
	in   []byte
}{
	{"unknown format", []byte{2, 0}},
	{"format alone", []byte{1}},
	{"count cut short", []byte{1, 0x80}},
	{"count overflowing", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	{"count past the bytes", []byte{1, 3, 1, 'a', 0}},
	{"huge count", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
	{"no key length", []byte{1, 1}},
	{"key past the end", []byte{1, 1, 5, 'a', 0}},
	{"no value length", []byte{1, 1, 1, 'a'}},
	{"value length cut short", []byte{1, 1, 1, 'a', 0x80}},
	{"value past the end", []byte{1, 1, 1, 'a', 9, 'b'}},
	{"value length of 2^64-1", []byte{1, 1, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	{"key twice", []byte{1, 2, 1, 'a', 0, 1, 'a', 0}},
	{"bytes after the last entry", []byte{1, 1, 1, 'a', 0, 0}},
}

func TestDecodeCorrupt(t *testing.T) {
	for _, tc := range corruptTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.in)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Decode(%x): got %q, error %v; want error %v", tc.in, got, err, ErrCorrupt)
			}
		})
	}
}

// Stored data is trusted, but a damaged database must give an error, never a
// panic.
func FuzzDecode(f *testing.F) {
	for _, tc := range roundTripTests {
		f.Add(Encode(tc.data))
	}
	for _, tc := range corruptTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Decode(in)
		if err != nil {
			return
		}
		again, err := Decode(Encode(got))
		if err != nil || !maps.EqualFunc(again, got, bytes.Equal) {
			t.Errorf("Decode(Encode(%q)): got %q, error %v; want %q", got, again, err, got)
		}
	})
}

func TestDecodeHash(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"32 bytes", bytes.Repeat([]byte{7}, 32), true},
		{"none", nil, false},
		{"31 bytes", bytes.Repeat([]byte{7}, 31), false},
		{"33 bytes", bytes.Repeat([]byte{7}, 33), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeHash(tc.in)
			if !tc.ok {
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("DecodeHash(%x): got %x, error %v; want error %v", tc.in, got, err, ErrCorrupt)
				}
				return
			}
			if err != nil || !bytes.Equal(got[:], tc.in) {
				t.Errorf("DecodeHash(%x): got %x, error %v; want %x", tc.in, got, err, tc.in)
			}
		})
	}
}
