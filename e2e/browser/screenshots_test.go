package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// screenshotsEnv names the directory, relative to the module root, that
// TestScreenshots writes the README's screenshots to; unset, it skips.
const screenshotsEnv = "TETHER_E2E_SCREENSHOTS"

// The user agents of the screenshots' two devices: a desktop Chrome (rather
// than the headless one the tests run) and an iPhone.
const (
	desktopUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
	iPhoneUA  = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
)

// TestScreenshots takes the screenshots of the sign-in and account pages at
// desktop (1280×800) and phone (360×740) widths that the README shows:
//
//	TETHER_E2E_SCREENSHOTS=docs go test ./e2e/browser -run Screenshots
func TestScreenshots(t *testing.T) {
	t.Parallel()
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		t.Skipf("set %s=docs to write the README's screenshots into docs/", screenshotsEnv)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(moduleRoot(t), dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startTether(t, []user{{"alice", alicePW}})
	b := newBrowser(t, "alice")
	b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: desktopUA})
		return err
	}))
	// shot saves the page at width: the first height pixels, or all of it
	// when full, in a window as tall as the page (no scroll bar).
	shot := func(name string, width, height int64, full bool, opts ...chromedp.EmulateViewportOption) {
		t.Helper()
		b.do(chromedp.EmulateViewport(width, height, opts...))
		if full {
			h := get(b, chromedp.Evaluate[int64](`document.documentElement.scrollHeight`))
			b.do(chromedp.EmulateViewport(width, max(h, height), opts...))
		}
		png := get(b, chromedp.CaptureScreenshot())
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d KB", path, len(png)>>10)
	}

	b.open(srv.URL + "/login")
	shot("signin-desktop.png", 1280, 800, false)
	shot("signin-phone.png", 360, 740, false, chromedp.EmulateMobile)

	b.do(chromedp.EmulateViewport(1280, 800))
	b.signIn(srv, "alice", alicePW)
	signInWithUA(t, srv, "alice", alicePW, iPhoneUA) // a second device
	b.open(srv.URL + "/account")
	shot("account-phone.png", 360, 740, true, chromedp.EmulateMobile)
	// On the desktop, with "sign out all other devices" opened, to show
	// its confirmation.
	b.do(chromedp.EmulateViewport(1280, 800))
	b.do(chromedp.Click(chromedp.CSS("details.confirm summary"), chromedp.NodeVisible))
	shot("account-desktop.png", 1280, 800, true)
}

// signInWithUA signs in through the JSON API with the given user agent, as
// another device would.
func signInWithUA(t *testing.T, srv *tether, name, pw, ua string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": name, "password": pw})
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/login", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ua)
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("signing in as %s with %q: status %d", name, ua, res.StatusCode)
	}
}

// moduleRoot returns the directory of go.mod above the working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}
