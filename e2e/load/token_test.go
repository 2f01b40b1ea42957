package load

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
)

// The machine client of the token benchmark (issue 11).
const (
	clientID       = "wrk"
	clientScope    = "load:test"
	clientAudience = "https://api.example.com"
	tokenPath      = "/oauth2/token"
)

// tokenConnections is the token benchmark's concurrency, lower than
// wrkConnections: the server counts every client authentication in the
// sign-in throttle of the caller's address before it checks the secret,
// and gives the attempt back after; with more than its 20 free attempts in
// flight at once (32 connections from one address), the rest are answered
// 429, whatever their secret.
const tokenConnections = 16

// tokenRequest is wrk's script for a client credentials request: a POST
// with the grant in the form; the client authenticates by HTTP Basic.
const tokenRequest = `wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=` + clientScope + `"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
`

// BenchmarkTokenEndpoint loads the same node as BenchmarkServeAuthenticated
// with wrk, over tokenConnections: 10 s of GET /healthz and 10 s of POST
// /oauth2/token (the
// client credentials grant, Basic client authentication, a new signed
// token each time), in alternating slices of 2 s. It reports the requests
// per second of each and the second as a percentage of the first; issue 11
// sets no target. ns/op, the length of a round, is left out.
func BenchmarkTokenEndpoint(b *testing.B) {
	w, n := startLoad(b)
	script := filepath.Join(b.TempDir(), "token.lua")
	if err := os.WriteFile(script, []byte(tokenRequest), 0o600); err != nil {
		b.Fatal(err)
	}
	basic := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(clientID+":"+n.secret))
	floor, tokens := side{name: "healthz", what: "GET " + floorPath}, side{name: "token", what: "POST " + tokenPath}
	rounds := alternate(b, func() { floor.add(runWrk(b, w, tokenConnections, n.url+floorPath)) }, func() {
		tokens.add(runWrk(b, w, tokenConnections, n.url+tokenPath, "-s", script, "-H", basic))
	})
	reportRates(b, rounds, floor, tokens)
}
