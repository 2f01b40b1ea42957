package server

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
			if res := h.client().guess("alice", "wrong guess", ""); res.status == http.StatusTooManyRequests {
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
			if statuses[http.StatusForbidden] != sequential || statuses[http.StatusTooManyRequests] != burst-sequential {
				t.Errorf("answers to %d parallel guesses: got %v, want %d checked (403) and the rest 429", burst, statuses, sequential)
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
	if res := stranger.guess("alice", alicePW, "198.51.100.200"); res.status != http.StatusTooManyRequests {
		t.Fatalf("a stranger with the right password: status %d, want 429", res.status)
	}
	if res := h.client().guess("alice", alicePW, "203.0.113.1"); res.status != http.StatusTooManyRequests {
		t.Fatalf("the owner from a new browser: status %d, want 429 (an untrusted client)", res.status)
	}
	if res := owner.guess("alice", alicePW, "198.51.100.200"); res.status != http.StatusOK {
		t.Fatalf("the owner's browser: %d %s, want 200", res.status, res.body)
	}

	forged := h.client()
	raw := make([]byte, deviceNonce+deviceMACSize)
	rand.Read(raw)
	forged.setCookie(deviceCookie, base64.RawURLEncoding.EncodeToString(raw))
	if res := forged.guess("alice", alicePW, "203.0.113.2"); res.status != http.StatusTooManyRequests {
		t.Errorf("a forged device cookie: status %d, want 429", res.status)
	}
	borrowed := h.client()
	borrowed.setCookie(deviceCookie, bobs.cookie(deviceCookie))
	if res := borrowed.guess("alice", alicePW, "203.0.113.3"); res.status != http.StatusTooManyRequests {
		t.Errorf("bob's device cookie used for alice: status %d, want 429", res.status)
	}

	// The owner's device guesses wrong itself: it gets its allowance, then
	// waits; the account and other devices are not affected by it.
	for range 6 {
		owner.guess("alice", "the owner's typo", "")
	}
	if res := owner.guess("alice", alicePW, ""); res.status != http.StatusTooManyRequests {
		t.Errorf("the owner's device after 6 wrong guesses: status %d, want 429", res.status)
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
	if res := h.client().guess("alice", "a guess", from); res.status != http.StatusTooManyRequests {
		t.Fatalf("a guess past the address's allowance: status %d, want 429", res.status)
	}
	h.clock.Advance(time.Second)
	if res := h.client().guess("mallory", alicePW, from); res.status != http.StatusOK {
		t.Fatalf("mallory's own sign-in after the wait: status %d, want 200", res.status)
	}
	if res := h.client().guess("alice", "another guess", from); res.status != http.StatusTooManyRequests {
		t.Fatalf("a guess right after mallory's own sign-in: status %d, want 429 (the address was reset)", res.status)
	}
}

// PW-06: a request that no password check could accept (bad JSON, a
// missing field, an impossible name, a password too long or not UTF-8) is
// refused with 400 before the throttle: it counts no attempt, and it is
// never answered 429, even where the throttle already makes guesses wait.
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

	// untilThrottled sends a wrong guess until the throttle answers.
	untilThrottled := func(what string, guess func() *response) {
		t.Helper()
		for range 2 * free { // a throttle key allows free failures, the next one waits
			if guess().status == http.StatusTooManyRequests {
				return
			}
		}
		t.Fatalf("%s: no 429 after %d wrong guesses", what, 2*free)
	}

	c := h.client()
	refuseAll(t, c)
	c.login("alice", alicePW) // none of it counted
	stranger := h.client()
	untilThrottled("sign-in", func() *response { return stranger.guess("alice", "wrong", "") })
	refuseAll(t, stranger) // validated before the throttle answers

	// The password change: counted per session, validated first too.
	token := c.login("alice", alicePW)
	untilThrottled("password change", func() *response {
		return c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: "wrong", New: newPW}, token)
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
