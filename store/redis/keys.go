package redis

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tetherauth/tether/session"
)

// DefaultKeyPrefix is Options.KeyPrefix's default.
const DefaultKeyPrefix = "tether:"

// checkPrefix refuses a key prefix that would move the hash tag: the
// first {...} of a key name decides its cluster slot.
func checkPrefix(p string) error {
	if strings.ContainsAny(p, "{}") {
		return fmt.Errorf("key prefix %q: must not contain { or } (they would change which keys share a cluster slot)", p)
	}
	return nil
}

// keys names the keys of one store (see the package documentation).
type keys struct {
	prefix string
}

// user is the common start of the keys of one user: prefix, then the hash
// tag {u:ESCAPED}. The escaping keeps } and : out of the tag, so no user
// id can end the tag early or forge another user's key names.
func (k keys) user(userID string) string {
	var b strings.Builder
	b.Grow(len(k.prefix) + len(userID) + 8)
	b.WriteString(k.prefix)
	b.WriteString("{u:")
	for i := 0; i < len(userID); i++ {
		c := userID[i]
		if safeKeyByte(c) {
			b.WriteByte(c)
		} else {
			const digits = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&15])
		}
	}
	b.WriteString("}:")
	return b.String()
}

// safeKeyByte reports whether c stands for itself in a key name.
func safeKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '@' || c == '+' || c == '='
}

// The keys of a user, from user's result.
func genKey(user string) string                    { return user + "g" }
func indexKey(user string) string                  { return user + "i" }
func recordKey(user string, hexHash string) string { return user + "s:" + hexHash }
func idKey(user, id string) string                 { return user + "d:" + id }

// pointer is the key, in the token hash's own slot, that names the user
// of the session under that hash.
func (k keys) pointer(hexHash string) string { return k.prefix + "t:{" + hexHash + "}" }

// denylist is the hash of the token denylist's entries (field
// denylist.Key, value denylist.Encode), and denylistExpiry the sorted set
// of the same fields scored by Exp (Unix ms), by which a write forgets
// the expired ones. Both share the hash tag {d}, unlike any user's
// ({u:...}) or pointer's ({hex}): one slot, so that one script changes
// both.
func (k keys) denylist() string       { return k.prefix + "{d}:e" }
func (k keys) denylistExpiry() string { return k.prefix + "{d}:x" }

// channel is the pub/sub channel of the invalidation feed.
func (k keys) channel() string { return k.prefix + "feed" }

// hexHash is h in lower-case hex, as the key names hold it.
func hexHash(h session.Hash) string { return hex.EncodeToString(h[:]) }
