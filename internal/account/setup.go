package account

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// SetupHash is the SHA-256 of the token of a first-admin setup link
// (PW-08): all a store keeps of it, in a row of its settings table, so
// that every node sharing the store accepts a link any node printed.
type SetupHash [sha256.Size]byte

// setupKey is the name of h's row in the settings table; setupRows is the
// LIKE pattern of every such row.
func setupKey(h SetupHash) string { return "setup/" + hex.EncodeToString(h[:]) }

const setupRows = "setup/%"

// setupValue is what a setup row holds: when the link expires, in Unix
// microseconds.
func setupValue(expires time.Time) []byte {
	return strconv.AppendInt(nil, expires.UnixMicro(), 10)
}

// setupLive reports whether value, a setup row's (nil if there is none),
// holds an expiry after now. A value that doesn't parse is dead.
func setupLive(value []byte, now time.Time) bool {
	micros, err := strconv.ParseInt(string(value), 10, 64)
	return err == nil && now.Before(time.UnixMicro(micros))
}
