package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/password"
)

// guess signs in as user with pw through the API, from the address from
// (X-Forwarded-For through the trusted proxy 127.0.0.1; "" for the peer).
func (c *client) guess(user, pw, from string) *response {
	c.t.Helper()
	var hdr []string
	if from != "" {
		hdr = []string{"X-Forwarded-For", from}
	}
	return c.json(http.MethodPost, "/api/v1/login", loginRequest{Username: user, Password: pw}, "", hdr...)
}

var localProxy = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// pauses counts the waits of throttled sign-ins (Config.Pause), and
// those of no time, instead of waiting them.
type pauses struct{ n, none atomic.Int64 }

func (p *pauses) record(_ context.Context, d time.Duration) {
	p.n.Add(1)
	if d <= 0 {
		p.none.Add(1)
	}
}

// signInReasons counts h's sign-in audit events by reason ("" for a
// success).
func (h *harness) signInReasons(t testing.TB) map[string]int {
	t.Helper()
	count := map[string]int{}
	for _, rec := range h.logs.Records(t, "audit") {
		if rec["event"] == "sign-in" {
			reason, _ := rec["reason"].(string)
			count[reason]++
		}
	}
	return count
}

// throttled reports whether res, the answer to h's latest sign-in, was
// throttled, as only the audit log tells: to the client it is a wrong
// password's answer (PW-05), which it fails the test unless it is.
func (h *harness) throttled(t testing.TB, res *response) bool {
	t.Helper()
	if res.status != http.StatusForbidden || res.errorCode(t) != "invalid_credentials" || res.header.Get("Retry-After") != "" {
		t.Fatalf("sign-in: %d Retry-After %q %s, want a wrong password's 403 invalid_credentials", res.status, res.header.Get("Retry-After"), res.body)
	}
	var last map[string]any
	for _, rec := range h.logs.Records(t, "audit") {
		if rec["event"] == "sign-in" {
			last = rec
		}
	}
	return last != nil && last["reason"] == "throttled"
}

// PW-06: an attempt counts before its password is checked. A burst of 64
// parallel wrong guesses, through one node or split over two on one
// database, gets exactly as many passwords checked as guessing one at a
// time does.
func TestPW06_ParallelBurstGetsNoExtraChecks(t *testing.T) {
	const free, burst = 5, 64
	// The checked guesses queue for the hasher's slots; on a loaded machine
	// (-race, other packages' tests) the default second of waiting can run
	// out and answer 503, which is not what this test is about.
	patient := password.HasherConfig{Wait: time.Minute}
	sequential := func() int {
		h := newHarness(t, harnessOpts{free: free, hasher: patient})
		h.addUser("alice", alicePW, false)
		for n := 0; ; n++ {
			if h.throttled(t, h.client().guess("alice", "wrong guess", "")) {
				return n
			}
		}
	}()
	if sequential != free+1 {
		t.Fatalf("sequential guesses checked before the first wait: got %d, want %d", sequential, free+1)
	}
	for _, nodes := range []int{1, 2} {
		t.Run(fmt.Sprint(nodes, " node(s)"), func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "tether.db")
			var hs []*harness
			clock := newHarnessClock()
			for range nodes {
				hs = append(hs, newHarness(t, harnessOpts{free: free, data: data, hasher: patient, clock: clock}))
			}
			hs[0].addUser("alice", alicePW, false)
			start := make(chan struct{})
			var mu sync.Mutex
			statuses := map[int]int{}
			var wg sync.WaitGroup
			for i := range burst {
				c := hs[i%nodes].client()
				wg.Go(func() {
					<-start
					res := c.guess("alice", "wrong guess", "")
					mu.Lock()
					statuses[res.status]++
					mu.Unlock()
				})
			}
			close(start)
			wg.Wait()
			reasons := map[string]int{}
			for _, h := range hs {
				for r, n := range h.signInReasons(t) {
					reasons[r] += n
				}
			}
			if statuses[http.StatusForbidden] != burst || reasons["wrong password"] != sequential || reasons["throttled"] != burst-sequential {
				t.Errorf("answers to %d parallel guesses: got %v, audit reasons %v; want all 403, %d checked (wrong password) and the rest throttled",
					burst, statuses, reasons, sequential)
			}
		})
	}
}

