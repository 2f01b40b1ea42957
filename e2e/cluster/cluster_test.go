package cluster

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// The users' passwords: every user starts with password; those who change
// it take newPassword.
const (
	password    = "correct horse battery staple"
	newPassword = "a different horse, a different staple"
)

// TestCluster runs three tether nodes behind nginx and shows, through
// nginx and on each node, what issue 4 asks of several nodes: see the
// subtests. They run in order on one cluster; each signs in users of its
// own.
func TestCluster(t *testing.T) {
	began := time.Now()
	c := startCluster(t, sessionsInRedis, people...)
	t.Run("0_SetupTokenNotInAccessLog", func(t *testing.T) { testSetupTokenNotLogged(t, c) })
	t.Run("1_SpreadOverNodes", func(t *testing.T) { testSpread(t, c) })
	t.Run("2_PasswordChangeRefusedEverywhere", func(t *testing.T) { testPasswordChange(t, c) })
	t.Run("3_DeviceSignedOutOnARefusedOnBC", func(t *testing.T) { testRevokeDevice(t, c) })
	t.Run("4_NodeStoppedAndStarted", func(t *testing.T) { testNodeRestart(t, c) })
	t.Run("5_RedisRestarted", func(t *testing.T) { testRedisRestart(t, c) })
	t.Run("6_ForeignHostRefused", func(t *testing.T) { testForeignHost(t, c) })
	t.Logf("whole test: %v", time.Since(began).Round(time.Millisecond))
}

// TestClusterSessionsInPostgres: the same nodes with their sessions in
// PostgreSQL (--sessions postgres://...), revocations travelling by
// LISTEN/NOTIFY; what doesn't concern Redis holds the same.
func TestClusterSessionsInPostgres(t *testing.T) {
	began := time.Now()
	c := startCluster(t, sessionsInPostgres, people...)
	t.Run("0_SetupTokenNotInAccessLog", func(t *testing.T) { testSetupTokenNotLogged(t, c) })
	t.Run("1_SpreadOverNodes", func(t *testing.T) { testSpread(t, c) })
	t.Run("2_PasswordChangeRefusedEverywhere", func(t *testing.T) { testPasswordChange(t, c) })
	t.Run("3_DeviceSignedOutOnARefusedOnBC", func(t *testing.T) { testRevokeDevice(t, c) })
	t.Run("4_NodeStoppedAndStarted", func(t *testing.T) { testNodeRestart(t, c) })
	t.Logf("whole test: %v", time.Since(began).Round(time.Millisecond))
}

// people are the users of TestCluster's subtests.
var people = []string{"alice", "bob", "carol", "dave", "erin", "frank"}

// startCluster starts a cluster with its sessions where sessions says and
// users, and logs where everything listens.
func startCluster(t *testing.T, sessions string, users ...string) *cluster {
	began := time.Now()
	c := newCluster(t, sessions, users...)
	names := []string{"sessions in " + sessions}
	if c.redis != nil {
		names = append(names, "redis "+c.redis.addr)
	}
	for _, n := range c.nodes {
		names = append(names, n.name+" "+n.addr)
	}
	t.Logf("up in %v: %s, nginx %s", time.Since(began).Round(time.Millisecond),
		strings.Join(names, ", "), strings.TrimPrefix(c.lb, "http://"))
	return c
}

