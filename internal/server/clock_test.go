package server

import (
	"net/http"
	"testing"
	"time"
)

// SES-07 under clock jumps (issue 9's fault suite: the binary can't take
// an injected clock, this server can): the wall clock stepped forward and
// back, across the idle and the absolute deadline. A step forward past a
// deadline ends the session; a step back never brings an ended session
// back, nor ends a live one (the Manager's clock stands still until the
// wall clock has made the step up); a session signed in after a step
// back lives and ends by the same rules.
func TestSES07_ClockJumps(t *testing.T) {
	const hour = time.Hour
	status := func(c *client) int {
		t.Helper()
		res, _ := c.me()
		return res.status
	}
	// A step moves the clock, then expects GET /api/v1/me to answer want.
	type step struct {
		move time.Duration
		want int
	}
	steps := func(t *testing.T, h *harness, c *client, moves []step) {
		t.Helper()
		for i, st := range moves {
			h.clock.Advance(st.move)
			if got := status(c); got != st.want {
				t.Fatalf("step %d (clock moved %v): GET /api/v1/me got %d, want %d", i, st.move, got, st.want)
			}
		}
	}
	const idle, absolute = 30 * time.Minute, 12 * time.Hour // session.Config's defaults, which the harness keeps
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"forward within idle, then back", []step{
			{idle - time.Minute, http.StatusOK}, {-hour, http.StatusOK}, {-24 * hour, http.StatusOK}}},
		{"forward past idle, then back", []step{
			{idle + time.Minute, http.StatusUnauthorized}, {-hour, http.StatusUnauthorized}, {-24 * hour, http.StatusUnauthorized}}},
		// The Manager's clock stands still after a step back until the
		// wall clock has made it up: the idle time counts from there.
		{"back, then forward past idle", []step{
			{-hour, http.StatusOK}, {idle + time.Minute, http.StatusOK}, {hour, http.StatusUnauthorized}, {-2 * hour, http.StatusUnauthorized}}},
		{"forward past absolute in one jump", []step{
			{absolute + time.Minute, http.StatusUnauthorized}, {-absolute, http.StatusUnauthorized}}},
		{"forward a day, then back a day", []step{
			{24 * hour, http.StatusUnauthorized}, {-24 * hour, http.StatusUnauthorized}, {time.Minute, http.StatusUnauthorized}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.addUser("alice", alicePW, false)
			c := h.client()
			c.login("alice", alicePW)
			steps(t, h, c, tc.steps)
		})
	}

	// A busy session reaches its absolute deadline: used every idle/2,
	// it lives until then, ends there, and a step back of an hour
	// doesn't revive it.
	t.Run("busy past absolute, then back", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		h.addUser("alice", alicePW, false)
		c := h.client()
		c.login("alice", alicePW)
		var used time.Duration
		for used+idle/2 < absolute {
			used += idle / 2
			steps(t, h, c, []step{{idle / 2, http.StatusOK}})
		}
		steps(t, h, c, []step{{absolute - used + time.Minute, http.StatusUnauthorized}, {-hour, http.StatusUnauthorized}})
	})

	// After a step back, a new sign-in works, and its session ends by
	// the idle rule, counted from the Manager's clock, which stood still
	// until the wall clock made the hour up.
	t.Run("sign in after a step back", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		h.addUser("alice", alicePW, false)
		h.clock.Advance(-hour)
		c := h.client()
		c.login("alice", alicePW)
		steps(t, h, c, []step{{time.Minute, http.StatusOK}, {hour + idle, http.StatusUnauthorized}})
	})
}
