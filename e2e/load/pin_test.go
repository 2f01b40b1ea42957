package load

import (
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tetherauth/tether/internal/testkit/proc"
)

// A placement says on which CPUs the servers under load run, and on which
// wrk runs (taskset CPU lists; empty: anywhere).
//
// A benchmark that compares two servers' rates (BenchmarkServeForwardAuthVsJWT)
// asks how many requests each can serve: what its handler costs. With wrk
// on the same CPUs, every request also pays wrk's own cost, the same for
// both servers, and that squeezes the ratio towards 1 (on this 2-CPU
// machine, the yardstick's /noop was only 1.5× its /jwt). So it runs the
// servers on one half of the CPUs and wrk on the other, each side on its
// own, as a load generator runs on a machine of its own. A benchmark that
// compares two endpoints of one server needs no placement: wrk's cost
// weighs on both alike.
type placement struct {
	taskset      string // taskset's path
	server, load string
}

// pinned returns the placement that splits this process's CPUs in two,
// the servers on the upper half, or none (logged) when there are fewer
// than two CPUs or no taskset.
func pinned(b *testing.B) placement {
	b.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		b.Logf("not pinned: %v", err)
		return placement{}
	}
	var cpus []string
	for i := 0; len(cpus) < set.Count(); i++ {
		if set.IsSet(i) {
			cpus = append(cpus, strconv.Itoa(i))
		}
	}
	taskset, err := proc.LookPath("taskset", "/usr/bin/taskset")
	if len(cpus) < 2 || err != nil {
		b.Logf("not pinned: %d CPU(s), taskset: %v", len(cpus), err)
		return placement{}
	}
	half := len(cpus) / 2
	p := placement{taskset: taskset, load: strings.Join(cpus[:half], ","), server: strings.Join(cpus[half:], ",")}
	b.Logf("servers on CPU(s) %s, wrk on CPU(s) %s", p.server, p.load)
	return p
}

// command returns the program and arguments that run bin with args on
// cpus, or bin itself when cpus is empty. taskset runs the program in its
// own place, with the same process id.
func (p placement) command(cpus, bin string, args ...string) (string, []string) {
	if cpus == "" {
		return bin, args
	}
	return p.taskset, append([]string{"-c", cpus, bin}, args...)
}
