package browser

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/internal/testkit"
)

// stepTimeout bounds one browser step, so a page that never comes fails
// with a screenshot instead of hanging until go test's own timeout. It is a
// guard against hangs, not a speed check: every step takes far less.
const stepTimeout = time.Minute

// chromium returns the context of the Chromium process the tests share,
// starting it on first use. Without Chromium the test skips, or fails when
// TETHER_TEST_REQUIRE_SERVICES=1.
//
// The flags are those this machine needs (see the machine notes): headless,
// no sandbox (the tests may run as root), no GPU, no QUIC, no first-run
// screens, and no background networking, component updates or sync, which
// would try to reach Google and be refused by a closed network; and a fresh
// profile directory under the run's directory. And for the tests that need
// a site of several host names over HTTPS (see site): every name under
// siteDomain resolves to 127.0.0.1, and the site's certificate, made here,
// is accepted.
func chromium(t *testing.T) context.Context {
	t.Helper()
	testkit.SkipShort(t, "drives Chromium and a tether process")
	path, err := exec.LookPath("chromium")
	testkit.NeedService(t, "Chromium (apt-get install chromium)", err)
	e2e.chromeOnce.Do(func() {
		cert, err := newSiteCert()
		if err != nil {
			e2e.chromeErr = fmt.Errorf("making the test site's certificate: %w", err)
			return
		}
		e2e.siteCert = cert
		alloc, stopAlloc := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(path),
			chromedp.Flag("headless", true),
			chromedp.Flag("no-sandbox", true),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("no-first-run", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("host-resolver-rules", "MAP *."+siteDomain+" 127.0.0.1"),
			chromedp.Flag("ignore-certificate-errors-spki-list", cert.spki),
			chromedp.UserDataDir(filepath.Join(e2e.dir, "chromium-profile")),
		)
		ctx, stop := chromedp.NewContext(alloc)
		e2e.stopChrome = func() { stop(); stopAlloc() }
		// The first Do starts the browser, and binds its life to the
		// context it is given: so no deadline here.
		if err := chromedp.Do(ctx); err != nil {
			e2e.chromeErr = fmt.Errorf("starting %s: %w", path, err)
			return
		}
		e2e.chrome = ctx
	})
	if e2e.chromeErr != nil {
		t.Fatal(e2e.chromeErr) // installed but broken: never a skip
	}
	return e2e.chrome
}

// browser is one person's browser: a browser context of the shared Chromium,
// with its own cookies, cache and storage, like a separate profile, and one
// tab.
type browser struct {
	t    *testing.T
	name string
	ctx  context.Context
}

// newBrowser opens a new browser called name (it names the screenshot).
// When the test ends it saves a screenshot of the last page, and prints its
// path if the test failed.
func newBrowser(t *testing.T, name string) *browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(chromium(t), chromedp.WithNewBrowserContext())
	b := &browser{t: t, name: name, ctx: ctx}
	t.Cleanup(func() {
		defer cancel()
		path := artifact(t, name+".png")
		if err := b.saveScreenshot(path); err != nil {
			t.Logf("%s: screenshot: %v", name, err)
		} else if t.Failed() {
			t.Logf("%s's last page (%s): %s", name, b.location(), path)
		}
	})
	// The first Do opens the tab and binds it to the context it is given,
	// so that one must be ctx itself, without a deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	return b
}

func (b *browser) saveScreenshot(path string) error {
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// do runs steps in the browser; an error fails the test.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", b.name, err)
	}
}

// get runs an action that returns a value; an error fails the test.
func get[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", b.name, err)
	}
	return v
}

// open navigates to u and waits for it to load.
func (b *browser) open(u string) {
	b.t.Helper()
	b.do(chromedp.Navigate(u))
}

// submit clicks the element sel (a submit button) and waits for the page
// the form leads to.
func (b *browser) submit(sel string) {
	b.t.Helper()
	b.navigateBy(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// navigateBy runs step, which starts a navigation (a click, a key press),
// and waits for the page it leads to.
func (b *browser) navigateBy(step chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, step); err != nil {
		b.t.Fatalf("%s: %v", b.name, err)
	}
}

// location returns the page's URL, or "" when it can't be read.
func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// path returns the path and query of the page's URL.
func (b *browser) path() string {
	b.t.Helper()
	u, err := url.Parse(get(b, chromedp.Location()))
	if err != nil {
		b.t.Fatal(err)
	}
	return u.RequestURI()
}

// text returns the text of the page's body as the user sees it.
func (b *browser) text() string {
	b.t.Helper()
	return get(b, chromedp.Evaluate[string](`document.body.innerText`))
}

// has reports whether the page has an element matching the CSS selector.
func (b *browser) has(sel string) bool {
	b.t.Helper()
	return get(b, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, sel)))
}

// signIn signs in through the sign-in form, as a person would: types the
// name and password and presses the button; then it checks that the
// account page came.
func (b *browser) signIn(srv *tether, name, pw string) {
	b.t.Helper()
	b.fillSignIn(srv, name, pw)
	if p := b.path(); p != "/account" {
		b.t.Fatalf("%s: after signing in as %s: at %s, want /account; the page says:\n%s", b.name, name, p, b.text())
	}
}

// fillSignIn opens the sign-in page, fills in the form and sends it.
func (b *browser) fillSignIn(srv *tether, name, pw string) {
	b.t.Helper()
	b.open(srv.URL + "/login")
	b.do(
		chromedp.SendKeys(chromedp.ID("username"), name),
		chromedp.SendKeys(chromedp.ID("password"), pw),
	)
	b.submit(`form[action="/login"] button[type=submit]`)
}

// cookies returns the browser's cookies for srv, read through the DevTools
// protocol, which sees HttpOnly cookies too.
func (b *browser) cookies(srv *tether) []*network.Cookie {
	b.t.Helper()
	return b.cookiesFor(srv.URL)
}

// cookiesFor returns the cookies the browser would send to origin's /.
func (b *browser) cookiesFor(origin string) []*network.Cookie {
	b.t.Helper()
	res := get(b, func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{origin + "/"}})
	})
	return res.Cookies
}

// cookie returns the browser's cookie called name for srv, or nil.
func (b *browser) cookie(srv *tether, name string) *network.Cookie {
	b.t.Helper()
	for _, c := range b.cookies(srv) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// sessionCookie is the name of tether's session cookie (SES-05).
const sessionCookie = "__Host-tether"

// preSessionCookie is the cookie the sign-in form's CSRF token is bound to
// before there is a session (CSRF-05).
const preSessionCookie = "__Host-tether-pre"

// mustContain fails the test unless the page's text contains each of want.
func (b *browser) mustContain(want ...string) {
	b.t.Helper()
	text := b.text()
	for _, w := range want {
		if !strings.Contains(text, w) {
			b.t.Fatalf("%s: the page at %s lacks %q; it says:\n%s", b.name, b.location(), w, text)
		}
	}
}
