package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
)

// expBase is the Exp the denylist's entries are built around: base to the
// millisecond, so that an entry that travelled through a store's feed
// compares equal with ==.
var expBase = base.Truncate(time.Millisecond)

// jtiEntry and subjectEntry are denylist entries n minutes after expBase.
func jtiEntry(jti string, n int) session.Revocation {
	return session.Revocation{JTI: jti, Exp: expBase.Add(time.Duration(n) * time.Minute)}
}

func subjectEntry(subject string, gen uint64, n int) session.Revocation {
	return session.Revocation{Subject: subject, Gen: gen, Exp: expBase.Add(time.Duration(n) * time.Minute)}
}

func tokenRevoked(r session.Revocation) session.Event {
	return session.Event{Kind: session.TokenRevoked, Revocation: r}
}

// revokeToken calls RevokeToken and fails the test if it fails.
func revokeToken(t *testing.T, s session.Store, r session.Revocation) {
	t.Helper()
	if err := s.RevokeToken(t.Context(), r); err != nil {
		t.Fatalf("RevokeToken(%+v): %v", r, err)
	}
}

// checkTokenRevoked fails the test unless TokenRevoked(jti) answers want.
func checkTokenRevoked(t *testing.T, s session.Store, jti string, want bool) {
	t.Helper()
	got, err := s.TokenRevoked(t.Context(), jti)
	if err != nil {
		t.Fatalf("TokenRevoked(%q): %v", jti, err)
	}
	if got != want {
		t.Errorf("TokenRevoked(%q): got %v, want %v", jti, got, want)
	}
}

// checkRevocations fails the test unless Revocations(now) holds every one
// of want, once, and nothing else but entries of maybe (those past now,
// which a store may still list).
func checkRevocations(t *testing.T, s session.Store, now time.Time, want []session.Revocation, maybe ...session.Revocation) {
	t.Helper()
	got, err := s.Revocations(t.Context(), now)
	if err != nil {
		t.Fatalf("Revocations: %v", err)
	}
	if d := diffRevocations(got, want, maybe); d != "" {
		t.Errorf("Revocations: %s (got %s, want %s)", d, describeRevocations(got), describeRevocations(want))
	}
}

// diffRevocations describes how got differs from want and maybe (see
// checkRevocations), or returns "".
func diffRevocations(got, want, maybe []session.Revocation) string {
	same := func(a, b session.Revocation) bool {
		return a.JTI == b.JTI && a.Subject == b.Subject && a.Gen == b.Gen && equalTime(a.Exp, b.Exp)
	}
	for _, w := range want {
		n := 0
		for _, g := range got {
			if same(g, w) {
				n++
			}
		}
		if n != 1 {
			return fmt.Sprintf("%s listed %d times, want once", describeRevocations([]session.Revocation{w}), n)
		}
	}
	for _, g := range got {
		if !slices.ContainsFunc(want, func(w session.Revocation) bool { return same(g, w) }) &&
			!slices.ContainsFunc(maybe, func(m session.Revocation) bool { return same(g, m) }) {
			return fmt.Sprintf("%s listed, want no such entry", describeRevocations([]session.Revocation{g}))
		}
	}
	return ""
}

func describeRevocations(rs []session.Revocation) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		if r.JTI != "" {
			parts[i] = fmt.Sprintf("jti %q exp %v", r.JTI, r.Exp)
		} else {
			parts[i] = fmt.Sprintf("subject %q gen %d exp %v", r.Subject, r.Gen, r.Exp)
		}
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// JWT-09: a token is revoked by its jti; an unknown jti, and a subject's
// entry spelled like a jti, revoke nothing.
func testJWT09RevokeToken(t *testing.T, s session.Store, _ func() error) {
	checkTokenRevoked(t, s, "jti-1", false)
	revokeToken(t, s, jtiEntry("jti-1", 10))
	revokeToken(t, s, subjectEntry("client:billing", 1, 10))
	checkTokenRevoked(t, s, "jti-1", true)
	checkTokenRevoked(t, s, "jti-2", false)
	checkTokenRevoked(t, s, "client:billing", false)
	checkTokenRevoked(t, s, "", false)

	// Revoking again is not an error.
	revokeToken(t, s, jtiEntry("jti-1", 10))
	checkTokenRevoked(t, s, "jti-1", true)
}

// One entry per jti and per subject: the later Exp and the greater Gen win.
func testRevocationsMerge(t *testing.T, s session.Store, _ func() error) {
	revokeToken(t, s, jtiEntry("jti-1", 10))
	revokeToken(t, s, jtiEntry("jti-1", 20)) // later: wins
	revokeToken(t, s, jtiEntry("jti-1", 5))  // earlier: loses
	revokeToken(t, s, subjectEntry("client:billing", 2, 10))
	revokeToken(t, s, subjectEntry("client:billing", 1, 30)) // lesser gen, later exp
	revokeToken(t, s, subjectEntry("client:billing", 3, 15))
	revokeToken(t, s, subjectEntry("jti-1", 1, 10)) // a subject spelled like the jti: an entry of its own
	checkRevocations(t, s, base, []session.Revocation{
		jtiEntry("jti-1", 20),
		subjectEntry("client:billing", 3, 30),
		subjectEntry("jti-1", 1, 10),
	})
}

