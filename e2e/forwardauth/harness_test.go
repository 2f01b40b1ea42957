package forwardauth

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetherauth/tether/e2e/internal/proxy"
	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// The configurations the tests run, from examples/.
const (
	nginxTemplate = "../../examples/nginx/forward-auth.conf.tmpl"
	caddyTemplate = "../../examples/caddy/Caddyfile.tmpl"
)

// The world of the tests.
const (
	user        = "alice"
	password    = "correct horse battery staple"
	appHost     = "app.tether.test" // the app's name, sent as Host to the proxy; on --allowed-hosts
	audience    = "https://app.tether.test"
	clientID    = "reports"
	clientScope = "reports:read"
)

// A front is one proxy in front of examples/upstream, asking tether.
type front struct {
	*web.Client
	run    *proc.Run
	tether string     // http://127.0.0.1:PORT
	serve  *proc.Proc // tether serve
	secret string     // clientID's secret
	proxy  *proxy.Server
}

// A startProxy starts one kind of proxy with tether and the upstream's
// addresses.
type startProxy func(t *testing.T, f *front, data map[string]any) *proxy.Server

// nginx and caddy are the startProxy of each proxy, with its example.
func nginx(bin string) startProxy {
	return func(t *testing.T, f *front, data map[string]any) *proxy.Server {
		return proxy.Nginx(t, f.run, f.Client, bin, nginxTemplate, data, "/", http.StatusUnauthorized)
	}
}

func caddy(bin string) startProxy {
	return func(t *testing.T, f *front, data map[string]any) *proxy.Server {
		return proxy.Caddy(t, f.run, f.Client, bin, caddyTemplate, data, "/", http.StatusUnauthorized)
	}
}

// newFront builds tether and examples/upstream, creates the user and the
// machine client, and starts tether, the upstream and the proxy. The
// proxy is ready once an anonymous request through it is answered 401:
// it reaches tether. All is torn down when the test ends.
func newFront(t *testing.T, start startProxy) *front {
	t.Helper()
	testkit.SkipShort(t, "starts tether, the upstream and a reverse proxy")
	f := &front{Client: web.NewClient(t), run: proc.NewRun(t, "tether-forwardauth-")}
	bin := proc.BuildTether(t, f.run.Dir)
	flags := []string{"--data", filepath.Join(f.run.Dir, "tether.db")}
	proc.Tether(t, bin, password+"\n", append([]string{"user", "add", user, "--password-stdin", "--create"}, flags...)...)
	f.secret = proc.AddClient(t, bin, append([]string{clientID, "--scopes", clientScope, "--audience", audience}, flags...)...)

	// Port 0: tether takes a free port itself and logs it, which no other
	// process can take in between, as one picked here could be. Nothing
	// needs the port before tether starts: its issuer is the URL it
	// listens on, and the proxy's configuration is written after.
	p, err := f.run.Start("tether", bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json",
		"--trusted-proxies", "127.0.0.1", "--allowed-hosts", appHost}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.serve = p
	if f.tether, err = p.Listening(); err != nil {
		t.Fatal(err)
	}
	if err := f.WaitOK(p, f.tether+"/readyz"); err != nil {
		t.Fatal(err)
	}

	f.proxy = start(t, f, map[string]any{
		"Tether": strings.TrimPrefix(f.tether, "http://"), "TetherHost": "127.0.0.1", "Upstream": proxy.Upstream(t, f.run),
		"Audience": url.QueryEscape(audience),
	})
	return f
}

// A request is what the test sends through the proxy.
type request struct {
	path   string      // under the proxy's URL; "/" if empty
	host   string      // the Host header; the proxy's address if empty
	header http.Header // more headers
	cookie string      // the session cookie, if not empty
	bearer string      // Authorization: Bearer, if not empty
	html   bool        // Accept: text/html, as a browser navigating; else application/json
}

// An answer is what came back: the upstream's Echo when it was reached.
type answer struct {
	status int
	header http.Header
	body   []byte
	echo   *echo // nil unless the upstream answered
}