// PW-06: a stranger who keeps an account at its longest delay keeps out
// only clients that never signed in to it. The owner's browser, with its
// device cookie, signs in; a forged device cookie, or another account's,
// is no way around the delay; a device's own wrong guesses delay that
// device alone.
func TestPW06_DeviceCookieKeepsOwnerIn(t *testing.T) {
	h := newHarness(t, harnessOpts{free: 5, proxies: localProxy})
	h.addUser("alice", alicePW, false)
	h.addUser("bob", alicePW, false)
	owner := h.client()
	owner.login("alice", alicePW)
	if owner.cookie(deviceCookie) == "" {
		t.Fatal("no device cookie after a sign-in")
	}
	bobs := h.client()
	bobs.login("bob", alicePW)

	stranger := h.client()
	for i := range 6 { // from many addresses: the account's key alone stops them
		stranger.guess("alice", "wrong guess", fmt.Sprintf("198.51.100.%d", i))
	}
	if !h.throttled(t, stranger.guess("alice", alicePW, "198.51.100.200")) {
		t.Fatal("a stranger with the right password: not throttled")
	}
	if !h.throttled(t, h.client().guess("alice", alicePW, "203.0.113.1")) {
		t.Fatal("the owner from a new browser: not throttled (an untrusted client)")
	}
	if res := owner.guess("alice", alicePW, "198.51.100.200"); res.status != http.StatusOK {
		t.Fatalf("the owner's browser: %d %s, want 200", res.status, res.body)
	}

	forged := h.client()
	raw := make([]byte, deviceNonce+deviceMACSize)
	rand.Read(raw)
	forged.setCookie(deviceCookie, base64.RawURLEncoding.EncodeToString(raw))
	if !h.throttled(t, forged.guess("alice", alicePW, "203.0.113.2")) {
		t.Error("a forged device cookie: not throttled")
	}
	borrowed := h.client()
	borrowed.setCookie(deviceCookie, bobs.cookie(deviceCookie))
	if !h.throttled(t, borrowed.guess("alice", alicePW, "203.0.113.3")) {
		t.Error("bob's device cookie used for alice: not throttled")
	}

	// The owner's device guesses wrong itself: it gets its allowance, then
	// waits; the account and other devices are not affected by it.
	for range 6 {
		owner.guess("alice", "the owner's typo", "")
	}
	if !h.throttled(t, owner.guess("alice", alicePW, "")) {
		t.Error("the owner's device after 6 wrong guesses: not throttled")
	}
	if res := bobs.guess("bob", alicePW, ""); res.status != http.StatusOK {
		t.Errorf("another account's device: status %d, want 200", res.status)
	}
}

// PW-06: strangers' guesses at the sign-in form never stop the owner's
// password change, which is throttled by its own session.
func TestPW06_PasswordChangeNotBlockedByStrangers(t *testing.T) {
	h := newHarness(t, harnessOpts{free: 2, proxies: localProxy})
	h.addUser("alice", alicePW, false)
	owner := h.client()
	token := owner.login("alice", alicePW)
	for i := range 10 {
		h.client().guess("alice", "wrong guess", fmt.Sprintf("198.51.100.%d", i))
	}
	res := owner.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: newPW}, token)
	if res.status != http.StatusOK {
		t.Fatalf("the owner's password change while strangers guess: %d %s, want 200", res.status, res.body)
	}
}

// PW-06: everyone behind one NAT shares an address. Their ordinary typos,
// at a steady rate, delay no one; once they have signed in, even a burst of
// typos from that address leaves their browsers alone.
func TestPW06_NATTyposDontLockEveryoneOut(t *testing.T) {
	testkit.SkipShort(t, "signs 30 people in, with typos, one argon2 hash each")
	h := newHarness(t, harnessOpts{free: 5, proxies: localProxy})
	const people = 30
	for i := range people {
		h.addUser(fmt.Sprint("user", i), alicePW, false)
	}
	const office = "192.0.2.10"
	browsers := make([]*client, people)
	for i := range people { // one typo each, then the right password, at the address's steady rate
		browsers[i] = h.client()
		user := fmt.Sprint("user", i)
		if res := browsers[i].guess(user, "a typo of mine", office); res.status != http.StatusForbidden {
			t.Fatalf("%s's typo: status %d, want 403", user, res.status)
		}
		if res := browsers[i].guess(user, alicePW, office); res.status != http.StatusOK {
			t.Fatalf("%s after a typo: status %d, want 200 (%d people behind the address so far)", user, res.status, i+1)
		}
		h.clock.Advance(DefaultAddressLeak)
	}
	for i := range 10 { // a burst of typos from the office
		h.client().guess(fmt.Sprint("user", i), "a typo of mine", office)
	}
	for i, b := range browsers {
		if res := b.guess(fmt.Sprint("user", i), alicePW, office); res.status != http.StatusOK {
			t.Fatalf("user%d's browser after the office's burst of typos: status %d, want 200", i, res.status)
		}
	}
}

