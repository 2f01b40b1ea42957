// Package redis is tether's session store for more than one node: a
// session.Store in Redis, standalone, under Sentinel or in a Cluster,
// through github.com/redis/rueidis (RESP3, auto-pipelining). It needs Redis 6.2 or later, with a maxmemory
// policy that evicts nothing (noeviction), and, if Redis is to keep its
// data across a restart, the append-only file (appendonly yes, with
// appendfsync always to survive a power cut: see Durability below): an
// evicted generation, or one restored from a snapshot older than the
// revocation, would bring revoked sessions back.
//
//	store, err := redis.New(ctx, "redis-sentinel://:secret@10.0.0.1:26379,10.0.0.2:26379/tether", redis.Options{MinReplicas: 1})
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//	sessions, err := session.NewManager(store, session.Config{})
//
// # URLs
//
// One URL says where Redis is and how it is deployed; user name, password
// and database are optional, and rediss… schemes use TLS:
//
//	redis://[user:password@]host[:port][/db]                     one server (port 6379)
//	rediss://…                                                   the same over TLS
//	redis-sentinel://[user:password@]h1[:p1],h2[:p2]/master[/db] the primary Sentinel names (port 26379); the credentials are Redis's, not the Sentinels'
//	redis-cluster://[user:password@]h1[:p1],h2[:p2],...          a Redis Cluster, any of its nodes
//
// Percent-encode reserved characters of the user and password. IPv6
// addresses go in brackets. Nothing else (no query, no fragment) is
// accepted, and no error repeats the password.
//
// # Keys
//
// With P the key prefix (Options.KeyPrefix, "tether:" by default), U a
// user id (percent-encoded but for letters, digits and -_.@+=, so that it
// can't end the hash tag) and H a token hash in hex:
//
//	P{u:U}:g     the user's generation (a string; absent means 0); it never expires
//	P{u:U}:s:H   a session: one string, a header (generation, version, absolute
//	             deadline, length of the public id), the public id, then the rest
//	             encoded; it expires at the record's Expiry
//	P{u:U}:d:ID  the public id's claim (to H), expiring with the session
//	P{u:U}:i     the user's index: a sorted set of H scored by expiry, holding
//	             the user's live sessions (of the current generation): every
//	             write prunes the expired entries, Delete and Create remove the
//	             entries of the records they delete, RevokeUser leaves only the
//	             kept record's; it expires with its last entry
//	P t:{H}      the pointer: U, the owner of the session under H, expiring at
//	             the absolute deadline
//	P{d}:e       the token denylist (Store.RevokeToken): a hash of each jti's or
//	             subject's entry (field "j:JTI" or "s:SUBJECT", value the entry
//	             in store/internal/denylist's text form)
//	P{d}:x       the same fields scored by their Exp (Unix ms): every RevokeToken
//	             first forgets the entries expired by Redis's clock
//
// The denylist's two keys share the hash tag {d}, so one script changes
// both (in a Cluster, on one primary); it is small (tokens are
// short-lived), and a verifier reads it whole only when its feed comes up.
//
// Everything of one user shares the hash tag {u:U} and so one cluster
// slot: List, Create and RevokeUser never cross shards, and every change of
// a user's keys is one Lua script, atomic. Scripts declare their keys but
// for the records and ids they reach through the index (the records List
// reads, Create evicts and RevokeUser deletes) or through a record (its
// id), which they name from the user's key start: same tag, same slot.
// Each script's work is bounded by the index, which Create's cap bounds
// (SES-13); none scans the keyspace.
//
// Get knows only the hash. It reads the pointer (in the hash's own slot)
// once per node: a session's owner never changes, so the Store remembers
// the owners it has read (up to 50,000, then it starts over) and needs no
// invalidation for them; a remembered owner whose record is gone means
// the session is gone. Owners not found are not remembered. Then one MGET
// of the record and the user's generation (both in the user's slot) is one
// round trip, one atomic read, and no script; Get answers the record only
// if its generation is current. Delete removes the record, then the
// pointer.
//
// (rueidis's server-assisted client-side caching would keep the pointers
// too, but costs more per read than a map and tracks keys that never
// change; the client runs without it.)
//
// Create sets the pointer first (SET NX: it also makes the hash unique,
// so a taken hash is session.ErrConflict before anything else is checked),
// then runs one script in the user's slot that checks, in this order, that
// the user's generation is still the one the caller read (SES-12), or for
// a rotation that the record it replaces is live (its owner is implied by
// its key's user); that the record and id keys are free; then deletes the
// replaced record, prunes the index of the expired, and while the index
// holds MaxPerUser or more entries evicts those that expire first (SES-13);
// and writes the record. If the script refuses, Create removes the pointer
// it set. RevokeUser bumps the generation, moves the kept record to it and
// deletes every other record of the index with its id, in one script.
// Both then delete the pointers of the records they deleted (best effort,
// within a deadline: they are in other slots, and a pointer whose record
// is gone already means no session; one left behind expires with its
// session's absolute deadline).
//
// A read (Get, List, Generation) that fails on the network is sent again
// up to three times within about 150 ms; then the call fails, and the
// Manager answers 503 (SES-11) rather than keep the request waiting. That
// holds when the failure is quick (a refused connection); a Redis that
// stops answering (frozen, or cut off by a partition) fails a call only
// when its context ends or Options.Timeout passes: every call of the
// Manager has a deadline, session.Config.StoreTimeout (MISC-05).
//
// Public ids are unique per user (the Manager's are random, so unique
// across users by chance); a Save that changes a record's id or user is
// refused with session.ErrConflict or session.ErrNotFound.
//
// # Invalidation feed
//
// Every invalidating write (Save, Delete, RevokeUser, RevokeToken, and
// Create for each record it replaces or evicts) publishes, from inside its script and so
// atomically with it, a message on the channel P feed. Watch subscribes to it on a
// connection of its own and delivers FeedUp once Redis has confirmed the
// subscription. A write through a Store reaches every watcher of this
// process following the same Redis URL and prefix before the write returns;
// a write of another process reaches a watcher as soon as Redis delivers the
// message: well under a millisecond on a local network, plus the network's
// own delay.
//
// A write that fails after it may have reached Redis (a lost connection,
// too few replicas) is delivered to this process's watchers all the same:
// an invalidation too many costs a cache miss, one too few would serve a
// revoked session. A Create that replaces or caps, whose outcome is
// unknown, may have deleted records it can't name: it delivers the
// user's UserRevoked, which drops all of the user's sessions from the
// caches of this process.
//
// Every session.HeartbeatInterval (100 ms) Watch PINGs each subscription's
// connection; once all have answered (after the messages Redis pushed
// before), it delivers a heartbeat, FeedCurrent, for the time it sent them
// (SES-14): a Manager stops answering from its cache when they stop. When
// a subscription's connection fails, or a PING gets no answer within a
// second, Watch delivers FeedDown, subscribes again with a growing delay
// (up to 5 s) and delivers FeedUp once it is back. Under
// Sentinel or in a Cluster, Watch also checks every second which nodes are
// primaries, and starts over (FeedDown, FeedUp) when they change: after a
// failover, its subscription follows the new primary.
//
// In a Cluster, plain PUBLISH reaches every node over the cluster bus, but
// that bus may drop a message without telling anyone. So Watch subscribes
// on every primary: a message then arrives once from each, the first
// straight from the node that ran the write, and only the loss of a
// watcher's own connection can lose one. Sharded pub/sub (SPUBLISH) would
// avoid the copies but can't serve: a script may only publish on a
// channel of its own slot, and no watcher can subscribe to a channel per
// slot.
//
// # Replication
//
// With Options.MinReplicas set, Create and every revocation (Delete,
// RevokeUser, RevokeToken) returns only once that many replicas acknowledged
// the write (WAIT, on the write's connection), so that a failover can't
// bring a revoked session back; fewer by Options.WaitTimeout is an error
// wrapping ErrNotReplicated. The write itself stays on the primary: a
// failed create leaves an unreachable record (its token was never handed
// out), a failed revocation should be retried.
//
// # Durability
//
// Redis acknowledges a write once it is in memory and, with the
// append-only file on, written to the file (not yet fsynced). What a
// revocation survives is therefore the server's configuration
// (Store.Durability reads it, and `tether serve` logs it; SES-15):
//
//	appendonly yes, appendfsync everysec (the default)  a Redis crash; a power cut loses up to the last second
//	appendonly yes, appendfsync always                  a power cut too; every write waits for an fsync
//	appendonly no, save ""                              every crash, by forgetting everything: all sessions end
//	appendonly no, snapshots (save)                     nothing: a restart loads a snapshot older than the revocations
//	MinReplicas ≥ 1 (WAIT)                              the loss of the primary's machine, through a failover
//
// Redis 7.2's WAITAOF would let one write wait for its own fsync; the
// Redis tether is developed against (7.0) has no WAITAOF, so the store
// doesn't use it: appendfsync always gives the same guarantee to every
// write. The Cluster's guarantee is its weakest primary's.
package redis

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/feed"
)

