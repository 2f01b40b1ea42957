package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/session"
)

// tether status: the operator's view of a deployment, in plain text, one
// check a line, from the same settings as serve. It reads and never
// writes (ADM-01): the stores are opened as the admin commands open them,
// the feed is followed without a write, and the key ring is listed, not
// maintained.

// statusCheckTimeout bounds each check of tether status, every store call
// in it included (MISC-05): a store that doesn't answer is reported as
// such in this long, not waited for.
const statusCheckTimeout = adminStoreTimeout

// errUnhealthy is the error of a status report with a failed check: the
// exit status is 1.
var errUnhealthy = errors.New("unhealthy")

// statusReport prints the lines of tether status to w and remembers the
// checks that failed.
type statusReport struct {
	w      io.Writer
	failed []string
}

// check runs the check called name, bounded by statusCheckTimeout, and
// prints its line: its name, ok or FAIL, what it found (or what is
// wrong), and how long it took. A check that needs a check that failed
// (a store that failed or hangs) is not run, so not waited for: it fails
// as skipped, since what it would report is unknown.
func (r *statusReport) check(ctx context.Context, name string, needs []string, do func(ctx context.Context) (string, error)) {
	for _, n := range needs {
		if slices.Contains(r.failed, n) {
			r.failed = append(r.failed, name)
			fmt.Fprintf(r.w, "%-9s %-4s skipped: the %s check failed (%s)\n", name, "FAIL", n, roundDuration(0))
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, statusCheckTimeout)
	defer cancel()
	start := time.Now()
	found, err := do(ctx)
	took := time.Since(start)
	verdict := "ok"
	if err != nil {
		verdict, found = "FAIL", err.Error()
		r.failed = append(r.failed, name)
	}
	fmt.Fprintf(r.w, "%-9s %-4s %s (%s)\n", name, verdict, found, roundDuration(took))
}

// err returns nil if every check passed, else errUnhealthy naming the
// failed ones.
func (r *statusReport) err() error {
	if len(r.failed) == 0 {
		fmt.Fprintln(r.w, "status    ok   healthy")
		return nil
	}
	fmt.Fprintf(r.w, "status    FAIL unhealthy: %s\n", strings.Join(r.failed, ", "))
	return fmt.Errorf("%w: %s", errUnhealthy, strings.Join(r.failed, ", "))
}

// roundDuration rounds d for a report: to the microsecond below a
// millisecond, else to a tenth of a millisecond.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(100 * time.Microsecond)
}

