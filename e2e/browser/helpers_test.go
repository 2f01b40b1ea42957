package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/internal/testkit"
)

// A recorder keeps what the browser's network stack did with each request
// to one origin: the status of the answer (a redirect's too) and whether the
// session cookie went with it, as Chromium reports them through the
// DevTools protocol.
type recorder struct {
	t      *testing.T
	origin string // "http://127.0.0.1:PORT"

	mu       sync.Mutex // guards the fields below
	requests map[network.RequestID]*exchange
	order    []network.RequestID
}

// An exchange is one request of the page and its first answer.
type exchange struct {
	method, url  string
	status       int64  // 0 until the answer comes
	cookie       string // the session cookie: "sent", "blocked: REASONS" or "" (none kept)
	secFetchSite string
	origin       string // the Origin header, "<nil>" for none
}

// record starts recording the requests b sends to srv until the test ends.
func (b *browser) record(srv *tether) *recorder {
	b.t.Helper()
	r := &recorder{t: b.t, origin: srv.URL, requests: make(map[network.RequestID]*exchange)}
	ctx, cancel := context.WithCancel(b.ctx)
	b.t.Cleanup(cancel)
	// Listen's func runs in the loop that reads the tab's events: it only
	// files them.
	err := chromedp.Listen(ctx, func(ev any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if x := r.requests[ev.RequestID]; x != nil && ev.RedirectResponse != nil && x.status == 0 {
				x.status = ev.RedirectResponse.Status
			}
			if !strings.HasPrefix(ev.Request.URL, r.origin+"/") {
				break
			}
			x := r.requests[ev.RequestID]
			if x == nil {
				x = &exchange{}
				r.requests[ev.RequestID] = x
			}
			if x.url == "" { // the first hop
				x.method, x.url = ev.Request.Method, ev.Request.URL
				r.order = append(r.order, ev.RequestID)
			}
		case *network.EventRequestWillBeSentExtraInfo:
			// Sent before or after requestWillBeSent; the first one is
			// the first hop's, the one the page sent.
			x := r.requests[ev.RequestID]
			if x == nil {
				x = &exchange{}
				r.requests[ev.RequestID] = x
			}
			if x.cookie == "" && x.secFetchSite == "" {
				x.secFetchSite = fmt.Sprint(ev.Headers["Sec-Fetch-Site"])
				x.origin = fmt.Sprint(ev.Headers["Origin"])
				for _, ac := range ev.AssociatedCookies {
					if ac.Cookie.Name != sessionCookie && ac.Cookie.Name != domainSessionCookie && ac.Cookie.Name != preSessionCookie {
						continue
					}
					if len(ac.BlockedReasons) == 0 {
						x.cookie += ac.Cookie.Name + " sent; "
					} else {
						x.cookie += fmt.Sprintf("%s blocked: %v; ", ac.Cookie.Name, ac.BlockedReasons)
					}
				}
			}
		case *network.EventResponseReceived:
			if x := r.requests[ev.RequestID]; x != nil && x.status == 0 {
				x.status = ev.Response.Status
			}
		case *network.EventLoadingFailed:
			if x := r.requests[ev.RequestID]; x != nil && x.status == 0 {
				x.status = -1 // no answer: say so rather than wait
			}
		}
	})
	if err != nil {
		b.t.Fatalf("%s: listening to the network: %v", b.name, err)
	}
	return r
}

// wait returns the exchange of the first request the page sent with method
// to path (and query), once its answer came.
func (r *recorder) wait(method, path string) exchange {
	r.t.Helper()
	var found exchange
	testkit.WaitFor(r.t, "the browser's "+method+" "+path+" and its answer", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, id := range r.order {
			if x := r.requests[id]; x.method == method && x.url == r.origin+path && x.status != 0 {
				found = *x
				return true
			}
		}
		return false
	}, testkit.Within(stepTimeout))
	return found
}

// An attacker is a web site of someone else's: pages on another port,
// reached as http://HOST:PORT. With host "localhost" it is another site than
// tether's 127.0.0.1, so SameSite cookies stay home; with host "127.0.0.1"
// it is the same site (sites don't have ports) but another origin, so only
// tether's own origin check stands in the way.
type attacker struct {
	URL   string
	name  string
	pages map[string]string // path -> HTML
}

