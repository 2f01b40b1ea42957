// Package storetest is the conformance suite every session.Store backend
// runs, so that all backends keep the Store contract the same way. A new
// backend passes it before it is used.
//
// A backend's test calls Run with a function that makes a fresh, empty store
// and returns it with its close function:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) (session.Store, func() error) {
//			s, err := mystore.Open(t.Context(), testURL(t)) // a fresh, empty store
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s, s.Close
//		})
//	}
//
// Every subtest gets its own store and closes it when it ends; the close
// function is called exactly once. If the store has the optional capability
//
//	interface{ DeleteExpired(ctx context.Context, now time.Time) (int, error) }
//
// the suite checks it too. store/memory's TestConformance is the shortest
// complete example.
//
// A store that several nodes share over a network (store/redis,
// store/postgres, and store/sqlite's processes sharing a file) also runs
// the suite's checks across nodes, each node a Store of its own over the
// same data: TokenFeedAcrossNodes (the token denylist is one list, and a
// revocation through one node reaches the other's watchers), and, over a
// network, HeartbeatOrder (a node's
// heartbeat never vouches for a time before a write another node saw
// acknowledged) and PartitionedNode (a node cut off from the store stops
// serving a revoked session within its staleness bound, then fails
// closed: SES-14). For the second, node B reaches the store through a
// faultnet proxy, which the check blackholes:
//
//	func TestSES14_PartitionedNode(t *testing.T) {
//		p, err := faultnet.Listen(storeAddr)
//		if err != nil {
//			t.Fatal(err)
//		}
//		t.Cleanup(func() { p.Close() })
//		a, b := openNode(t, storeAddr), openNode(t, p.Addr()) // closed when the test ends
//		storetest.PartitionedNode(t, a, b, p, session.DefaultMaxStaleness)
//	}
//
// What the suite takes as equal:
//
//   - times: a store may drop precision finer than a millisecond (by
//     truncating, as time.Time.Truncate does) and need not keep a time's
//     location; anything coarser fails;
//   - session data: a key whose value is empty must come back present, with
//     an empty (or nil) value; a record without data may come back with a
//     nil or an empty map;
//   - empty lists: List of a user without live sessions must return no
//     error and no records; nil counts as an empty slice;
//   - the feed: a store may deliver more invalidations than the contract
//     asks (say a Changed for a create); the suite checks that the ones it
//     requires are there, not that nothing else is.
//
// Every record is built around a fixed time, so that no test depends on the
// clock.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/session"
)

// Run runs the conformance suite against the stores newStore makes. Each
// call of newStore must return a fresh, empty store and the function that
// closes it; the suite calls that function once, when the subtest ends or
// when a subtest closes the store on purpose.
func Run(t *testing.T, newStore func(t *testing.T) (session.Store, func() error)) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s session.Store, closeStore func() error)
	}{
		{"CreateSetsVersionAndGen", testCreateSetsVersionAndGen},
		{"GenerationCountsRevocations", testGenerationCountsRevocations},
		{"CreateAfterRevocationRefused", testCreateAfterRevocationRefused},
		{"CreateReplace", testCreateReplace},
		{"CreateReplaceDead", testCreateReplaceDead},
		{"CreateMaxPerUser", testCreateMaxPerUser},
		{"CreateDuplicateHash", testCreateDuplicateHash},
		{"CreateDuplicateID", testCreateDuplicateID},
		{"GetMissing", testGetMissing},
		{"GetAfterMiss", testGetAfterMiss},
		{"GetReturnsCopy", testGetReturnsCopy},
		{"SaveKeepsNoReference", testSaveKeepsNoReference},
		{"DataRoundTrip", testDataRoundTrip},
		{"TimesRoundTrip", testTimesRoundTrip},
		{"SaveIncrementsVersion", testSaveIncrementsVersion},
		{"SaveStaleVersion", testSaveStaleVersion},
		{"SaveMissing", testSaveMissing},
		{"SaveRevoked", testSaveRevoked},
		{"DeleteIsIdempotent", testDeleteIsIdempotent},
		{"ListPerUserOldestFirst", testListPerUserOldestFirst},
		{"ListEmpty", testListEmpty},
		{"RevokeUserKillsAll", testRevokeUserKillsAll},
		{"RevokeUserKeep", testRevokeUserKeep},
		{"RevokeUserKeepOtherUser", testRevokeUserKeepOtherUser},
		{"RevokeUserKeepDead", testRevokeUserKeepDead},
		{"RevokeUserWithoutSessions", testRevokeUserWithoutSessions},
		{"DeleteExpired", testDeleteExpired},
		{"ConcurrentSaves", testConcurrentSaves},
		{"ConcurrentCreates", testConcurrentCreates},
		{"ConcurrentCreatesSameHash", testConcurrentCreatesSameHash},
		{"ConcurrentCreatesRevoke", testConcurrentCreatesRevoke},
		{"ConcurrentCreatesMaxPerUser", testConcurrentCreatesMaxPerUser},
		{"ConcurrentReplaceOnce", testConcurrentReplaceOnce},
		{"WatchFeedUpFirst", testWatchFeedUpFirst},
		{"WatchDeliversBeforeReturn", testWatchDeliversBeforeReturn},
		{"WatchManyWatchers", testWatchManyWatchers},
		{"WatchStopsOnCancel", testWatchStopsOnCancel},
		{"SES14_WatchHeartbeats", testWatchHeartbeats},
		{"JWT09_RevokeToken", testJWT09RevokeToken},
		{"RevocationsMerge", testRevocationsMerge},
		{"RevocationsExpired", testRevocationsExpired},
		{"RevokeTokenInvalid", testRevokeTokenInvalid},
		{"CHG03_SubjectGenerations", testCHG03SubjectGenerations},
		{"WatchTokenRevoked", testWatchTokenRevoked},
		{"RevocationsDeadline", testRevocationsDeadline},
		{"Closed", testClosed},
		{"CloseStopsWatch", testCloseStopsWatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, closeFn := newStore(t)
			var once sync.Once
			var closeErr error
			closeStore := func() error {
				once.Do(func() { closeErr = closeFn() })
				return closeErr
			}
			t.Cleanup(func() {
				if err := closeStore(); err != nil {
					t.Errorf("close store: %v", err)
				}
			})
			tc.run(t, s, closeStore)
		})
	}
}