// status prints the health of the deployment c describes: its stores,
// the session store's invalidation feed, the key ring, and what the
// stores hold. It fails (exit status 1) when any check fails.
func status(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	c, err := e.parseNoArgs(fs, args, allSettings...)
	if err != nil {
		return err
	}
	r := &statusReport{w: e.stdout}
	var st *stores
	r.check(ctx, "open", nil, func(ctx context.Context) (_ string, err error) {
		if st, err = openForAdmin(ctx, c); err != nil {
			return "", err
		}
		return fmt.Sprintf("users in %s, sessions in %s", accountsPlace(c), sessionStoreOf(c)), nil
	})
	if st == nil {
		return r.err()
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	r.check(ctx, "accounts", nil, func(ctx context.Context) (string, error) {
		if err := st.accountsReachable(ctx); err != nil {
			return "", fmt.Errorf("unreachable: %w", err)
		}
		return "reachable", nil
	})
	r.check(ctx, "sessions", nil, func(ctx context.Context) (string, error) {
		if err := st.sessionsReachable(ctx); err != nil {
			return "", fmt.Errorf("unreachable: %w", err)
		}
		return "reachable", nil
	})
	accounts, sessions := []string{"accounts"}, []string{"sessions"}
	r.check(ctx, "feed", sessions, func(ctx context.Context) (string, error) { return checkFeed(ctx, st.sessions) })
	r.check(ctx, "server", accounts, func(ctx context.Context) (string, error) { return lastServed(ctx, st.accounts, time.Now()) })
	r.check(ctx, "keys", accounts, func(ctx context.Context) (string, error) {
		// The ring is described from its records: no private key is
		// opened, so a sealed ring needs no master key here (KEY-04), and
		// a monitor that runs status is not given it.
		cfg, err := ringConfig(c, func(string) string { return "" })
		if err != nil {
			return "", err
		}
		d, err := keys.Describe(ctx, st.accounts.KeyStorage(), cfg)
		if err != nil {
			return "", err
		}
		return describeRing(d, c.KeyRotation)
	})
	r.check(ctx, "counts", []string{"accounts", "sessions"}, func(ctx context.Context) (string, error) {
		return countAll(ctx, st, time.Now(), statusCheckTimeout/2)
	})
	return r.err()
}

// checkFeed follows the session store's invalidation feed until it is up
// and has delivered a heartbeat, which proves a round trip over it
// (session.Store.Watch), and says how long each took.
func checkFeed(ctx context.Context, s session.Store) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	up, beat := make(chan time.Duration, 1), make(chan time.Duration, 1)
	watched := make(chan error, 1)
	go func() {
		watched <- s.Watch(ctx, func(ev session.Event) {
			switch ev.Kind {
			case session.FeedUp:
				sendOnce(up, time.Since(start))
			case session.FeedCurrent:
				sendOnce(beat, time.Since(start))
			}
		})
	}()
	defer func() { cancel(); <-watched }()
	var upAfter time.Duration
	for _, step := range []struct {
		what string
		ch   chan time.Duration
		took *time.Duration
	}{{"connect", up, &upAfter}, {"deliver a heartbeat", beat, new(time.Duration)}} {
		select {
		case d := <-step.ch:
			*step.took = d
		case err := <-watched:
			return "", fmt.Errorf("down: the feed stopped before it could %s: %v", step.what, err)
		case <-ctx.Done():
			return "", fmt.Errorf("down: the feed did not %s within %v", step.what, statusCheckTimeout)
		}
	}
	return fmt.Sprintf("connected in %v, heartbeat after %v", roundDuration(upAfter), roundDuration(time.Since(start))), nil
}

// sendOnce sends d on ch unless a value waits there already.
func sendOnce(ch chan time.Duration, d time.Duration) {
	select {
	case ch <- d:
	default:
	}
}

// lastServed says when a serve last marked the deployment record as
// running (recordHeartbeat): information, not a check, since a
// deployment may be stopped on purpose.
func lastServed(ctx context.Context, acc accounts, now time.Time) (string, error) {
	d, _, err := readDeployment(ctx, acc)
	if err != nil {
		return "", err
	}
	if d.Served.IsZero() {
		return "no serve has run with these settings (recorded by " + d.By + ")", nil
	}
	state := "running"
	if now.Sub(d.Served) > recordLive {
		state = "not running"
	}
	return fmt.Sprintf("%s: a serve last marked the deployment record at %s (%v ago)", state, stamp(d.Served), now.Sub(d.Served).Round(time.Second)), nil
}