// testSetupTokenNotLogged: the setup link's token, sent through nginx,
// is not in nginx's access log: the shipped configuration logs paths
// without their query strings.
func testSetupTokenNotLogged(t *testing.T, c *cluster) {
	const secret = "SECRETVALUE"
	// The cluster has users: every node answers any setup link 404.
	c.Must(t, http.StatusNotFound, "GET", c.lb+"/setup?token="+secret, nil, nil)
	// nginx runs as one process (master_process off) and logs a request
	// as it finishes it, before it reads the next: once this answer is in,
	// the line of the one above is written.
	c.Must(t, http.StatusOK, "GET", c.lb+"/healthz", nil, nil)
	b, err := os.ReadFile(filepath.Join(c.run.Dir, "nginx", "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	if !strings.Contains(log, "GET /setup") {
		t.Fatalf("nginx's access log has no line for GET /setup:\n%s", log)
	}
	if strings.Contains(log, secret) {
		t.Errorf("nginx's access log holds the setup token:\n%s", log)
	}
}

// testSpread: sign in once; the 30 following requests are spread over all
// three nodes, and all are signed in.
func testSpread(t *testing.T, c *cluster) {
	d := c.Login(t, c.lb, "alice", password, "alice laptop")
	count := map[string]int{}
	for range 30 {
		r := c.Must(t, http.StatusOK, "GET", c.lb+"/api/v1/me", d, nil)
		count[r.Node]++
	}
	t.Logf("30 GET /api/v1/me through nginx after one sign-in: all 200; %s", perNode(count))
	for _, n := range c.nodes {
		if count[n.name] == 0 {
			t.Errorf("%s answered none of the 30 requests: %s", n.name, perNode(count))
		}
	}
}

// testPasswordChange: a password change through node A refuses the user's
// other session on every node, at once (see checkRefusals); the delay from
// the acknowledged change to the refusal is printed.
func testPasswordChange(t *testing.T, c *cluster) {
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	laptop := c.Login(t, c.lb, "bob", password, "bob laptop")
	phone := c.Login(t, c.lb, "bob", password, "bob phone")
	// Every node has the phone's session in its near-cache.
	c.expectEverywhere(t, http.StatusOK, phone)
	c.expectEverywhere(t, http.StatusOK, phone)
	oldLaptop := laptop.Copy("bob laptop, before the change")

	c.Must(t, http.StatusOK, "POST", a.url+"/api/v1/password", laptop,
		map[string]string{"current": password, "new": newPassword})
	acked := time.Now()
	checkRefusals(t, "password changed on node-a: bob's phone", c.firstRefusals(t.Context(), acked, phone, b, cc))

	c.expectEverywhere(t, http.StatusUnauthorized, phone)
	c.expectEverywhere(t, http.StatusUnauthorized, oldLaptop)
	c.expectEverywhere(t, http.StatusOK, laptop) // its fresh session
}

// testRevokeDevice: one device signed out from the list on node A is
// refused at once by B and C.
func testRevokeDevice(t *testing.T, c *cluster) {
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	laptop := c.Login(t, c.lb, "carol", password, "carol laptop")
	phone := c.Login(t, c.lb, "carol", password, "carol phone")
	id := c.SessionID(t, c.lb, phone)
	c.expectEverywhere(t, http.StatusOK, phone)
	c.expectEverywhere(t, http.StatusOK, phone)

	c.Must(t, http.StatusNoContent, "DELETE", a.url+"/api/v1/sessions/"+id, laptop, nil)
	acked := time.Now()
	checkRefusals(t, "phone signed out on node-a", c.firstRefusals(t.Context(), acked, phone, b, cc))

	c.expectEverywhere(t, http.StatusUnauthorized, phone)
	c.expectEverywhere(t, http.StatusOK, laptop)
}

// testNodeRestart: with one node stopped (SIGTERM), requests through nginx
// keep working through the other two; started again, the node serves at
// once, and nginx sends it requests again.
func testNodeRestart(t *testing.T, c *cluster) {
	b := c.nodes[1]
	d := c.Login(t, c.lb, "dave", password, "dave laptop")
	p := c.startProbe(1, 2*time.Millisecond, d)
	t.Cleanup(func() { p.stop() })

	began := time.Now()
	testkit.WaitFor(t, "10 answers through nginx", func() bool { return p.count(began) >= 10 }, testkit.Within(10*time.Second))
	sigterm := time.Now()
	if err := b.proc.Stop(); err != nil {
		t.Errorf("node-b, stopped with SIGTERM: %v", err)
	}
	exited := time.Now()
	testkit.WaitFor(t, "30 answers through nginx with node-b down", func() bool { return p.count(exited) >= 30 }, testkit.Within(10*time.Second))

	restarted := time.Now()
	if err := c.startNode(b, "/healthz"); err != nil {
		t.Fatal(err)
	}
	healthy := time.Now()
	first := c.Must(t, http.StatusOK, "GET", b.url+"/api/v1/me", d, nil)
	t.Logf("node-b started again: /healthz answered 200 %v after the start; the first request to it, right after, answered 200 in %v",
		healthy.Sub(restarted).Round(time.Millisecond), ms(first.At.Sub(first.Sent)))

	var rejoined time.Time
	testkit.WaitFor(t, "nginx sends requests to node-b again", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, a := range p.answers {
			if a.Sent.After(healthy) && a.Node == b.name {
				rejoined = a.Sent
				return true
			}
		}
		return false
	}, testkit.Within(20*time.Second))
	testkit.WaitFor(t, "30 more answers through nginx", func() bool { return p.count(rejoined) >= 30 }, testkit.Within(10*time.Second))
	answers := p.stop()

	phases := []struct {
		name     string
		from, to time.Time
	}{
		{"before", began, sigterm},
		{fmt.Sprintf("node-b stopping (SIGTERM to exit, %v)", exited.Sub(sigterm).Round(time.Millisecond)), sigterm, exited},
		{"node-b down", exited, restarted},
		{"node-b starting", restarted, healthy},
		{fmt.Sprintf("node-b up, until nginx tries it again (%v after /healthz)", rejoined.Sub(healthy).Round(time.Millisecond)), healthy, rejoined},
		{"node-b back in nginx's rotation", rejoined, time.Now()},
	}
	for _, ph := range phases {
		count, bad := map[string]int{}, []string{}
		for _, a := range answers {
			if a.Sent.Before(ph.from) || !a.Sent.Before(ph.to) {
				continue
			}
			count[a.Node]++
			if a.err != nil || a.Status != http.StatusOK {
				bad = append(bad, answerString(a))
			}
		}
		n := 0
		for _, v := range count {
			n += v
		}
		t.Logf("through nginx, %s: %d requests, %d not 200; %s", ph.name, n, len(bad), perNode(count))
		if len(bad) > 0 {
			t.Errorf("%s: requests through nginx failed: %s", ph.name, strings.Join(bad[:min(len(bad), 10)], "; "))
		}
		if ph.from.Equal(exited) && count[b.name] > 0 {
			t.Errorf("node-b answered %d requests while it was down", count[b.name])
		}
	}
}

