package machines

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// The resource server's audience and scopes, as its clients are given them.
const (
	apiAudience  = "https://api.example.com"
	whoamiScope  = "whoami:read" // GET /whoami's (the resource server's default -scope)
	otherScope   = "reports:read"
	followScope  = "revocations:follow" // the resource server's own client's only scope: it asks for no token
	resourceName = "resource-server"
)

// A harness is one `tether serve` with its data in the run's directory,
// and the resource servers a test starts.
type harness struct {
	run   *proc.Run
	bin   string   // tether
	flags []string // the store flags of every tether command
	url   string   // http://127.0.0.1:PORT: tether's, the same after a restart; also the issuer
	web   *web.Client

	tether *proc.Proc
	rsBin  string // the resource server's binary, once built
}

// Where tether keeps its sessions, and so its revocations.
const (
	sessionsInSQLite = "sqlite" // the default: its --data file, with everything else
	sessionsInRedis  = "redis"  // a redis-server of the test's own
)

// newHarness builds tether and starts it on a free port of 127.0.0.1, its
// accounts and keys in its SQLite file, its sessions there too or in a
// redis-server of its own (skipped without redis-server, or failed under
// TETHER_TEST_REQUIRE_SERVICES=1). Everything is torn down when the test
// ends.
func newHarness(t *testing.T, sessions string) *harness {
	t.Helper()
	var redisBin string
	if sessions == sessionsInRedis {
		redisBin = proc.NeedRedis(t)
	}
	testkit.SkipShort(t, "starts tether and resource-server processes")
	h := &harness{run: proc.NewRun(t, "tether-machines-"), web: web.NewClient(t)}
	h.flags = []string{"--data", filepath.Join(h.run.Dir, "tether.db")}
	if sessions == sessionsInRedis {
		_, addr, err := h.run.StartRedis("redis", redisBin, "--dir", h.run.Dir, "--save", "", "--appendonly", "no")
		if err != nil {
			t.Fatal(err)
		}
		h.flags = append(h.flags, "--sessions", "redis://"+addr+"/0")
	}
	h.bin = proc.BuildTether(t, h.run.Dir)
	h.startTether(t)
	return h
}

