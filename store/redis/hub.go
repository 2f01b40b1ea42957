package redis

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/denylist"
	"github.com/tetherauth/tether/store/internal/feed"
)

// hubs holds a hub for the Redis data (URL and key prefix) that Stores of
// this process use. It is the package's one variable, and has to be (see
// feed.Registry); everything else belongs to a Store.
var hubs = feed.Registry[hubKey, *hub]{New: newHub}

// hubKey names the data of a hub.
type hubKey struct {
	data   string // the servers and database (target.dataKey)
	prefix string // Options.KeyPrefix
	node   string // set only by tests, to run several nodes in one process
}

// hub joins the Stores of this process that share data.
type hub struct {
	feed.Hub // the watchers of the data in this process

	key hubKey

	// origin tags the hub's messages on the feed: its watchers were
	// handed them already and skip them when they come back.
	origin uint64
}

func newHub(key hubKey) *hub {
	return &hub{key: key, origin: rand.Uint64()}
}

// Feed messages are a kind, the writing hub's origin (8 bytes, big
// endian) and what changed: a token hash (32 bytes), a user id, or a
// token denylist entry (denylist.Encode).
const (
	changedMsg      = 'c'
	revokedMsg      = 'u'
	tokenRevokedMsg = 't'
	msgHeader       = 1 + 8
)

// message returns the feed message of kind about what.
func (s *Store) message(kind byte, what []byte) string {
	b := make([]byte, 0, msgHeader+len(what))
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, s.hub.origin)
	return string(append(b, what...))
}

// parseMessage decodes a feed message. Anyone who can publish on the
// channel can send anything: it returns an error wrapping errCorrupt for
// what no Store sends.
func parseMessage(m string) (origin uint64, ev session.Event, err error) {
	if len(m) < msgHeader {
		return 0, ev, fmt.Errorf("%w: feed message of %d bytes", errCorrupt, len(m))
	}
	origin = binary.BigEndian.Uint64([]byte(m[1:msgHeader]))
	what := m[msgHeader:]
	switch m[0] {
	case changedMsg:
		if len(what) != len(session.Hash{}) {
			return 0, ev, fmt.Errorf("%w: feed message: hash of %d bytes", errCorrupt, len(what))
		}
		ev = session.Event{Kind: session.Changed, Hash: session.Hash([]byte(what))}
	case revokedMsg:
		ev = session.Event{Kind: session.UserRevoked, UserID: what}
	case tokenRevokedMsg:
		r, err := denylist.Parse(what)
		if err != nil {
			return 0, ev, fmt.Errorf("%w: feed message: %w", errCorrupt, err)
		}
		ev = session.Event{Kind: session.TokenRevoked, Revocation: r}
	default:
		return 0, ev, fmt.Errorf("%w: feed message of kind %q", errCorrupt, m[0])
	}
	return origin, ev, nil
}
