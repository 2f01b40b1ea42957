package sqlite

import (
	"encoding/binary"
	"fmt"
	"time"
)

// dataFormat is the first byte of encoded session data, so that another
// encoding can follow one day.
const dataFormat = 1

// encodeData encodes session data as one compact value: nothing at all for
// no data; otherwise dataFormat, the number of entries, and each entry as
// its key and its value, both preceded by their length (lengths and count
// as uvarints). It never returns nil (which would be stored as NULL).
func encodeData(m map[string][]byte) []byte {
	if len(m) == 0 {
		return []byte{}
	}
	size := 1 + binary.MaxVarintLen64
	for k, v := range m {
		size += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	b := make([]byte, 0, size)
	b = append(b, dataFormat)
	b = binary.AppendUvarint(b, uint64(len(m)))
	for k, v := range m {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// decodeData decodes what encodeData encoded. It returns an error wrapping
// errCorruptData for anything else, and never panics. The values share b's
// memory (each capped to its own length, so appending to one can't
// overwrite the next): b must be the caller's to give.
func decodeData(b []byte) (map[string][]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != dataFormat {
		return nil, fmt.Errorf("%w: unknown format %d", errCorruptData, b[0])
	}
	b = b[1:]
	n, err := uvarint(&b)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(b))/2 { // every entry takes at least two bytes
		return nil, fmt.Errorf("%w: %d entries in %d bytes", errCorruptData, n, len(b))
	}
	m := make(map[string][]byte, n)
	for range n {
		k, err := chunk(&b)
		if err != nil {
			return nil, err
		}
		v, err := chunk(&b)
		if err != nil {
			return nil, err
		}
		if _, dup := m[string(k)]; dup {
			return nil, fmt.Errorf("%w: key %q twice", errCorruptData, k)
		}
		m[string(k)] = v
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last entry", errCorruptData, len(b))
	}
	return m, nil
}

// chunk takes a length and that many bytes off the front of *b.
func chunk(b *[]byte) ([]byte, error) {
	n, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(*b)) {
		return nil, fmt.Errorf("%w: length %d with %d bytes left", errCorruptData, n, len(*b))
	}
	c := (*b)[:n:n]
	*b = (*b)[n:]
	return c, nil
}

// uvarint takes a uvarint off the front of *b.
func uvarint(b *[]byte) (uint64, error) {
	n, size := binary.Uvarint(*b)
	if size <= 0 {
		return 0, fmt.Errorf("%w: bad length", errCorruptData)
	}
	*b = (*b)[size:]
	return n, nil
}

// fromMicros is the time, in UTC, of a stored Unix microsecond count.
func fromMicros(us int64) time.Time {
	return time.UnixMicro(us).UTC()
}
