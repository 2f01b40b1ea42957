// Package storekit is what tether's own store tests and benchmarks share
// beyond the conformance suite in package storetest: a Feed that records a
// store's Watch (Follow), predicates and a formatter for its events,
// records of a realistic size (Record), and the plumbing of the
// benchmarks (Bench, Sessions, RunManager, RevocationPropagation).
//
// A backend's test that a write through one node reaches another's feed:
//
//	f := storekit.Follow(t, nodeB)
//	r := storekit.Record("alice", 1)
//	// ... create r and delete it through nodeA ...
//	f.Await(t, 0, session.Event{Kind: session.Changed, Hash: r.Hash})
//
// storetest uses it too (its Watch tests follow a Feed); it is internal so
// that the public storetest shows a new backend's author only the suite.
package storekit

import (
	"crypto/sha256"
	"strconv"
	"time"

	"github.com/tetherauth/tether/session"
)

// UserAgent is a browser's, for records of a realistic size.
const UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"

// recordBase is when Record's records are created: a whole second.
var recordBase = time.Date(2030, time.March, 4, 12, 30, 45, 0, time.UTC)

// Record returns a new record of user, distinct for every user and n (its
// hash and public id derive from both), as a browser's session would have
// it: a real user agent, a CSRF token among its data. It is created n
// seconds after 2030-03-04 12:30:45 UTC, a whole second, and its Gen and
// Version are 0: Create makes it for a user never revoked.
func Record(user string, n int) *session.Record {
	created := recordBase.Add(time.Duration(n) * time.Second)
	return &session.Record{
		Hash:         sha256.Sum256([]byte(user + "/" + strconv.Itoa(n))),
		ID:           user + "-" + strconv.Itoa(n),
		UserID:       user,
		Created:      created,
		LastSeen:     created,
		IdleDeadline: created.Add(30 * time.Minute),
		AbsDeadline:  created.Add(12 * time.Hour),
		UserAgent:    UserAgent,
		IP:           "192.0.2.1",
		Data:         map[string][]byte{"csrf": []byte("0123456789abcdef"), "theme": []byte("dark")},
	}
}