// testRedisRestart: Redis restarted with its data, signed-in users stay
// signed in; restarted without it, they are signed out. Never a 500, never
// a revoked session accepted.
func testRedisRestart(t *testing.T, c *cluster) {
	a := c.nodes[0]
	// Live: erin's laptop and frank's laptop (its session after the
	// password change). Revoked: erin's phone (signed out from the list),
	// frank's phone and frank's laptop's session before the change (ended
	// by the user's generation).
	erin := c.Login(t, c.lb, "erin", password, "erin laptop")
	erinPhone := c.Login(t, c.lb, "erin", password, "erin phone")
	c.Must(t, http.StatusNoContent, "DELETE", a.url+"/api/v1/sessions/"+c.SessionID(t, c.lb, erinPhone), erin, nil)
	frank := c.Login(t, c.lb, "frank", password, "frank laptop")
	frankPhone := c.Login(t, c.lb, "frank", password, "frank phone")
	frankOld := frank.Copy("frank laptop, before the change")
	c.Must(t, http.StatusOK, "POST", c.lb+"/api/v1/password", frank, map[string]string{"current": password, "new": newPassword})

	live := []*web.Device{erin, frank}
	revoked := []*web.Device{erinPhone, frankPhone, frankOld}
	all := append(slices.Clone(live), revoked...)
	isLive := func(i int) bool { return i < len(live) }
	expect := func(t *testing.T, liveStatus int) {
		t.Helper()
		for _, d := range live {
			c.expectEverywhere(t, liveStatus, d)
		}
		for _, d := range revoked {
			c.expectEverywhere(t, http.StatusUnauthorized, d)
		}
	}
	expect(t, http.StatusOK)

	// restart restarts Redis under a probe through nginx. While Redis is
	// down it waits until every node has answered erin's laptop 503 and
	// the probe has had some answers; once Redis is back, until every node
	// answers erin's laptop with something else. It returns the probe's
	// answers, the time SHUTDOWN was sent, and the time the new Redis
	// answered PING.
	restart := func(t *testing.T, keepData bool, want int) (answers []answer, down, up time.Time) {
		t.Helper()
		before, err := proc.RedisDo(c.redis.addr, "DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		p := c.startProbe(4, 0, all...)
		t.Cleanup(func() { p.stop() })
		began := time.Now()
		testkit.WaitFor(t, "answers through nginx", func() bool { return p.count(began) >= 2*len(all) }, testkit.Within(10*time.Second))

		var exited time.Time
		down, exited, up = c.restartRedis(t, keepData, func() {
			for _, n := range c.nodes {
				var seen []int
				testkit.WaitFor(t, n.name+" answers erin's laptop 503 while Redis is down", func() bool {
					r, err := c.Send(t.Context(), "GET", n.url+"/api/v1/me", erin, nil)
					if err != nil {
						t.Fatalf("%s: %v", n.name, err)
					}
					seen = append(seen, r.Status)
					if r.Status != http.StatusOK && r.Status != http.StatusServiceUnavailable {
						t.Errorf("%s, Redis down: erin's laptop got %v, want 503 (or 200 before the node notices)", n.name, r)
					}
					return r.Status == http.StatusServiceUnavailable
				}, testkit.Within(10*time.Second))
				t.Logf("Redis down: %s answered erin's laptop %s", n.name, statusRun(seen))
			}
			from := time.Now()
			testkit.WaitFor(t, "answers through nginx while Redis is down", func() bool { return p.count(from) >= 2*len(all) }, testkit.Within(10*time.Second))
		})
		after, err := proc.RedisDo(c.redis.addr, "DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Redis shut down (SHUTDOWN, %v until it exited), down for %v, answering PING again %v after SHUTDOWN; keys before %s, after %s",
			exited.Sub(down).Round(time.Millisecond), up.Sub(exited).Round(time.Millisecond), up.Sub(down).Round(time.Millisecond), before, after)

		for _, n := range c.nodes {
			var r web.Reply
			var seen []int
			testkit.WaitFor(t, n.name+" answers erin's laptop without 503", func() bool {
				var err error
				if r, err = c.Send(t.Context(), "GET", n.url+"/api/v1/me", erin, nil); err != nil {
					t.Fatalf("%s: %v", n.name, err)
				}
				seen = append(seen, r.Status)
				return r.Status != http.StatusServiceUnavailable
			}, testkit.Within(20*time.Second))
			if r.Status != want {
				t.Errorf("%s, after Redis came back: erin's laptop got %v, want %d", n.name, r, want)
			}
			t.Logf("%s answered %d %v after Redis answered PING again (answers: %s)",
				n.name, r.Status, ms(r.At.Sub(up)), statusRun(seen))
		}
		// A little traffic after every node is back.
		back := time.Now()
		testkit.WaitFor(t, "answers through nginx", func() bool { return p.count(back) >= 2*len(all) }, testkit.Within(10*time.Second))
		return p.stop(), down, up
	}

	// judge checks the probe's answers: never a 500 or any status but 200,
	// 401 and 503; never a revoked session accepted; the live sessions
	// accepted in requests answered before SHUTDOWN was sent (down), and
	// answered liveAfterUp in requests sent after the new Redis answered
	// PING (up). Requests in between may have reached the old Redis or the
	// new one: either answer is right, and so is 503.
	judge := func(t *testing.T, answers []answer, down, up time.Time, liveAfterUp int) {
		t.Helper()
		count := map[string]map[int]int{"live": {}, "revoked": {}}
		var bad []string
		for _, a := range answers {
			kind := "revoked"
			if isLive(a.device) {
				kind = "live"
			}
			if a.err != nil {
				bad = append(bad, answerString(a))
				continue
			}
			count[kind][a.Status]++
			ok := a.Status == http.StatusServiceUnavailable
			switch {
			case kind == "revoked":
				ok = ok || a.Status == http.StatusUnauthorized
			case a.At.Before(down):
				ok = ok || a.Status == http.StatusOK
			case a.Sent.After(up):
				ok = ok || a.Status == liveAfterUp
			default:
				ok = ok || a.Status == http.StatusOK || a.Status == liveAfterUp
			}
			if !ok {
				bad = append(bad, fmt.Sprintf("%s session of %s: %s", kind, all[a.device].Name, answerString(a)))
			}
		}
		t.Logf("through nginx, %d requests: live sessions %s; revoked sessions %s",
			len(answers), statusCount(count["live"]), statusCount(count["revoked"]))
		if len(bad) > 0 {
			t.Errorf("%d wrong answers through nginx: %s", len(bad), strings.Join(bad[:min(len(bad), 10)], "; "))
		}
	}

	t.Run("DataKept", func(t *testing.T) {
		answers, down, up := restart(t, true, http.StatusOK)
		judge(t, answers, down, up, http.StatusOK)
		expect(t, http.StatusOK)
	})
	t.Run("DataGone", func(t *testing.T) {
		answers, down, up := restart(t, false, http.StatusUnauthorized)
		judge(t, answers, down, up, http.StatusUnauthorized)
		expect(t, http.StatusUnauthorized)
		// And signing in works again.
		again := c.Login(t, c.lb, "erin", password, "erin laptop, again")
		c.expectEverywhere(t, http.StatusOK, again)
	})
}

// testForeignHost (MISC-07): nginx passes the client's Host on, as
// examples/nginx says, so a node refuses a page on a rebound name with 421
// through nginx too; health checks answer any Host.
func testForeignHost(t *testing.T, c *cluster) {
	_, port, _ := strings.Cut(strings.TrimPrefix(c.lb, "http://"), ":")
	for _, tt := range []struct {
		host, path string
		want       int
	}{
		{"evil.example:" + port, "/login", http.StatusMisdirectedRequest},
		{"127.0.0.1.evil.example:" + port, "/api/v1/me", http.StatusMisdirectedRequest},
		{"evil.example:" + port, "/healthz", http.StatusOK},
		{"127.0.0.1:" + port, "/login", http.StatusOK},
	} {
		req, err := http.NewRequestWithContext(t.Context(), "GET", c.lb+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.want || res.Header.Get("X-Tether-Node") == "" {
			t.Errorf("GET %s with Host %s through nginx: %s from node %q, want %d from a node",
				tt.path, tt.host, res.Status, res.Header.Get("X-Tether-Node"), tt.want)
		}
	}
}

// perNode formats answers counted by node.
func perNode(count map[string]int) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(count)) {
		label := name
		if label == "" {
			label = "(no X-Tether-Node)"
		}
		parts = append(parts, fmt.Sprintf("%s %d", label, count[name]))
	}
	return strings.Join(parts, ", ")
}

// statusCount formats answers counted by status, as "200 ×12, 503 ×3".
func statusCount(count map[int]int) string {
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(count)) {
		parts = append(parts, fmt.Sprintf("%d ×%d", s, count[s]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// statusRun formats a sequence of statuses with repeats collapsed, as
// "503 ×4, 200".
func statusRun(seen []int) string {
	var parts []string
	for i := 0; i < len(seen); {
		j := i
		for j < len(seen) && seen[j] == seen[i] {
			j++
		}
		if j-i > 1 {
			parts = append(parts, fmt.Sprintf("%d ×%d", seen[i], j-i))
		} else {
			parts = append(parts, fmt.Sprint(seen[i]))
		}
		i = j
	}
	return strings.Join(parts, ", ")
}

func answerString(a answer) string {
	if a.err != nil {
		return "error: " + a.err.Error()
	}
	return fmt.Sprintf("%d from %q", a.Status, a.Node)
}
