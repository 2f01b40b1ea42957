package browser

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestPages_KeyboardOnlyAtPhoneWidth: at 360 px wide, a person using only
// the keyboard signs in (the name field has the focus, Tab moves to the
// password, Enter sends the form), tabs through the account page, whose
// every stop shows a focus outline, opens "sign out all other devices" and
// confirms it. Neither page scrolls sideways.
func TestPages_KeyboardOnlyAtPhoneWidth(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}})
	srv.apiLogin("alice", alicePW) // another device, to sign out
	b := newBrowser(t, "phone")
	b.do(chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile))

	b.open(srv.URL + "/login")
	b.noSidewaysScroll()
	b.mustFocus("#username")
	b.do(chromedp.KeyEvent("alice"), chromedp.KeyEvent("\t"))
	b.mustFocus("#password")
	b.do(chromedp.KeyEvent(alicePW))
	b.navigateBy(chromedp.KeyEvent("\r"))
	if p := b.path(); p != "/account" {
		t.Fatalf("after Enter in the sign-in form: at %s, want /account", p)
	}
	b.noSidewaysScroll()

	var stops []string
	for {
		b.do(chromedp.KeyEvent("\t"))
		stop := get(b, chromedp.Evaluate[map[string]string](`(() => {
			const el = document.activeElement, style = getComputedStyle(el);
			return {
				what: el.tagName.toLowerCase() + ' "' + el.textContent.trim().replace(/\s+/g, ' ').slice(0, 40) + '"',
				outline: style.outlineStyle + ' ' + style.outlineWidth,
				summary: String(el.matches('details.confirm summary')),
			};
		})()`))
		stops = append(stops, stop["what"])
		if strings.HasPrefix(stop["outline"], "none") || strings.HasSuffix(stop["outline"], " 0px") {
			t.Errorf("keyboard focus on %s shows no outline (%s)", stop["what"], stop["outline"])
		}
		if stop["summary"] == "true" {
			break
		}
		if len(stops) > 20 {
			t.Fatalf("Tab never reaches 'Sign out all other devices'; the stops: %s", strings.Join(stops, ", "))
		}
	}
	t.Logf("Tab stops: %s", strings.Join(stops, ", "))

	b.do(chromedp.KeyEvent("\r"))
	if !get(b, chromedp.Evaluate[bool](`document.querySelector('details.confirm').open`)) {
		t.Fatalf("Enter on the disclosure didn't open it")
	}
	b.do(chromedp.KeyEvent("\t"))
	b.mustFocus("details.confirm button[type=submit]")
	b.navigateBy(chromedp.KeyEvent("\r"))
	if p := b.path(); p != "/account?done=others" {
		t.Fatalf("after confirming with Enter: at %s, want /account?done=others", p)
	}
	b.mustContain("Every other device was signed out.")
	b.noSidewaysScroll()
}

// TestPages_PasswordErrorAtItsFieldOnAPhone: at 360 px wide, a password
// change refused for a wrong current password comes back with the error
// inside the password form, right above the field to fix, which has the
// focus; the sign-in form keeps the name after a wrong password.
func TestPages_PasswordErrorAtItsFieldOnAPhone(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}})
	b := newBrowser(t, "phone")
	b.do(chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile))

	b.fillSignIn(srv, "alice", "not my password")
	b.mustContain("The username or password is wrong.")
	b.mustFocus("#password")
	if name := get(b, chromedp.Evaluate[string](`document.getElementById('username').value`)); name != "alice" {
		t.Errorf("the name after a wrong password: %q, want alice kept", name)
	}

	b.signIn(srv, "alice", alicePW)
	b.do(
		chromedp.SendKeys(chromedp.ID("current"), "not my password"),
		chromedp.SendKeys(chromedp.ID("new"), "a brand new passphrase"),
		chromedp.SendKeys(chromedp.ID("confirm"), "a brand new passphrase"),
	)
	b.submit(`form[action="/account/password"] button[type=submit]`)
	b.mustContain("The current password is wrong.")
	b.mustFocus("#current")
	gap := get(b, chromedp.Evaluate[int](`(() => {
		const e = document.getElementById('form-error');
		if (!e || !e.closest('form[action="/account/password"]')) return -1;
		return Math.round(document.getElementById('current').getBoundingClientRect().top - e.getBoundingClientRect().bottom);
	})()`))
	if gap < 0 || gap > 100 {
		t.Errorf("the error is %d px above the current password field, want inside its form and within 100 px (-1: not in the form)", gap)
	}
	b.noSidewaysScroll()
}

// mustFocus fails the test unless the element with the keyboard focus
// matches the CSS selector sel.
func (b *browser) mustFocus(sel string) {
	b.t.Helper()
	if !get(b, chromedp.Evaluate[bool](fmt.Sprintf(`document.activeElement.matches(%q)`, sel))) {
		what := get(b, chromedp.Evaluate[string](`document.activeElement.outerHTML.slice(0, 120)`))
		b.t.Fatalf("%s: the focus is on %s, want %s", b.name, what, sel)
	}
}

// noSidewaysScroll fails the test if the page is wider than the window.
func (b *browser) noSidewaysScroll() {
	b.t.Helper()
	sizes := get(b, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if sizes[0] > sizes[1] {
		b.t.Errorf("%s: %s is %d px wide in a %d px window: it scrolls sideways", b.name, b.path(), sizes[0], sizes[1])
	}
}

// TestPW08_SetupLinkCreatesFirstAdmin: a server with no account prints a
// one-time setup link (there are no default accounts, PW-08). In the
// browser, its form creates the first admin, who lands signed in on the
// account page; the link then no longer works.
func TestPW08_SetupLinkCreatesFirstAdmin(t *testing.T) {
	t.Parallel()
	srv := startTether(t, nil)
	link := srv.waitOutput(regexp.MustCompile(`setup: open (http://\S+) within`))[1]
	b := newBrowser(t, "admin")
	b.open(link)
	b.mustContain("Create the first admin", "At least 8 characters")
	b.do(
		chromedp.SendKeys(chromedp.ID("username"), "root"),
		chromedp.SendKeys(chromedp.ID("password"), alicePW),
		chromedp.SendKeys(chromedp.ID("confirm"), alicePW),
	)
	b.submit(`form[action="/setup"] button[type=submit]`)
	if p := b.path(); p != "/account" {
		t.Fatalf("after the setup form: at %s, want /account; the page says:\n%s", p, b.text())
	}
	b.mustContain("root", "This device")

	b.open(link)
	b.mustContain("This setup link is invalid, expired or already used.")
}
