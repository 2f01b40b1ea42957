// Package datacodec reads and writes the binary columns of the SQL session
// stores (store/sqlite, store/postgres): a record's data, in one compact
// value per record, and its hash.
//
//	b := datacodec.Encode(r.Data) // into the data column
//	...
//	r.Data, err = datacodec.Decode(b) // an error wrapping ErrCorrupt if damaged
//	r.Hash, err = datacodec.DecodeHash(hash)
package datacodec

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tetherauth/tether/session"
)

// ErrCorrupt: a stored value can't be decoded. The stores wrap it in every
// error about damaged stored data, a record's hash among it.
var ErrCorrupt = errors.New("corrupt session data")

// DecodeHash returns the hash stored as b, or an error wrapping ErrCorrupt
// if b is not one.
func DecodeHash(b []byte) (session.Hash, error) {
	if len(b) != len(session.Hash{}) {
		return session.Hash{}, fmt.Errorf("%w: hash of %d bytes", ErrCorrupt, len(b))
	}
	return session.Hash(b), nil
}

// dataFormat is the first byte of encoded session data, so that another
// encoding can follow one day.
const dataFormat = 1

// Encode encodes session data as one compact value: nothing at all for
// no data; otherwise dataFormat, the number of entries, and each entry as
// its key and its value, both preceded by their length (lengths and count
// as uvarints). It never returns nil (which would be stored as NULL).
func Encode(m map[string][]byte) []byte {
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

// Decode decodes what Encode encoded. It returns an error wrapping
// ErrCorrupt for anything else, and never panics. The values share b's
// memory (each capped to its own length, so appending to one can't
// overwrite the next): b must be the caller's to give.
func Decode(b []byte) (map[string][]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != dataFormat {
		return nil, fmt.Errorf("%w: unknown format %d", ErrCorrupt, b[0])
	}
	b = b[1:]
	n, err := uvarint(&b)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(b))/2 { // every entry takes at least two bytes
		return nil, fmt.Errorf("%w: %d entries in %d bytes", ErrCorrupt, n, len(b))
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
			return nil, fmt.Errorf("%w: key %q twice", ErrCorrupt, k)
		}
		m[string(k)] = v
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last entry", ErrCorrupt, len(b))
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
		return nil, fmt.Errorf("%w: length %d with %d bytes left", ErrCorrupt, n, len(*b))
	}
	c := (*b)[:n:n]
	*b = (*b)[n:]
	return c, nil
}

// uvarint takes a uvarint off the front of *b.
func uvarint(b *[]byte) (uint64, error) {
	n, size := binary.Uvarint(*b)
	if size <= 0 {
		return 0, fmt.Errorf("%w: bad length", ErrCorrupt)
	}
	*b = (*b)[size:]
	return n, nil
}
