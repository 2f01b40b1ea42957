package chaos

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
)

// diskSize is the size of TestChaosDiskFull's tmpfs.
const diskSize = 16 << 20

// TestChaosDiskFull: one node on a SQLite file in a small tmpfs of its
// own (testkit.SmallDisk: root only, skipped otherwise), under load, while
// a file fills the disk. Writes fail: sign-ins and token revocations
// answer 503, never 500, /readyz answers 503 while the file can't be
// written, sessions already signed in still work; once the filler is gone
// the node is ready again and nothing acknowledged is lost.
func TestChaosDiskFull(t *testing.T) {
	disk := testkit.SmallDisk(t, diskSize) // unmounted after the run's processes stop
	s := newScenario(t, "Disk full on SQLite",
		"One node on a SQLite file in a 16 MiB tmpfs of its own, under load (machine tokens too); a file fills the disk for 3 s, then is removed.")
	s.flags = []string{"--data", filepath.Join(disk, "tether.db")}
	const workers = 4
	s.addUsers(users(workers + 1)...)
	n := s.startNode("node")
	s.enableTokens(workers, n, n.url)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wait := s.ledger.load(ctx, urlsOf([]*node{n}), loadOpts{workers: workers, ops: 4000, pace: 2 * time.Millisecond, passwords: true})
	time.Sleep(time.Second)

	free := testkit.FillDisk(t, disk)
	s.fig.Faults++
	if got := s.status(n.url+"/readyz", nil); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the disk full: got %d, want 503", got)
	}
	x, status := s.ledger.signIn(t.Context(), n.url, users(workers + 1)[workers], password, web.NewDevice("disk full"))
	if x != nil || status != http.StatusServiceUnavailable {
		t.Errorf("a sign-in with the disk full: got %d, want 503", status)
	}
	time.Sleep(3 * time.Second)
	free()
	s.fig.Recovery = s.recover([]*node{n}, time.Now())
	cancel()
	wait()
	s.ledger.verify(t.Context(), n.url)
	s.ledger.verifyTokens(t.Context(), n.url)
	s.finish(n)
}