// PW-06: an attacker's own valid account doesn't clear the count of the
// address they guess from: a success gives back its own attempt, no more.
func TestPW06_OwnAccountDoesNotResetAddress(t *testing.T) {
	h := newHarness(t, harnessOpts{free: 3, proxies: localProxy})
	h.addUser("mallory", alicePW, false)
	h.addUser("alice", alicePW, false)
	const from = "203.0.113.66"
	for i := range 4 { // each at another account, so only the address counts
		h.client().guess(fmt.Sprint("victim", i), "a guess", from)
	}
	if !h.throttled(t, h.client().guess("alice", "a guess", from)) {
		t.Fatal("a guess past the address's allowance: not throttled")
	}
	h.clock.Advance(time.Second)
	if res := h.client().guess("mallory", alicePW, from); res.status != http.StatusOK {
		t.Fatalf("mallory's own sign-in after the wait: status %d, want 200", res.status)
	}
	if !h.throttled(t, h.client().guess("alice", "another guess", from)) {
		t.Fatal("a guess right after mallory's own sign-in: not throttled (the address was reset)")
	}
}

// PW-06: a request that no password check could accept (bad JSON, a
// missing field, an impossible name, a password too long or not UTF-8) is
// refused with 400 before the throttle: it counts no attempt, and it is
// never answered as throttled, even where the throttle already makes
// guesses wait.
func TestPW06_MalformedRequestsAreNotCounted(t *testing.T) {
	const free = 2
	h := newHarness(t, harnessOpts{free: free})
	h.addUser("alice", alicePW, false)
	long := strings.Repeat("x", password.MaxBytes+1)
	signIns := []struct {
		name, body, code string
	}{
		{"bad JSON", `{"username":"alice","password":`, "bad_request"},
		{"no password", `{"username":"alice"}`, "missing_field"},
		{"empty password", `{"username":"alice","password":""}`, "missing_field"},
		{"no username", `{"password":"` + alicePW + `"}`, "missing_field"},
		{"blank username", `{"username":"  ","password":"` + alicePW + `"}`, "missing_field"},
		{"impossible name", `{"username":"alice smith","password":"` + alicePW + `"}`, "invalid_name"},
		{"name too long", `{"username":"` + strings.Repeat("a", 65) + `","password":"` + alicePW + `"}`, "invalid_name"},
		{"password too long", `{"username":"alice","password":"` + long + `"}`, "password_too_long"},
		{"password not UTF-8", `{"username":"alice","password":"pw\udc00"}`, "invalid_utf8"},
	}
	forms := []struct {
		name, user, pw, code string
	}{
		{"no password", "alice", "", "missing_field"},
		{"name not UTF-8", "al\xffice", alicePW, "invalid_utf8"},
		{"password not UTF-8", "alice", "pw\xff", "invalid_utf8"},
		{"impossible name", "alice smith", alicePW, "invalid_name"},
	}
	refuseAll := func(t *testing.T, c *client) {
		t.Helper()
		for range free + 2 {
			for _, tc := range signIns {
				res := c.do(http.MethodPost, "/api/v1/login", strings.NewReader(tc.body), "Content-Type", "application/json")
				if res.status != http.StatusBadRequest || res.errorCode(t) != tc.code {
					t.Fatalf("sign-in with %s: %d %s, want 400 %s", tc.name, res.status, res.body, tc.code)
				}
			}
			for _, tc := range forms {
				page := c.do(http.MethodGet, "/login", nil)
				res := c.form("/login", url.Values{"csrf_token": {formToken(t, page.body, "/login")}, "username": {tc.user}, "password": {tc.pw}})
				if res.status != http.StatusBadRequest {
					t.Fatalf("sign-in form with %s: status %d, want 400 (%s)", tc.name, res.status, tc.code)
				}
			}
		}
	}

	// untilThrottled sends a wrong guess until the throttle answers, as
	// throttled says.
	untilThrottled := func(what string, guess func() bool) {
		t.Helper()
		for range 2 * free { // a throttle key allows free failures, the next one waits
			if guess() {
				return
			}
		}
		t.Fatalf("%s: not throttled after %d wrong guesses", what, 2*free)
	}

	c := h.client()
	refuseAll(t, c)
	c.login("alice", alicePW) // none of it counted
	stranger := h.client()
	untilThrottled("sign-in", func() bool { return h.throttled(t, stranger.guess("alice", "wrong", "")) })
	refuseAll(t, stranger) // validated before the throttle answers

	// The password change: counted per session, validated first too.
	token := c.login("alice", alicePW)
	untilThrottled("password change", func() bool {
		res := c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: "wrong", New: newPW}, token)
		return res.status == http.StatusTooManyRequests
	})
	for _, tc := range []struct {
		name, body, code string
	}{
		{"bad JSON", `{"current":`, "bad_request"},
		{"no current password", `{"new":"` + newPW + `"}`, "missing_field"},
		{"no new password", `{"current":"` + alicePW + `"}`, "missing_field"},
		{"current too long", `{"current":"` + long + `","new":"` + newPW + `"}`, "password_too_long"},
		{"new too long", `{"current":"` + alicePW + `","new":"` + long + `"}`, "password_too_long"},
	} {
		res := c.do(http.MethodPost, "/api/v1/password", strings.NewReader(tc.body), "Content-Type", "application/json", "X-CSRF-Token", token)
		if res.status != http.StatusBadRequest || res.errorCode(t) != tc.code {
			t.Errorf("password change with %s, the session throttled: %d %s, want 400 %s", tc.name, res.status, res.body, tc.code)
		}
	}
}