// describeRing reports the key ring d describes, whose schedule replaces
// a key after rotateEvery (0: only by hand), publishing the new one a
// JWKS cache lifetime before: the key that signs, its age, the next
// rotation, the keys waiting or retired. A ring with no key that signs, or
// whose rotation is overdue by more than a cache lifetime (no serve runs
// its schedule), fails.
func describeRing(d keys.Description, rotateEvery time.Duration) (string, error) {
	now, cacheLife := d.Now, d.CacheLifetime
	var active *keys.Info
	var pending, retired []string
	removed := 0
	for i, k := range d.Keys {
		switch k.State {
		case keys.Signing:
			active = &d.Keys[i]
		case keys.Pending:
			pending = append(pending, fmt.Sprintf("%s signs from %s", k.Kid, stamp(k.SignFrom)))
		case keys.Retired:
			retired = append(retired, fmt.Sprintf("%s published until %s", k.Kid, stamp(k.RemoveAt)))
		case keys.Removed:
			removed++
		}
	}
	if active == nil {
		return "", errors.New("no key signs: machine tokens can't be issued; start tether serve, or run tether keys rotate")
	}
	age := now.Sub(active.SignFrom).Round(time.Second)
	next := "only by tether keys rotate (--key-rotation 0)"
	switch {
	case len(pending) > 0:
		next = strings.Join(pending, ", ")
	case !d.NextRotation.IsZero():
		// The schedule adds the new key a cache lifetime before it signs.
		due := d.NextRotation.Add(cacheLife)
		if now.After(due.Add(cacheLife)) {
			return "", fmt.Errorf("key %s should have been replaced at %s (--key-rotation %v): is a tether serve running?", active.Kid, stamp(due), rotateEvery)
		}
		next = "a new key signs from " + stamp(due) + ", published " + cacheLife.String() + " before"
	}
	return fmt.Sprintf("signing key %s (%s), signing for %v; next rotation: %s; retired: %s; removed: %d",
		active.Kid, active.Alg, age, next, orNone(retired), removed), nil
}

// orNone joins list, or says "none".
func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}

// countAll counts what the stores hold at now: users (and how many are
// disabled), live sessions (listed user by user, as the session store
// keeps them: its calls are bounded per user, SES-13), clients, personal
// access tokens not expired, and access tokens revoked before their
// expiry.
//
// Sessions and personal access tokens take two calls per user, so on a
// large deployment they are counted for perUser at most: the users not
// reached by then are left out, and the line says how many were counted.
// A healthy deployment too big to count in time is not reported
// unhealthy; a store that fails is.
func countAll(ctx context.Context, st *stores, now time.Time, perUser time.Duration) (string, error) {
	users, err := st.accounts.List(ctx)
	if err != nil {
		return "", fmt.Errorf("users: %w", err)
	}
	m, err := session.NewManager(st.sessions, session.Config{}) // List keeps each session's own deadlines
	if err != nil {
		return "", err
	}
	var disabled, counted, sessions, pats int
	for _, u := range users {
		if u.Disabled {
			disabled++
		}
	}
	start := time.Now()
	for _, u := range users {
		if time.Since(start) >= perUser {
			break
		}
		list, err := m.List(ctx, u.ID)
		if err != nil {
			return "", fmt.Errorf("sessions of %s: %w", u.Name, err)
		}
		sessions += len(list)
		tokens, err := st.accounts.PATList(ctx, u.ID)
		if err != nil {
			return "", fmt.Errorf("personal access tokens of %s: %w", u.Name, err)
		}
		for _, p := range tokens {
			if p.Expires.After(now) {
				pats++
			}
		}
		counted++
	}
	clients, err := st.accounts.ClientList(ctx)
	if err != nil {
		return "", fmt.Errorf("clients: %w", err)
	}
	revoked, err := st.accounts.RecordedRevocations(ctx, now)
	if err != nil {
		return "", fmt.Errorf("revoked tokens: %w", err)
	}
	perUserCounts := fmt.Sprintf("sessions %d, clients %d (%d disabled), personal access tokens %d", sessions, len(clients), countDisabled(clients), pats)
	if counted < len(users) {
		perUserCounts = fmt.Sprintf("sessions %d and personal access tokens %d of the first %d users (counting stopped after %v; the rest are not counted), clients %d (%d disabled)",
			sessions, pats, counted, perUser, len(clients), countDisabled(clients))
	}
	return fmt.Sprintf("users %d (%d disabled), %s, revoked access tokens %d", len(users), disabled, perUserCounts, len(revoked)), nil
}

// countDisabled returns how many of clients are disabled.
func countDisabled(clients []*account.Client) int {
	n := 0
	for _, c := range clients {
		if c.Disabled {
			n++
		}
	}
	return n
}
