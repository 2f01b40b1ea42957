package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/feed"
)

const (
	// minRetryWait and maxRetryWait bound the delay before subscribing
	// again after the feed was lost.
	minRetryWait = 50 * time.Millisecond
	maxRetryWait = 5 * time.Second
	// topologyCheck is how often a watch of a Cluster or Sentinel
	// deployment checks which nodes are primaries.
	topologyCheck = time.Second
	// probeTimeout bounds a heartbeat's PING: a subscription that can't
	// answer within it is taken for lost, long before the connection's
	// own Timeout would notice.
	probeTimeout = time.Second
)

// Errors that end a subscription, for the log.
var (
	errUnsubscribed    = errors.New("unsubscribed by the server")
	errTopologyChanged = errors.New("the primaries changed")
)

// Watch delivers the invalidations of every writer of the data to fn until
// ctx is done or the store is closed; see the package documentation for
// how. It returns ctx.Err(), or an error wrapping session.ErrClosed. fn is
// called from the writers of this process as well as from the
// subscriptions' goroutines; it must not call Close, nor call the store
// while it handles FeedUp or FeedDown.
//
// When a subscription is lost, Watch delivers FeedDown (if it had
// delivered FeedUp) and subscribes again after a delay growing from
// minRetryWait to maxRetryWait.
func (s *Store) Watch(ctx context.Context, fn func(session.Event)) error {
	err := s.watches.Run(ctx, &s.hub.Hub, fn, feed.Source{
		Follow:  s.subscribe,
		MinWait: minRetryWait,
		MaxWait: maxRetryWait,
		Lost: func(ctx context.Context, err error, retryIn time.Duration) {
			s.log.WarnContext(ctx, "invalidation feed lost; subscribing again", "err", err, "retry_in", retryIn)
		},
	})
	if errors.Is(err, session.ErrClosed) {
		return closedError("watch")
	}
	return err
}

// feedNode is a node whose feed a watch subscribes to.
type feedNode struct {
	addr   string
	client rueidis.Client
}