var _ session.Store = (*Store)(nil)

// Errors of the store, besides those of package session.
var (
	// ErrNotReplicated: fewer replicas than Options.MinReplicas
	// acknowledged a create or a revocation within Options.WaitTimeout.
	ErrNotReplicated = errors.New("redis store: not acknowledged by enough replicas")
	// ErrBadURL: New was given a URL it can't use; the message says why.
	ErrBadURL = errors.New("redis store: bad URL")
)

// Defaults of Options.
const (
	defaultWaitTimeout = time.Second
	defaultDialTimeout = 5 * time.Second
	defaultTimeout     = 3 * time.Second
)

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// KeyPrefix starts every key name and the feed's channel. Default
	// "tether:". It must not contain { or }.
	KeyPrefix string
	// MinReplicas: creates and revocations are acknowledged only once this
	// many replicas have them (see the package documentation). Default 0:
	// no waiting.
	MinReplicas int
	// WaitTimeout is how long a create or revocation waits for
	// MinReplicas. Default 1 s.
	WaitTimeout time.Duration
	// DialTimeout bounds connecting to a node. Default 5 s.
	DialTimeout time.Duration
	// Timeout is how long a command may wait for its answer before its
	// connection is taken for dead and closed. Idle connections are pinged
	// every second, so one that died silently is noticed within about
	// 1 s + Timeout; the feed's own heartbeats notice it sooner (see
	// Watch). Default 3 s.
	Timeout time.Duration
	// TLSConfig is used for rediss… URLs: set it to trust a private CA or
	// to present a client certificate. Default: the system's roots, TLS
	// 1.2 or later; the server name is the host dialled.
	TLSConfig *tls.Config
	// Logger receives the errors Watch recovers from. Default: nothing is
	// logged.
	Logger *slog.Logger
}

