package sqlite

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
			b := encodeData(tc.data)
			if b == nil {
				t.Fatalf("encodeData: got nil, want a value (nil is stored as NULL)")
			}
			got, err := decodeData(b)
			if err != nil {
				t.Fatalf("decodeData: %v", err)
			}
			if !maps.EqualFunc(got, tc.data, bytes.Equal) {
				t.Errorf("decodeData(encodeData(%q)): got %q, want %q", tc.data, got, tc.data)
			}
		})
	}
}

// Decoded values share the encoded bytes, but appending to one can't
// overwrite another.
func TestDecodedValuesAreCapped(t *testing.T) {
	got, err := decodeData(encodeData(map[string][]byte{"a": []byte("1"), "b": []byte("2")}))
	if err != nil {
		t.Fatalf("decodeData: %v", err)
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

func TestDecodeDataCorrupt(t *testing.T) {
	for _, tc := range corruptTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeData(tc.in)
			if !errors.Is(err, errCorruptData) {
				t.Errorf("decodeData(%x): got %q, error %v; want error %v", tc.in, got, err, errCorruptData)
			}
		})
	}
}

// Stored data is trusted, but a damaged file must give an error, never a
// panic.
func FuzzDecodeData(f *testing.F) {
	for _, tc := range roundTripTests {
		f.Add(encodeData(tc.data))
	}
	for _, tc := range corruptTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := decodeData(in)
		if err != nil {
			return
		}
		again, err := decodeData(encodeData(got))
		if err != nil || !maps.EqualFunc(again, got, bytes.Equal) {
			t.Errorf("decodeData(encodeData(%q)): got %q, error %v; want %q", got, again, err, got)
		}
	})
}