// subscribe subscribes to the feed on every node that needs it, each on a
// connection of its own, delivers FeedUp once all have confirmed, then
// hands the watcher what other nodes publish, and a heartbeat every
// session.HeartbeatInterval, until ctx is done or a subscription is lost
// (a PING unanswered within probeTimeout among the ways). It reports whether it delivered FeedUp.
func (s *Store) subscribe(ctx context.Context, w *feed.Watcher) (wentUp bool, err error) {
	nodes, primaries, err := s.feedNodes(ctx)
	if err != nil {
		return false, err
	}
	// Hooks run in the connections' reading goroutines and must not block:
	// they signal without waiting, and the first error is enough.
	lost := make(chan error, 1)
	confirmed := make(chan struct{}, len(nodes))
	conns := make([]rueidis.DedicatedClient, len(nodes))
	for i, n := range nodes {
		dc, release := n.client.Dedicate()
		defer release()
		conns[i] = dc
		ended := dc.SetPubSubHooks(rueidis.PubSubHooks{
			OnMessage: func(m rueidis.PubSubMessage) { s.receive(w, m, lost) },
			OnSubscription: func(sub rueidis.PubSubSubscription) {
				switch sub.Kind {
				case "subscribe":
					signal(confirmed, struct{}{})
				case "unsubscribe":
					signal(lost, fmt.Errorf("%s: %w", n.addr, errUnsubscribed))
				}
			},
		})
		go func() { // ended is closed when release resets the hooks
			if err, ok := <-ended; ok {
				signal(lost, fmt.Errorf("%s: %w", n.addr, cmpErr(err, errUnsubscribed)))
			}
		}()
		if err := dc.Do(ctx, dc.B().Subscribe().Channel(s.keys.channel()).Build()).Error(); err != nil {
			return false, fmt.Errorf("%s: subscribe: %w", n.addr, err)
		}
	}
	for range nodes {
		select {
		case <-confirmed:
		case err := <-lost:
			return false, err
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	w.Up()

	beat := time.NewTicker(session.HeartbeatInterval)
	defer beat.Stop()
	var check <-chan time.Time
	if s.target.mode != standalone {
		t := time.NewTicker(topologyCheck)
		defer t.Stop()
		check = t.C
	}
	for {
		select {
		case err := <-lost:
			return true, err
		case <-ctx.Done():
			return true, ctx.Err()
		case <-beat.C:
			at := time.Now()
			if err := probe(ctx, conns); err != nil {
				return true, err
			}
			w.Current(at)
		case <-check:
			now, err := s.primaries(ctx)
			if err != nil {
				return true, err
			}
			if !slices.Equal(now, primaries) {
				return true, errTopologyChanged
			}
		}
	}
}

// probe PINGs every subscribed connection, within probeTimeout: once it
// returns nil, the feed may deliver a heartbeat (FeedCurrent, SES-14) for
// the time it began. Redis answers a connection in order, and rueidis
// hands the messages it pushed before the answer to the hooks (and so to
// the watcher) before Do returns: every invalidation published before the
// PING was sent has been delivered.
func probe(ctx context.Context, conns []rueidis.DedicatedClient) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	for _, dc := range conns {
		if err := dc.Do(ctx, dc.B().Ping().Build()).Error(); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
	}
	return nil
}

// signal sends v on ch unless ch is full.
func signal[T any](ch chan<- T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// cmpErr returns err, or def if err is nil.
func cmpErr(err, def error) error {
	if err == nil {
		return def
	}
	return err
}

// receive hands the watcher a message of the feed, unless this process
// wrote it (and so delivered it already). A message no Store sends means
// that something else publishes on the channel: the watch can't tell what
// changed, and starts over through lost.
func (s *Store) receive(w *feed.Watcher, m rueidis.PubSubMessage, lost chan<- error) {
	origin, ev, err := parseMessage(m.Message)
	if err != nil {
		signal(lost, err)
		return
	}
	if origin != s.hub.origin {
		w.Deliver(ev)
	}
}

// feedNodes returns the nodes to subscribe on, the primaries, with their
// sorted addresses (see primaries).
func (s *Store) feedNodes(ctx context.Context) ([]feedNode, []string, error) {
	primaries, err := s.primaries(ctx)
	if err != nil {
		return nil, nil, err
	}
	if s.target.mode != cluster { // the client's connections go to the primary
		return []feedNode{{addr: s.target.String(), client: s.client}}, primaries, nil
	}
	known := s.client.Nodes()
	nodes := make([]feedNode, 0, len(primaries))
	for _, addr := range primaries {
		c, ok := known[addr]
		if !ok {
			return nil, nil, fmt.Errorf("primary %s: not connected yet", addr)
		}
		nodes = append(nodes, feedNode{addr: addr, client: c})
	}
	return nodes, primaries, nil
}

// primaries returns the sorted addresses of the primaries whose writes
// the feed must hear: those of a Cluster, from CLUSTER SLOTS; the one
// Sentinel names now; none for a standalone server, which never changes.
func (s *Store) primaries(ctx context.Context) ([]string, error) {
	switch s.target.mode {
	case standalone:
		return nil, nil
	case sentinel:
		return slices.Sorted(maps.Keys(s.client.Nodes())), nil
	}
	ranges, err := s.client.Do(ctx, s.client.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return nil, fmt.Errorf("cluster slots: %w", err)
	}
	var addrs []string
	for _, r := range ranges {
		fields, err := r.ToArray()
		if err != nil || len(fields) < 3 {
			return nil, fmt.Errorf("cluster slots: %w: a range of %d fields", errCorrupt, len(fields))
		}
		node, err := fields[2].ToArray()
		if err != nil || len(node) < 2 {
			return nil, fmt.Errorf("cluster slots: %w: a node of %d fields", errCorrupt, len(node))
		}
		host, err1 := node[0].ToString()
		port, err2 := node[1].AsInt64()
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("cluster slots: %w: %w", errCorrupt, err)
		}
		addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
		if !slices.Contains(addrs, addr) {
			addrs = append(addrs, addr)
		}
	}
	slices.Sort(addrs)
	return addrs, nil
}
