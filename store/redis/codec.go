package redis

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tetherauth/tether/session"
)

// errCorrupt: a stored record or feed message can't be decoded.
var errCorrupt = errors.New("corrupt value")

// recordFormat is the first byte of an encoded record, so that another
// encoding can follow one day.
const recordFormat = 1

// A record is stored as one string, so that Get reads it with the user's
// generation in one plain MGET: a header of decimal numbers, its
// generation, version, absolute deadline (Unix ms, for the pointer's
// expiry) and the length of its public id, each followed by a space but
// the last by a newline; then the public id; then the rest, as
// encodeRecord encodes it. The scripts write the header (they know the
// generation); decodeStored reads it all.

// encodeRecord encodes the rest of a record: everything of r but its hash
// and user (the key names them) and what the header holds. Times are Unix microseconds (varints); strings, data keys and
// values are preceded by their length (uvarints), data by its entry count.
func encodeRecord(r *session.Record) []byte {
	size := 1 + 4*binary.MaxVarintLen64 + 3*binary.MaxVarintLen32 + len(r.UserAgent) + len(r.IP)
	for k, v := range r.Data {
		size += 2*binary.MaxVarintLen32 + len(k) + len(v)
	}
	b := make([]byte, 0, size)
	b = append(b, recordFormat)
	for _, t := range []time.Time{r.Created, r.LastSeen, r.IdleDeadline, r.AbsDeadline} {
		b = binary.AppendVarint(b, t.UnixMicro())
	}
	b = appendString(b, r.UserAgent)
	b = appendString(b, r.IP)
	b = binary.AppendUvarint(b, uint64(len(r.Data)))
	for k, v := range r.Data {
		b = appendString(b, k)
		b = appendString(b, string(v))
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decodeStored fills r, but for its hash and user, from a stored record.
func decodeStored(s string, r *session.Record) error {
	header, rest, ok := strings.Cut(s, "\n")
	if !ok {
		return fmt.Errorf("%w: no header", errCorrupt)
	}
	var n [4]uint64
	for i := range n {
		field, more, _ := strings.Cut(header, " ")
		var err error
		if n[i], err = strconv.ParseUint(field, 10, 64); err != nil || (len(field) > 1 && field[0] == '0') {
			return fmt.Errorf("%w: header %q", errCorrupt, header)
		}
		header = more
	}
	if header != "" || n[3] > uint64(len(rest)) {
		return fmt.Errorf("%w: header %q", errCorrupt, header)
	}
	r.Gen, r.Version, r.ID = n[0], n[1], rest[:n[3]]
	return decodeRecord(rest[n[3]:], r)
}

// decodeRecord fills r from what encodeRecord encoded, and returns an
// error wrapping errCorrupt for anything else; it never panics. Strings
// share s's memory (immutable); data values share one new copy, each
// capped to its length, so that a caller appending to one can't overwrite
// the next.
func decodeRecord(s string, r *session.Record) error {
	d := decoder{s: s}
	if d.byte() != recordFormat {
		return fmt.Errorf("%w: unknown record format", errCorrupt)
	}
	for _, t := range []*time.Time{&r.Created, &r.LastSeen, &r.IdleDeadline, &r.AbsDeadline} {
		*t = time.UnixMicro(d.varint()).UTC()
	}
	r.UserAgent = d.string()
	r.IP = d.string()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.s))/2 { // an entry takes at least two bytes
		d.fail("more entries than bytes")
	}
	if d.err != nil || n == 0 {
		r.Data = nil
		return d.finish()
	}
	// Every value is copied into one buffer.
	buf := make([]byte, 0, len(d.s))
	r.Data = make(map[string][]byte, n)
	for range n {
		k, v := d.string(), d.string()
		if d.err != nil {
			break
		}
		if _, dup := r.Data[k]; dup {
			d.fail("a data key twice")
			break
		}
		start := len(buf)
		buf = append(buf, v...)
		r.Data[k] = buf[start:len(buf):len(buf)]
	}
	return d.finish()
}

// decoder reads an encoded record; its first error sticks.
type decoder struct {
	s   string
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCorrupt, what)
	}
	d.s = ""
}

func (d *decoder) byte() byte {
	if len(d.s) == 0 {
		d.fail("empty")
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}

func (d *decoder) varint() int64 {
	n, size := varint(d.s)
	if size <= 0 {
		d.fail("bad number")
		return 0
	}
	d.s = d.s[size:]
	return n
}

func (d *decoder) uvarint() uint64 {
	n, size := uvarint(d.s)
	if size <= 0 {
		d.fail("bad length")
		return 0
	}
	d.s = d.s[size:]
	return n
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		d.fail("length past the end")
		return ""
	}
	v := d.s[:n]
	d.s = d.s[n:]
	return v
}

// finish returns the first error, or one if bytes are left over.
func (d *decoder) finish() error {
	if d.err == nil && len(d.s) != 0 {
		d.fail("bytes after the end")
	}
	return d.err
}

// uvarint is binary.Uvarint for a string, without copying it.
func uvarint(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -(i + 1) // overflow
			}
			return x | uint64(c)<<shift, i + 1
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// varint is binary.Varint for a string.
func varint(s string) (int64, int) {
	ux, n := uvarint(s)
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x, n
}
