package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherauth/tether/session"
)

// loadCounts counts session loads for three families at once:
// tether_session_checks_total{outcome}, tether_session_cache_hits_total
// and tether_session_cache_misses_total. A load, the hot path, costs one
// atomic add on a cache line of its own: a cached load counts only in
// slot 0, and the families are summed from the slots when scraped.
type loadCounts struct {
	// slot 0: ok from the near-cache; slot o: outcome o from the store
	// (malformed: asked nobody).
	slots                [session.LoadStoreError + 1]paddedCount
	checks, hits, misses *prometheus.Desc
}

// paddedCount is a counter alone on its 64-byte cache line, so that
// cores counting different outcomes don't contend.
type paddedCount struct {
	n atomic.Uint64
	_ [56]byte
}

func newLoadCounts() *loadCounts {
	return &loadCounts{
		checks: prometheus.NewDesc("tether_session_checks_total",
			"Session loads by outcome: ok, malformed, unknown, expired, revoked (this node's feed reported it ended), store_error.",
			[]string{"outcome"}, nil),
		hits: prometheus.NewDesc("tether_session_cache_hits_total",
			"Session loads the near-cache answered.", nil, nil),
		misses: prometheus.NewDesc("tether_session_cache_misses_total",
			"Session loads of a well-formed token that asked the session store.", nil, nil),
	}
}

// add counts r; an outcome out of range is not counted.
func (c *loadCounts) add(r session.LoadResult) {
	switch {
	case r.Cached:
		c.slots[0].n.Add(1)
	case r.Outcome >= session.LoadOK && r.Outcome <= session.LoadStoreError:
		c.slots[r.Outcome].n.Add(1)
	}
}

func (c *loadCounts) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.checks
	ch <- c.hits
	ch <- c.misses
}

func (c *loadCounts) Collect(ch chan<- prometheus.Metric) {
	hits := c.slots[0].n.Load()
	var misses uint64
	for o := session.LoadOK; o <= session.LoadStoreError; o++ {
		n := c.slots[o].n.Load()
		if o != session.LoadMalformed {
			misses += n
		}
		if o == session.LoadOK {
			n += hits
		}
		ch <- prometheus.MustNewConstMetric(c.checks, prometheus.CounterValue, float64(n), o.String())
	}
	ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(hits))
	ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(misses))
}