// echo is examples/upstream's answer.
type echo struct {
	Method string              `json:"method"`
	Host   string              `json:"host"`
	URI    string              `json:"uri"`
	Tether map[string][]string `json:"tether"`
}

// send sends r through the proxy.
func (f *front) send(t *testing.T, r request) answer {
	t.Helper()
	path := r.path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", f.proxy.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Host = r.host
	req.Header.Set("Accept", "application/json")
	if r.html {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	}
	if r.cookie != "" {
		req.AddCookie(&http.Cookie{Name: web.CookieName, Value: r.cookie})
	}
	if r.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	res, body := f.do(t, req, 0)
	a := answer{status: res.StatusCode, header: res.Header, body: body}
	if a.status == http.StatusOK {
		a.echo = new(echo)
		if err := json.Unmarshal(a.body, a.echo); err != nil {
			t.Fatalf("GET %s: 200 but not the upstream's answer: %s (%v)", path, a.body, err)
		}
	}
	return a
}

// identityHeaders are the headers tether's answer sets, and the proxies
// copy: the only X-Tether-* headers an upstream may receive.
var identityHeaders = []string{"X-Tether-User", "X-Tether-User-Id", "X-Tether-Session-Id", "X-Tether-Scopes", "X-Tether-Subject-Type", "X-Tether-Assertion"}

// reach sends r and fails t unless the upstream answered; it returns the
// X-Tether-* headers the upstream received, without empty ones (a proxy
// may send an empty header or none; both say nothing). Any other header
// the upstream could take for an identity header fails t (GW-02).
func (f *front) reach(t *testing.T, r request) map[string]string {
	t.Helper()
	a := f.send(t, r)
	if a.echo == nil {
		t.Fatalf("GET %s: got %d %q, want the upstream's 200", r.path, a.status, a.body)
	}
	got := map[string]string{}
	for k, vs := range a.echo.Tether {
		if len(vs) != 1 || !slices.Contains(identityHeaders, k) {
			t.Errorf("upstream got %s %q: want one value of one of %q", k, vs, identityHeaders)
		}
		if strings.Join(vs, "") != "" {
			got[k] = strings.Join(vs, ",")
		}
	}
	return got
}

// refused sends r and fails t unless the proxy answered status, without
// the upstream.
func (f *front) refused(t *testing.T, r request, status int) answer {
	t.Helper()
	a := f.send(t, r)
	if a.status != status || a.echo != nil {
		t.Fatalf("GET %s: got %d %q, want %d from the proxy", r.path, a.status, a.body, status)
	}
	return a
}

// pat creates a personal access token for d and returns it and its id.
func (f *front) pat(t *testing.T, d *web.Device) (tok, id string) {
	t.Helper()
	r := f.Must(t, http.StatusCreated, "POST", f.tether+"/api/v1/tokens", d, map[string]any{"name": "e2e"})
	var v struct {
		Token string `json:"token"`
		ID    string `json:"id"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil || v.Token == "" || v.ID == "" {
		t.Fatalf("POST /api/v1/tokens: %s (%v)", r.Body, err)
	}
	return v.Token, v.ID
}

// oauth posts form to tether's OAuth endpoint path as the machine client
// and returns the answer's body, failing t unless it is 200.
func (f *front) oauth(t *testing.T, path string, form url.Values) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", f.tether+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(clientID+":"+f.secret)))
	_, body := f.do(t, req, http.StatusOK)
	return body
}

// do sends req and returns the answer and its body (read whole, up to
// 1 MiB), failing t unless its status is want (0: any).
func (f *front) do(t *testing.T, req *http.Request, want int) (*http.Response, []byte) {
	t.Helper()
	res, err := f.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	if want != 0 && res.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", req.Method, req.URL, res.StatusCode, body, want)
	}
	return res, body
}

// jwt gets an access token for the app's audience by the client
// credentials grant.
func (f *front) jwt(t *testing.T) string {
	t.Helper()
	body := f.oauth(t, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {clientScope}})
	var v struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.AccessToken == "" {
		t.Fatalf("POST /oauth2/token: %s (%v)", body, err)
	}
	return v.AccessToken
}
