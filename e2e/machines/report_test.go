package machines

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ReportEnv names the file the run's figures are written to, in Markdown:
// docs/machines.md is that report.
const ReportEnv = "TETHER_MACHINES_REPORT"

var (
	reportMu sync.Mutex // guards report
	report   []string   // the figures, one Markdown list item each, in the order measured
)

// record logs a figure and keeps it for the report.
func record(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	reportMu.Lock()
	report = append(report, fmt.Sprintf("- %s: %s", t.Name(), line))
	reportMu.Unlock()
}

const reportHead = `# Machine tokens end to end

Figures of the last run of ` + "`e2e/machines`" + ` (see its package doc): a
` + "`tether serve`" + ` built from the tree (its accounts and keys in SQLite,
its sessions in SQLite or in Redis), and ` + "`examples/resource-server`" + `
following its revocation stream, every process on 127.0.0.1 of one
machine (2 shared cores). Made with

    TETHER_MACHINES_REPORT=$PWD/docs/machines.md go test ./e2e/machines -v

`

// TestMain runs the tests, then writes their figures to the file
// TETHER_MACHINES_REPORT names, if any and if every test passed.
func TestMain(m *testing.M) {
	code := m.Run()
	if path := os.Getenv(ReportEnv); path != "" && code == 0 && len(report) > 0 {
		text := reportHead + "Run at " + time.Now().UTC().Format(time.RFC3339) + ":\n\n" + strings.Join(report, "\n") + "\n"
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", ReportEnv, err)
			code = 1
		}
	}
	os.Exit(code)
}

// quantiles are the p50, the p99 and the worst of ds, sorted in place,
// taking the nearest rank.
func quantiles(ds []time.Duration) (p50, p99, worst time.Duration) {
	slices.Sort(ds)
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return rank(0.50), rank(0.99), ds[len(ds)-1]
}

// ms rounds d for reading.
func ms(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}