// Store is a session.Store in Redis. It is safe for concurrent use. Close
// it when done.
type Store struct {
	client      rueidis.Client
	target      target
	keys        keys
	minReplicas int
	waitTimeout time.Duration
	log         *slog.Logger
	hub         *hub
	owners      owners       // the pointers Get has read
	watches     feed.Watches // the running Watch calls, and whether the store is closed

	// afterPointer, set only by tests, runs in a create between setting
	// the pointer and the script: where another node's write can land.
	afterPointer func()
}

// New connects to the Redis that url names (see the package documentation
// for the forms) and returns a Store keeping its sessions there.
func New(ctx context.Context, url string, opts Options) (*Store, error) {
	t, err := parseURL(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	return newStore(ctx, t, opts, "")
}

// CheckURL reports whether New would accept url, without connecting: for
// checking configuration. Its error wraps ErrBadURL and says what is
// wrong, never repeating the password.
func CheckURL(url string) error {
	if _, err := parseURL(url); err != nil {
		return fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	return nil
}

// newStore is New for a parsed URL. A non-empty node makes the Store a
// node of its own, as if in another process: a test's way to run two.
func newStore(ctx context.Context, t target, opts Options, node string) (*Store, error) {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	var errs []error
	if err := checkPrefix(opts.KeyPrefix); err != nil {
		errs = append(errs, err)
	}
	if opts.MinReplicas < 0 {
		errs = append(errs, fmt.Errorf("MinReplicas %d: want 0 or more", opts.MinReplicas))
	}
	if opts.WaitTimeout < 0 || opts.DialTimeout < 0 || opts.Timeout < 0 {
		errs = append(errs, errors.New("timeouts must be positive, or 0 for their defaults"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("redis store: options: %w", err)
	}

	client, err := rueidis.NewClient(clientOption(t, opts))
	if err != nil {
		return nil, fmt.Errorf("redis store: connect to %s: %w", t, err)
	}
	if t.mode == cluster && client.Mode() != rueidis.ClientModeCluster {
		client.Close()
		return nil, fmt.Errorf("redis store: %s names a cluster, but the server is not in cluster mode: use redis://", t)
	}
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis store: connect to %s: %w", t, err)
	}
	s := &Store{
		client:      client,
		target:      t,
		keys:        keys{prefix: opts.KeyPrefix},
		minReplicas: opts.MinReplicas,
		waitTimeout: cmp.Or(opts.WaitTimeout, defaultWaitTimeout),
		log:         opts.Logger,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "store/redis")
	s.hub = hubs.Acquire(hubKey{data: t.dataKey(), prefix: opts.KeyPrefix, node: node})
	return s, nil
}

// clientOption is how the Store's rueidis client is set up.
func clientOption(t target, opts Options) rueidis.ClientOption {
	o := rueidis.ClientOption{
		InitAddress:      t.addrs,
		Username:         t.username,
		Password:         t.password,
		SelectDB:         t.db,
		ClientName:       "tether",
		Dialer:           net.Dialer{Timeout: cmp.Or(opts.DialTimeout, defaultDialTimeout), KeepAlive: time.Second},
		ConnWriteTimeout: cmp.Or(opts.Timeout, defaultTimeout),
		RetryDelay:       retryDelay,
		// Nothing is read through rueidis's client-side cache: the one
		// value worth keeping, a session's owner, never changes (owners).
		DisableCache: true,
	}
	if t.tls {
		o.TLSConfig = opts.TLSConfig.Clone()
		if o.TLSConfig == nil {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	switch t.mode {
	case standalone:
		o.ForceSingleClient = true
	case sentinel:
		o.Sentinel = rueidis.SentinelOption{
			MasterSet:               t.master,
			Dialer:                  o.Dialer,
			TLSConfig:               o.TLSConfig,
			TopologyRefreshInterval: 5 * time.Second,
		}
	}
	return o
}

// maxRetries is how often rueidis sends a read (or an idempotent write)
// again after a network error; retryDelay spaces the tries 20, 40 and
// 80 ms apart. rueidis's default would retry until the caller's context
// ends: a request would hang as long as Redis is away, where it should get
// its 503 (SES-11) at once.
const maxRetries = 3

func retryDelay(attempts int, _ rueidis.Completed, _ error) time.Duration {
	if attempts > maxRetries {
		return -1
	}
	return 10 * time.Millisecond << attempts
}

// dataKey names the data t reaches, for the hub: the same servers, the
// same database.
func (t target) dataKey() string {
	addrs := slices.Sorted(slices.Values(t.addrs))
	return fmt.Sprintf("%d|%s|%s|%d", t.mode, strings.Join(addrs, ","), t.master, t.db)
}

// Close marks the store closed: from then on every method returns
// session.ErrClosed. It ends the running Watch calls, waits for them to
// return and closes the connections. Closing a closed store does nothing.
func (s *Store) Close() error {
	if !s.watches.Close() {
		return nil
	}
	hubs.Release(s.hub.key)
	s.client.Close()
	return nil
}

// fail wraps err with op, and with session.ErrClosed if the store was
// closed (which makes calls in flight fail).
func (s *Store) fail(op string, err error) error {
	if s.watches.Closed() && !errors.Is(err, session.ErrClosed) {
		return fmt.Errorf("redis store: %s: %w: %w", op, session.ErrClosed, err)
	}
	return fmt.Errorf("redis store: %s: %w", op, err)
}

// closedError returns session.ErrClosed, wrapped with what the caller was
// doing.
func closedError(op string) error {
	return fmt.Errorf("redis store: %s: %w", op, session.ErrClosed)
}