func newAttacker(t *testing.T, host string, pages map[string]string) *attacker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // Chromium resolves localhost to loopback itself
	if err != nil {
		t.Fatal(err)
	}
	a := &attacker{pages: pages}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := a.pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	a.URL = "http://" + host + ":" + port
	a.name = "cross-site (" + a.URL + ")"
	if host == "127.0.0.1" {
		a.name = "same-site, cross-origin (" + a.URL + ")"
	}
	return a
}

// autoSubmit is an attacker's page that posts a form to action as soon as it
// loads: a top-level navigation, as a victim's click on a link would start.
func autoSubmit(action string, fields ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><title>You have won</title><form id=f method=post action=\"%s\">\n", html.EscapeString(action))
	for i := 0; i+1 < len(fields); i += 2 {
		fmt.Fprintf(&b, "<input name=\"%s\" value=\"%s\">\n", html.EscapeString(fields[i]), html.EscapeString(fields[i+1]))
	}
	b.WriteString("</form><script>document.getElementById('f').submit()</script>\n")
	return b.String()
}

// fetchPage is an attacker's page that sends each body as a POST to its URL
// with fetch: mode no-cors (no preflight: only "simple" requests), with
// credentials (cookies) and Content-Type text/plain, the closest to JSON a
// cross-site page can send without tether's consent. The page's title
// becomes "done" when every request has settled.
func fetchPage(posts map[string]any) string {
	return "<!doctype html><title>loading</title><script>" + fetchScript(posts) + "</script>\n"
}

// fetchScript is fetchPage's script, to run in a page of the test's
// choosing.
func fetchScript(posts map[string]any) string {
	var calls []string
	for _, u := range slices.Sorted(maps.Keys(posts)) {
		body, _ := json.Marshal(posts[u])
		calls = append(calls, fmt.Sprintf(
			"fetch(%q, {method: 'POST', mode: 'no-cors', credentials: 'include', headers: {'Content-Type': 'text/plain'}, body: %q})",
			u, body))
	}
	return "Promise.allSettled([\n" + strings.Join(calls, ",\n") + "\n]).then(() => { document.title = 'done' })"
}

// waitTitle waits until the page's title is title.
func (b *browser) waitTitle(title string) {
	b.t.Helper()
	get(b, chromedp.Poll[bool](fmt.Sprintf("document.title === %q", title), chromedp.WithPollingTimeout(stepTimeout)))
}

// waitTether waits until a page of tether's has loaded, after a navigation
// some other page started.
func (b *browser) waitTether() {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS("header .brand")))
}

// httpClient is a plain HTTP client, not a browser: no cookie jar, no
// redirects followed.
var httpClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       stepTimeout,
}

// request sends method path to srv with the session cookie value token
// (none if empty) and a JSON body if body is not nil, and returns the status,
// the Location header and the response's cookies.
func (s *tether) request(method, path, token string, body any) (status int, location string, cookies []*http.Cookie) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
	}
	res, err := httpClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, res.Body)
	return res.StatusCode, res.Header.Get("Location"), res.Cookies()
}

// apiLogin signs in through the JSON API and returns the status and the
// session token, if one was set.
func (s *tether) apiLogin(name, pw string) (int, string) {
	s.t.Helper()
	status, _, cookies := s.request(http.MethodPost, "/api/v1/login", "", map[string]string{"username": name, "password": pw})
	for _, c := range cookies {
		if c.Name == sessionCookie {
			return status, c.Value
		}
	}
	return status, ""
}

// signedIn reports whether token is a live session: GET /api/v1/me answers
// 200 with it.
func (s *tether) signedIn(token string) bool {
	s.t.Helper()
	status, _, _ := s.request(http.MethodGet, "/api/v1/me", token, nil)
	return status == http.StatusOK
}

// in returns b for use in subtest t.
func (b *browser) in(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
}

// get fetches path from srv with a plain client, without cookies, and
// returns the status, the Location header and the body.
func (s *tether) get(path string) (status int, location, body string) {
	s.t.Helper()
	res, err := httpClient.Get(s.URL + path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	return res.StatusCode, res.Header.Get("Location"), string(b)
}

// sessionCount returns how many live sessions the user called name has,
// from `tether sessions list`, which reads the server's database.
func (s *tether) sessionCount(name string) int {
	s.t.Helper()
	out := strings.TrimSpace(s.cli("", "sessions", "list", name))
	return len(strings.Split(out, "\n")) - 1 // minus the header line
}