// base is the fixed time every record is built around. It has nanoseconds
// so that a store that keeps less than a millisecond is still compared
// fairly (see equalTime).
var base = time.Date(2030, time.March, 4, 12, 30, 45, 123456789, time.UTC)

// newRecord returns a record of user that no other call with a different
// user or n collides with: its hash and public id derive from both. It is
// created n minutes after base, so records of one user sort by n.
func newRecord(user string, n int) *session.Record {
	created := base.Add(time.Duration(n) * time.Minute)
	return &session.Record{
		Hash:         sha256.Sum256([]byte("storetest token " + user + "/" + strconv.Itoa(n))),
		ID:           "sid-" + user + "-" + strconv.Itoa(n),
		UserID:       user,
		Created:      created,
		LastSeen:     created.Add(time.Second),
		IdleDeadline: created.Add(30 * time.Minute),
		AbsDeadline:  created.Add(12 * time.Hour),
		UserAgent:    "storetest/1.0",
		IP:           "192.0.2.7",
		Data:         map[string][]byte{"theme": []byte("dark")},
	}
}

// create adds r as a new record at its user's current generation and
// fails the test if it can't.
func create(t *testing.T, s session.Store, r *session.Record) *session.Record {
	t.Helper()
	if err := createAt(t, s, r, session.CreateOptions{}); err != nil {
		t.Fatalf("create %s: %v", r.ID, err)
	}
	return r
}

// createAt reads the generation of r's user into r.Gen, as the Manager's
// Begin does, and creates r with opts.
func createAt(t *testing.T, s session.Store, r *session.Record, opts session.CreateOptions) error {
	t.Helper()
	gen, err := s.Generation(t.Context(), r.UserID)
	if err != nil {
		return err
	}
	r.Gen = gen
	return s.Create(t.Context(), r, opts)
}

// mustGet returns the record under h and fails the test if there is none.
func mustGet(t *testing.T, s session.Store, h session.Hash) *session.Record {
	t.Helper()
	r, err := s.Get(t.Context(), h)
	if err != nil {
		t.Fatalf("Get: got error %v, want the record", err)
	}
	return r
}

// wantErr fails the test unless err wraps want.
func wantErr(t *testing.T, op string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", op, err, want)
	}
}

// checkDead fails the test unless Get answers ErrNotFound for h.
func checkDead(t *testing.T, s session.Store, h session.Hash) {
	t.Helper()
	_, err := s.Get(t.Context(), h)
	wantErr(t, "Get of a dead record", err, session.ErrNotFound)
}

// checkRecord fails the test unless got equals want (see equalTime and
// equalData for what equal means).
func checkRecord(t *testing.T, got, want *session.Record) {
	t.Helper()
	if d := diffRecord(got, want); d != "" {
		t.Errorf("record %s: %s", want.ID, d)
	}
}

// diffRecord describes the first difference between got and want, or
// returns "" when they are equal.
func diffRecord(got, want *session.Record) string {
	fields := []struct {
		name      string
		got, want any
		equal     bool
	}{
		{"Hash", got.Hash, want.Hash, got.Hash == want.Hash},
		{"ID", got.ID, want.ID, got.ID == want.ID},
		{"UserID", got.UserID, want.UserID, got.UserID == want.UserID},
		{"Gen", got.Gen, want.Gen, got.Gen == want.Gen},
		{"Version", got.Version, want.Version, got.Version == want.Version},
		{"Created", got.Created, want.Created, equalTime(got.Created, want.Created)},
		{"LastSeen", got.LastSeen, want.LastSeen, equalTime(got.LastSeen, want.LastSeen)},
		{"IdleDeadline", got.IdleDeadline, want.IdleDeadline, equalTime(got.IdleDeadline, want.IdleDeadline)},
		{"AbsDeadline", got.AbsDeadline, want.AbsDeadline, equalTime(got.AbsDeadline, want.AbsDeadline)},
		{"UserAgent", got.UserAgent, want.UserAgent, got.UserAgent == want.UserAgent},
		{"IP", got.IP, want.IP, got.IP == want.IP},
		{"Data", got.Data, want.Data, equalData(got.Data, want.Data)},
	}
	for _, f := range fields {
		if !f.equal {
			return fmt.Sprintf("%s: got %v, want %v", f.name, f.got, f.want)
		}
	}
	return ""
}

// equalTime reports whether a and b are the same instant to the
// millisecond, ignoring location and anything finer.
func equalTime(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

// equalData reports whether a and b hold the same keys with the same bytes;
// nil and empty maps and values are equal.
func equalData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || !bytes.Equal(va, vb) {
			return false
		}
	}
	return true
}