// Revocations lists every entry whose Exp is after now; an entry past it
// may be listed or dropped, and DeleteExpired, if the store has it, keeps
// the others.
func testRevocationsExpired(t *testing.T, s session.Store, _ func() error) {
	past := time.Date(2001, time.January, 1, 0, 0, 0, 0, time.UTC) // past by any clock
	gone := []session.Revocation{
		{JTI: "long-gone", Exp: past},
		{Subject: "client:long-gone", Gen: 1, Exp: past},
		jtiEntry("exactly-now", 0),
	}
	live := []session.Revocation{jtiEntry("live", 1), subjectEntry("user:u_live", 4, 1)}
	for _, r := range append(slices.Clone(gone), live...) {
		revokeToken(t, s, r)
	}
	checkRevocations(t, s, expBase, live, gone...)
	if x, ok := s.(expirer); ok {
		if _, err := x.DeleteExpired(t.Context(), expBase); err != nil {
			t.Fatalf("DeleteExpired: %v", err)
		}
		checkRevocations(t, s, expBase, live, gone...)
		checkTokenRevoked(t, s, "live", true)
	}
}

// A store refuses an entry that is neither one token nor one subject, or
// has no Exp, and keeps nothing of it.
func testRevokeTokenInvalid(t *testing.T, s session.Store, _ func() error) {
	tests := []struct {
		name string
		r    session.Revocation
	}{
		{"neither jti nor subject", session.Revocation{Exp: expBase}},
		{"both jti and subject", session.Revocation{JTI: "both", Subject: "client:both", Exp: expBase}},
		{"no Exp", session.Revocation{JTI: "no-exp"}},
		{"jti with a generation", session.Revocation{JTI: "gen", Gen: 1, Exp: expBase}},
		{"NUL in the id", session.Revocation{Subject: "client:\x00", Exp: expBase}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.RevokeToken(t.Context(), tc.r); err == nil {
				t.Errorf("RevokeToken(%+v): got nil, want an error", tc.r)
			}
		})
	}
	checkTokenRevoked(t, s, "both", false)
	checkRevocations(t, s, base, nil)
}

// CHG-03, JWT-12: a token subject's generation is a user's generation
// under the subject's name, namespace and colon included; subjects and
// users spelled apart never share one.
func testCHG03SubjectGenerations(t *testing.T, s session.Store, _ func() error) {
	subjects := []string{"client:billing", "user:u_x", "user:u_x:", "client:a}b{c%3A :/", "billing"}
	for i, sub := range subjects {
		for range i + 1 {
			revoke(t, s, sub, nil)
		}
	}
	for i, sub := range subjects {
		gen, err := s.Generation(t.Context(), sub)
		if err != nil {
			t.Fatalf("Generation(%q): %v", sub, err)
		}
		if gen != uint64(i+1) {
			t.Errorf("Generation(%q): got %d, want %d", sub, gen, i+1)
		}
	}

	// Sessions of a subject-like user id live and die by its generation.
	r := create(t, s, newRecord("user:u_x", 1))
	other := create(t, s, newRecord("user:u_x:", 1))
	checkList(t, s, "user:u_x", r)
	revoke(t, s, "user:u_x", nil)
	checkDead(t, s, r.Hash)
	checkRecord(t, mustGet(t, s, other.Hash), other)
}

// A revocation of this process reaches the watcher before RevokeToken
// returns.
func testWatchTokenRevoked(t *testing.T, s session.Store, _ func() error) {
	f := storekit.Follow(t, s)
	for _, r := range []session.Revocation{jtiEntry("jti-1", 10), subjectEntry("client:billing", 2, 10), jtiEntry("jti-1", 10)} {
		before := storekit.Count(f.Events(), tokenRevoked(r))
		revokeToken(t, s, r)
		checkDelivered(t, f, "RevokeToken", before, tokenRevoked(r))
	}
}

// The denylist's calls honour their context's deadline.
func testRevocationsDeadline(t *testing.T, s session.Store, _ func() error) {
	revokeToken(t, s, jtiEntry("jti-1", 10))
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"RevokeToken", func() error { return s.RevokeToken(ctx, jtiEntry("jti-2", 10)) }},
		{"TokenRevoked", func() error { _, err := s.TokenRevoked(ctx, "jti-1"); return err }},
		{"Revocations", func() error { _, err := s.Revocations(ctx, base); return err }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name+" past its deadline", tc.call(), context.DeadlineExceeded)
		})
	}
}

// TokenFeedAcrossNodes is a backend's test that the denylist is shared:
// a revocation written through nodeA reaches a watcher of nodeB, as
// TokenRevoked events (JWT-09), and nodeB reads it back. nodeA and nodeB
// are Stores of the same data, as two processes would have.
func TokenFeedAcrossNodes(t *testing.T, nodeA, nodeB session.Store) {
	t.Helper()
	f := storekit.Follow(t, nodeB)
	entries := []session.Revocation{
		jtiEntry("across-1", 10),
		subjectEntry("client:across", 3, 10),
		jtiEntry("across-1", 20),
	}
	for _, r := range entries {
		before := storekit.Count(f.Events(), tokenRevoked(r))
		revokeToken(t, nodeA, r)
		f.Await(t, before, tokenRevoked(r))
	}
	checkTokenRevoked(t, nodeB, "across-1", true)
	checkRevocations(t, nodeB, base, entries[1:])
	if err := f.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Watch: %v", err)
	}
}