// readCounter counts the account reads by name: a sign-in's password is
// checked only after one.
type readCounter struct {
	account.Store
	reads atomic.Int64
}

func (a *readCounter) ByName(ctx context.Context, name string) (*account.User, error) {
	a.reads.Add(1)
	return a.Store.ByName(ctx, name)
}

// PW-05, PW-06: a throttled sign-in, by its account's key or its
// address's, with the right password or a wrong one, is answered exactly
// as a wrong password and an unknown user are (status, headers, body),
// without its account being read or its password checked; and it waits
// as long as this node's checked failures took (Config.Pause) instead.
func TestPW05_ThrottledAnswersLikeAWrongPassword(t *testing.T) {
	const free = 2
	reads := &readCounter{}
	h := newHarness(t, harnessOpts{free: free, proxies: localProxy, wrap: func(s account.Store) account.Store {
		reads.Store = s
		return reads
	}})
	h.addUser("alice", alicePW, false)
	addr := 0
	fresh := func() string { addr++; return fmt.Sprintf("198.51.100.%d", addr) } // an address with nothing counted

	checked := []struct{ name, user, pw string }{
		{"wrong password", "alice", "wrong guess"},
		{"unknown user", "nobody", alicePW},
	}
	var want *response
	for _, tc := range checked {
		res := h.client().guess(tc.user, tc.pw, fresh())
		if h.throttled(t, res) {
			t.Fatalf("%s: throttled before any allowance was used", tc.name)
		}
		if want == nil {
			want = res
		}
	}
	for range free { // alice's key: free failures counted, the next waits
		h.client().guess("alice", "wrong guess", fresh())
	}
	busy := "203.0.113.9"
	for i := range free + 1 { // an address's key: the same
		h.client().guess(fmt.Sprint("nobody", i), "wrong guess", busy)
	}
	if n := h.pauses.n.Load(); n != 0 {
		t.Fatalf("%d pauses before any sign-in was throttled", n)
	}
	throttled := []struct{ name, user, pw, from string }{
		{"the account's key, the right password", "alice", alicePW, fresh()},
		{"the account's key, a wrong password", "alice", "wrong guess", fresh()},
		{"the address's key, an unknown user", "nobody-else", "wrong guess", busy},
		{"the address's key, another user's right password", "alice", alicePW, busy},
	}
	for _, tc := range throttled {
		c := h.client()
		before, paused := reads.reads.Load(), h.pauses.n.Load()
		res := c.guess(tc.user, tc.pw, tc.from)
		if !h.throttled(t, res) {
			t.Fatalf("%s: not throttled", tc.name)
		}
		// It waited as long as the checked failures took: more than nothing.
		if n, none := h.pauses.n.Load()-paused, h.pauses.none.Load(); n != 1 || none != 0 {
			t.Errorf("%s: paused %d times (so far %d of no time), want once, as long as a checked failure", tc.name, n, none)
		}
		if res.body != want.body || !sameHeaders(res.header, want.header) || c.cookie(sessionCookie) != "" {
			t.Errorf("%s: %d %v %q, want as a wrong password: %d %v %q, no session",
				tc.name, res.status, res.header, res.body, want.status, want.header, want.body)
		}
		if n := reads.reads.Load() - before; n != 0 {
			t.Errorf("%s: the account was read %d times: its password was checked", tc.name, n)
		}
		page := c.pageLogin(tc.user, tc.pw) // from the peer: throttled by alice's key, checked for nobody-else
		if page.status != http.StatusForbidden || !strings.Contains(page.body, html.EscapeString(errInvalidCredentials.message)) {
			t.Errorf("%s through the form: status %d, want 403 and the wrong password's message", tc.name, page.status)
		}
	}
}

