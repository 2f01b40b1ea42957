package machines

import (
	"net/http"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

// cutStaleness is the resource server's -max-staleness in TestStreamCut:
// short, so that the test doesn't wait long for it.
const cutStaleness = 2 * time.Second

// TestStreamCut: with tether gone (killed, as a crash would; a stop is
// TestStopWithFollower's), the resource server, cut off from the
// revocation stream, goes on accepting a valid token only until the stream
// has been silent for its -max-staleness, then refuses every token with
// 503 (fail closed: it can't know what was revoked meanwhile), and reports
// not ready. When tether is back on the same address, it
// reconnects by itself and accepts the token again, and a revocation
// reaches it as before.
func TestStreamCut(t *testing.T) {
	h := newHarness(t, sessionsInSQLite)
	rs := h.startResourceServer(t, cutStaleness)
	secret := h.addClient(t, "reports", whoamiScope)
	cc, ctx := h.credentials(t, "reports", secret, whoamiScope)
	tok := token(t, ctx, cc)
	rs.mustWhoami(t, tok, http.StatusOK)

	if err := h.tether.Kill(); err != nil {
		t.Fatal(err)
	}
	closed := testkit.WaitFor(t, "the resource server to fail closed without its stream", func() bool {
		switch w := rs.whoami(t, tok); w.Status {
		case http.StatusOK:
			return false
		case http.StatusServiceUnavailable:
			return true
		default:
			t.Fatalf("GET /whoami with a valid token, tether stopped: got %v, want 200, then 503", w)
			return false
		}
	})
	if rs.ready(t) {
		t.Error("GET /readyz: 200 while the stream is lost")
	}
	record(t, "tether killed: the resource server refused a valid token (503) %v after tether had exited (its -max-staleness: %v, counted from the last heartbeat)",
		ms(closed), cutStaleness)

	h.startTether(t)
	recovered := testkit.WaitFor(t, "the resource server to accept the token again", func() bool {
		return rs.whoami(t, tok).Status == http.StatusOK
	})
	record(t, "tether started again: the resource server accepted the token %v after tether was ready", ms(recovered))

	revoked := h.revoke(t, "reports", secret, tok)
	refused, _ := rs.refused(t, tok)
	record(t, "after the reconnection, a revocation refused %v after its answer", ms(refused.Sub(revoked)))
	if err := rs.proc.Stop(); err != nil { // before tether: see TestStopWithFollower
		t.Error(err)
	}
}

// TestStopWithFollower: `tether serve` stopped (SIGTERM) while a resource
// server follows its revocation stream ends the stream and exits cleanly,
// as it does without one; the follower then fails closed after its bound,
// as in TestStreamCut.
func TestStopWithFollower(t *testing.T) {
	h := newHarness(t, sessionsInSQLite)
	rs := h.startResourceServer(t, cutStaleness)
	if err := h.tether.Stop(); err != nil {
		t.Errorf("tether stopped with a follower of its revocation stream: %v", err)
	}
	testkit.WaitFor(t, "the resource server to report its stream lost", func() bool {
		return !rs.ready(t)
	})
}
