package revocation

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/tetherauth/tether/session"
)

// hub is the View's side of the streams: the recent revocations, for
// subscribers that resume, and the subscribers themselves. The View's mu
// guards it, so that a subscriber's snapshot and the events after it come
// from one order: no revocation falls between them.
type hub struct {
	epoch uint64               // random, new at every reset: ids of another up period or node are unknown
	seq   uint64               // the newest revocation's sequence number; 0: none yet
	ring  []session.Revocation // revocation seq is at ring[seq%len(ring)]
	subs  map[*subscriber]struct{}
}

// subscriber is one stream's connection.
type subscriber struct {
	ch   chan item     // the revocations to send, buffered
	gone chan struct{} // closed when the hub drops the subscriber
}

// item is a revocation, its hub's epoch and its sequence number there.
type item struct {
	epoch, seq uint64
	r          session.Revocation
}

func (h *hub) init(history int) {
	h.ring = make([]session.Revocation, history)
	h.subs = map[*subscriber]struct{}{}
	h.reset()
}

// publish records r and queues it to every subscriber; one whose queue is
// full is dropped rather than waited for or buffered without bound.
func (h *hub) publish(r session.Revocation) {
	h.seq++
	h.ring[h.seq%uint64(len(h.ring))] = r
	for s := range h.subs {
		select {
		case s.ch <- item{h.epoch, h.seq, r}:
		default:
			h.drop(s)
		}
	}
}

// reset starts a new epoch, without history, and drops every subscriber:
// what it was told may have missed a revocation, or may have to be
// repeated from a snapshot.
func (h *hub) reset() {
	for s := range h.subs {
		h.drop(s)
	}
	h.epoch = rand.Uint64()
	h.seq = 0
	clear(h.ring)
}

func (h *hub) drop(s *subscriber) {
	delete(h.subs, s)
	close(s.gone)
}

// since returns the revocations after seq last of this epoch, or false
// when last is not one the hub can resume from (another epoch, ahead of
// the hub, or older than its history).
func (h *hub) since(epoch, last uint64) ([]item, bool) {
	n := uint64(len(h.ring))
	if epoch != h.epoch || last > h.seq || h.seq-last > n {
		return nil, false
	}
	items := make([]item, 0, h.seq-last)
	for seq := last + 1; seq <= h.seq; seq++ {
		items = append(items, item{h.epoch, seq, h.ring[seq%n]})
	}
	return items, true
}

// formatID and parseID are an event id: the epoch in 16 hexadecimal
// digits, "-", the sequence number in decimal.
func formatID(epoch, seq uint64) string { return fmt.Sprintf("%016x-%d", epoch, seq) }

var errBadID = errors.New("revocation: malformed Last-Event-ID")

// parseID reads an id formatID wrote; anything else is errBadID, and the
// subscriber gets a snapshot.
func parseID(s string) (epoch, seq uint64, err error) {
	e, q, ok := strings.Cut(s, "-")
	if !ok || len(e) != 16 || q == "" || len(q) > 20 || (len(q) > 1 && q[0] == '0') {
		return 0, 0, errBadID
	}
	for i := range len(e) {
		if c := e[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, 0, errBadID
		}
	}
	if epoch, err = strconv.ParseUint(e, 16, 64); err != nil {
		return 0, 0, errBadID
	}
	if seq, err = strconv.ParseUint(q, 10, 64); err != nil {
		return 0, 0, errBadID
	}
	return epoch, seq, nil
}