// sameHeaders reports whether a and b, two answers' headers, are the same
// but for Date.
func sameHeaders(a, b http.Header) bool {
	a, b = a.Clone(), b.Clone()
	a.Del("Date")
	b.Del("Date")
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// PW-05: a node that has checked no password yet, whose first sign-in
// another node's failures throttle, times a dummy hash for it rather than
// answering at once, and pauses that long for the next one; a parallel
// burst of throttled sign-ins there hashes one dummy, not one each.
func TestPW05_ThrottledOnAFreshNodeTakesACheckTime(t *testing.T) {
	const free = 2
	data := filepath.Join(t.TempDir(), "tether.db")
	clock := newHarnessClock()
	a := newHarness(t, harnessOpts{free: free, data: data, clock: clock})
	a.addUser("alice", alicePW, false)
	for range free + 1 {
		a.client().guess("alice", "wrong guess", "")
	}
	b := newHarness(t, harnessOpts{free: free, data: data, clock: clock})
	const burst = 8
	var wg sync.WaitGroup
	for range burst {
		c := b.client()
		wg.Go(func() { c.guess("alice", "wrong guess", "") })
	}
	wg.Wait()
	if got := b.signInReasons(t); got["throttled"] != burst {
		t.Fatalf("node b's sign-ins: %v, want %d throttled", got, burst)
	}
	if n, none := b.pauses.n.Load(), b.pauses.none.Load(); n != burst-1 || none != 0 {
		t.Errorf("node b paused %d times, %d of them no time; want %d (one timed a dummy hash instead), none of no time", n, none, burst-1)
	}
}

// PW-05: the times a throttled sign-in waits. The first check is timed
// once, only when it ran to the end, never while another caller times
// it (a caller whose request ends meanwhile gives up); later checks move
// the average by an eighth of their difference.
func TestPW05_CheckTimes(t *testing.T) {
	c := newCheckTimes()
	failed := func() error { return errors.New("busy") }
	ran := func() error { return nil }
	if c.typical() != 0 || !c.timeFirst(t.Context(), failed) || c.typical() != 0 {
		t.Fatalf("a first check that failed: typical %v, want still 0", c.typical())
	}
	c.first <- struct{}{} // another caller times the first check
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if c.timeFirst(ctx, func() error { t.Error("ran while another caller timed the first check"); return nil }) {
		t.Error("timeFirst reported a check it gave up waiting for")
	}
	<-c.first
	if !c.timeFirst(t.Context(), ran) || c.typical() <= 0 {
		t.Fatalf("a first check that ran: typical %v, want > 0", c.typical())
	}
	if c.timeFirst(t.Context(), func() error { t.Error("a second first check ran"); return nil }) {
		t.Error("timeFirst ran once a check was timed")
	}
	c.avg = 80 * time.Millisecond
	c.observe(160 * time.Millisecond)
	if got, want := c.typical(), 90*time.Millisecond; got != want {
		t.Errorf("average of 80ms after a check of 160ms: got %v, want %v", got, want)
	}
}