// startTether starts `tether serve` (on a free port the first time, on the
// same address after that) and waits until /readyz answers 200.
func (h *harness) startTether(t *testing.T) {
	t.Helper()
	addr := strings.TrimPrefix(h.url, "http://")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	p, err := h.run.Start("tether", h.bin, append([]string{"serve", "--addr", addr, "--log-format", "json"}, h.flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.tether = p
	if h.url == "" {
		if h.url, err = p.Listening(); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.web.WaitOK(p, h.url+"/readyz"); err != nil {
		t.Fatal(err)
	}
}

// cli runs a tether command on tether's stores and returns its output.
func (h *harness) cli(t *testing.T, args ...string) string {
	t.Helper()
	return proc.Tether(t, h.bin, "", append(args, h.flags...)...)
}

// addClient registers a client of the resource server's audience with
// scopes (comma-separated) and returns its secret.
func (h *harness) addClient(t *testing.T, id, scopes string) string {
	t.Helper()
	return proc.AddClient(t, h.bin, append([]string{id, "--scopes", scopes, "--audience", apiAudience}, h.flags...)...)
}

// metadata is the part of tether's RFC 8414 metadata the tests use.
type metadata struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	JWKSURI       string `json:"jwks_uri"`
}

// metadata reads tether's authorization server metadata, as a client
// configured with the issuer alone would.
func (h *harness) metadata(t *testing.T) metadata {
	t.Helper()
	r := h.web.Must(t, http.StatusOK, "GET", h.url+"/.well-known/oauth-authorization-server", nil, nil)
	var m metadata
	if err := json.Unmarshal(r.Body, &m); err != nil || m.Issuer != h.url || m.TokenEndpoint == "" || m.JWKSURI == "" {
		t.Fatalf("metadata %s (%v): want the issuer %s, a token endpoint and a JWKS URI", r.Body, err, h.url)
	}
	return m
}

// credentials is a client of golang.org/x/oauth2/clientcredentials for
// the client id with secret, asking for scopes; ctx makes it talk through
// the test's client, to 127.0.0.1 only.
func (h *harness) credentials(t *testing.T, id, secret string, scopes ...string) (*clientcredentials.Config, context.Context) {
	t.Helper()
	cc := &clientcredentials.Config{
		ClientID: id, ClientSecret: secret, TokenURL: h.metadata(t).TokenEndpoint, Scopes: scopes,
		AuthStyle: oauth2.AuthStyleInHeader,
	}
	return cc, context.WithValue(t.Context(), oauth2.HTTPClient, h.web.HTTP)
}

// token gets a new token from cc, as cc's client.
func token(t *testing.T, ctx context.Context, cc *clientcredentials.Config) string {
	t.Helper()
	tok, err := cc.Token(ctx) // a new one each time: Config.Token caches nothing
	if err != nil {
		t.Fatalf("client credentials for %s: %v", cc.ClientID, err)
	}
	return tok.AccessToken
}

// revoke revokes tok at tether's /oauth2/revoke (RFC 7009) as the client
// id, and returns when the answer came.
func (h *harness) revoke(t *testing.T, id, secret, tok string) time.Time {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", h.url+"/oauth2/revoke",
		strings.NewReader(url.Values{"token": {tok}, "token_type_hint": {"access_token"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	res, err := h.web.HTTP.Do(req)
	if err != nil {
		t.Fatalf("POST /oauth2/revoke: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	at := time.Now()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /oauth2/revoke: %d %s", res.StatusCode, body)
	}
	return at
}

// A resourceServer is examples/resource-server running as a process.
type resourceServer struct {
	h    *harness
	proc *proc.Proc
	url  string
}

// startResourceServer builds examples/resource-server (once), gives it a
// client of its own to follow the revocation stream with, its secret in
// a file, starts it with maxStaleness, and waits until it follows the
// stream (/readyz answers 200).
func (h *harness) startResourceServer(t *testing.T, maxStaleness time.Duration) *resourceServer {
	t.Helper()
	if h.rsBin == "" {
		h.rsBin = proc.Build(t, h.run.Dir, resourceName, "github.com/tetherauth/tether/examples/resource-server")
	}
	secretFile := filepath.Join(h.run.Dir, resourceName+".secret")
	if err := os.WriteFile(secretFile, []byte(h.addClient(t, resourceName, followScope)), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := h.run.Start(resourceName, h.rsBin, "-addr", "127.0.0.1:0", "-tether", h.url, "-audience", apiAudience,
		"-client-id", resourceName, "-client-secret-file", secretFile, "-max-staleness", maxStaleness.String())
	if err != nil {
		t.Fatal(err)
	}
	rs := &resourceServer{h: h, proc: p}
	if rs.url, err = p.Listening(); err != nil {
		t.Fatal(err)
	}
	if err := h.web.WaitOK(p, rs.url+"/readyz"); err != nil {
		t.Fatal(err)
	}
	return rs
}

// A whoami is what GET /whoami answered.
type whoami struct {
	Status   int
	Auth     string // WWW-Authenticate
	Identity struct {
		Subject  string   `json:"subject"`
		ClientID string   `json:"client_id"`
		Scopes   []string `json:"scopes"`
	}
	Body string
}

func (w whoami) String() string {
	return fmt.Sprintf("%d (WWW-Authenticate %q) %s", w.Status, w.Auth, strings.TrimSpace(w.Body))
}

// whoami calls GET /whoami with tok as the bearer token ("" for none).
func (rs *resourceServer) whoami(t *testing.T, tok string) whoami {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", rs.url+"/whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := rs.h.web.HTTP.Do(req)
	if err != nil {
		t.Fatalf("GET /whoami: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET /whoami: %v", err)
	}
	w := whoami{Status: res.StatusCode, Auth: res.Header.Get("WWW-Authenticate"), Body: string(b)}
	if w.Status == http.StatusOK {
		if err := json.Unmarshal(b, &w.Identity); err != nil {
			t.Fatalf("GET /whoami: %s: %v", b, err)
		}
	}
	return w
}

// mustWhoami calls GET /whoami with tok and fails the test unless it is
// answered status.
func (rs *resourceServer) mustWhoami(t *testing.T, tok string, status int) whoami {
	t.Helper()
	w := rs.whoami(t, tok)
	if w.Status != status {
		t.Fatalf("GET /whoami: got %v, want %d", w, status)
	}
	return w
}

// ready reports whether the resource server's /readyz answers 200: its
// revocation stream is current.
func (rs *resourceServer) ready(t *testing.T) bool {
	t.Helper()
	r, err := rs.h.web.Send(t.Context(), "GET", rs.url+"/readyz", nil, nil)
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	return r.Status == http.StatusOK
}
