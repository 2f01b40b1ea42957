package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/denylist"
	"github.com/tetherauth/tether/store/internal/feed"
)

// hubs holds a hub for every schema that Stores of this process use,
// whichever pool they were made from. It is the package's one variable,
// and has to be (see feed.Registry); everything else belongs to a Store.
var hubs = feed.Registry[hubKey, *hub]{New: newHub}

// hubKey names the data of a hub. Two keys for the same data only cost
// latency (a write reaches the other's watchers through PostgreSQL), and one
// key for two schemas only spurious invalidations: nothing is lost either
// way.
type hubKey struct {
	server   string // host:port, as the pool's configuration names it
	database string // current_database()
	schema   string // current_schema()
	node     string // set only by tests, to run several nodes in one process
}

// hub joins the Stores of this process that share a schema.
type hub struct {
	feed.Hub // the watchers of the schema in this process

	key hubKey

	// origin tags the hub's notifications: its watchers were handed them
	// already and skip them when they come back.
	origin uint64
}

func newHub(key hubKey) *hub {
	return &hub{key: key, origin: rand.Uint64()}
}

// Channels are named after the schema; names of PostgreSQL identifiers,
// channels among them, have at most maxIdentifier bytes.
const (
	channelPrefix       = "tether_sessions:"
	hashedChannelPrefix = "tether_sessions#" // differs from channelPrefix: no name of one form is one of the other
	maxIdentifier       = 63
)

// channelName returns the notification channel of the sessions in schema:
// channelPrefix and the schema's name, or, if that is too long,
// hashedChannelPrefix and 32 hex digits of the name's SHA-256.
func channelName(schema string) string {
	if name := channelPrefix + schema; len(name) <= maxIdentifier {
		return name
	}
	sum := sha256.Sum256([]byte(schema))
	return hashedChannelPrefix + hex.EncodeToString(sum[:16])
}

// errCorrupt: a notification on the channel is not one a Store sends.
var errCorrupt = errors.New("corrupt feed message")

// Feed messages are text (a notification's payload is): a kind, the writing
// hub's origin in 16 lowercase hex digits, then what changed: a token hash
// in 64 lowercase hex digits, a user id, or a token denylist entry
// (denylist.Encode).
const (
	changedMsg      = 'c'
	revokedMsg      = 'u'
	tokenRevokedMsg = 't'
	msgHeader       = 1 + 16
)

// message returns the feed message of ev, a Changed, UserRevoked or
// TokenRevoked event, written by a hub of the given origin.
func message(origin uint64, ev session.Event) string {
	switch ev.Kind {
	case session.Changed:
		return fmt.Sprintf("%s%x", changedPrefix(origin), ev.Hash)
	case session.TokenRevoked:
		return fmt.Sprintf("%c%016x%s", tokenRevokedMsg, origin, denylist.Encode(ev.Revocation))
	}
	return fmt.Sprintf("%c%016x%s", revokedMsg, origin, ev.UserID)
}

// changedPrefix returns the start of the Changed messages a hub of the
// given origin writes: a statement that deletes records appends each one's
// hash to it with encode(hash, 'hex'), lowercase as message writes it.
func changedPrefix(origin uint64) string {
	return fmt.Sprintf("%c%016x", changedMsg, origin)
}

// parseMessage decodes a feed message. Anyone who can connect to the
// database can notify on the channel, anything: it accepts exactly what
// message returns, and returns an error wrapping errCorrupt for the rest.
func parseMessage(m string) (origin uint64, ev session.Event, err error) {
	if len(m) < msgHeader {
		return 0, session.Event{}, fmt.Errorf("%w: %d bytes", errCorrupt, len(m))
	}
	origin, err = strconv.ParseUint(m[1:msgHeader], 16, 64)
	if err != nil {
		return 0, session.Event{}, fmt.Errorf("%w: origin: %w", errCorrupt, err)
	}
	what := m[msgHeader:]
	switch m[0] {
	case changedMsg:
		ev.Kind = session.Changed
		if len(what) != hex.EncodedLen(len(ev.Hash)) {
			return 0, session.Event{}, fmt.Errorf("%w: hash of %d hex digits", errCorrupt, len(what))
		}
		if _, err := hex.Decode(ev.Hash[:], []byte(what)); err != nil {
			return 0, session.Event{}, fmt.Errorf("%w: hash: %w", errCorrupt, err)
		}
	case revokedMsg:
		ev = session.Event{Kind: session.UserRevoked, UserID: what}
	case tokenRevokedMsg:
		r, err := denylist.Parse(what)
		if err != nil {
			return 0, session.Event{}, fmt.Errorf("%w: %w", errCorrupt, err)
		}
		ev = session.Event{Kind: session.TokenRevoked, Revocation: r}
	default:
		return 0, session.Event{}, fmt.Errorf("%w: kind %q", errCorrupt, m[0])
	}
	if message(origin, ev) != m { // upper case hex digits, say
		return 0, session.Event{}, fmt.Errorf("%w: not in canonical form", errCorrupt)
	}
	return origin, ev, nil
}
