package browser

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

const newPW = "a brand new passphrase"

// TestCHG02_OtherBrowserSignedOut: two browsers signed in as the same user.
// When the first changes the password, the second's next page is the
// sign-in page (CHG-02), where the old password no longer works (with the
// same words as for a user who doesn't exist, PW-05). The same
// when the first signs out all other devices, after confirming, and when it
// signs out the second from the list of devices (SES-10). The first stays
// signed in throughout.
func TestCHG02_OtherBrowserSignedOut(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}})
	laptop, phone := newBrowser(t, "laptop"), newBrowser(t, "phone")
	laptop.signIn(srv, "alice", alicePW)
	phone.signIn(srv, "alice", alicePW)

	// The password, changed on the laptop.
	laptop.open(srv.URL + "/account")
	laptop.do(
		chromedp.SendKeys(chromedp.ID("current"), alicePW),
		chromedp.SendKeys(chromedp.ID("new"), newPW),
		chromedp.SendKeys(chromedp.ID("confirm"), newPW),
	)
	laptop.submit(`form[action="/account/password"] button[type=submit]`)
	if p := laptop.path(); p != "/account?done=password" {
		t.Fatalf("after changing the password: at %s, want /account?done=password; the page says:\n%s", p, laptop.text())
	}
	laptop.mustContain("Your password was changed.", "No other device is signed in.")
	phone.mustBeSignedOut(srv, "after the password change")
	phone.fillSignIn(srv, "alice", alicePW)
	phone.mustContain("The username or password is wrong.")
	// The same page, word for word, for a user who doesn't exist (PW-05).
	wrongPassword := phone.text()
	phone.fillSignIn(srv, "nobody", alicePW)
	if unknownUser := phone.text(); unknownUser != wrongPassword {
		t.Errorf("the sign-in page tells an unknown user from a wrong password:\n%s\n---\n%s", wrongPassword, unknownUser)
	}
	phone.signIn(srv, "alice", newPW)

	// All other devices, signed out from the laptop, after confirming.
	laptop.open(srv.URL + "/account")
	const confirm = `details.confirm button[type=submit]`
	laptop.mustContain("Sign out all other devices")
	if laptop.visible(confirm) {
		t.Errorf("the confirmation button shows before the disclosure is opened")
	}
	laptop.do(chromedp.Click(chromedp.CSS("details.confirm summary"), chromedp.NodeVisible))
	if !laptop.visible(confirm) {
		t.Fatalf("the confirmation button doesn't show once the disclosure is opened")
	}
	laptop.mustContain("This signs out 1 other device at once", "Yes, sign out 1 other device")
	laptop.submit(confirm)
	if p := laptop.path(); p != "/account?done=others" {
		t.Fatalf("after signing out the other devices: at %s, want /account?done=others", p)
	}
	laptop.mustContain("Every other device was signed out.", "No other device is signed in.")
	phone.mustBeSignedOut(srv, "after 'sign out all other devices'")

	// One device, signed out from the list.
	phone.signIn(srv, "alice", newPW)
	id := get(phone, chromedp.Evaluate[string](`fetch('/api/v1/me').then(r => r.json()).then(me => me.session.id)`, chromedp.EvalAwaitPromise))
	laptop.open(srv.URL + "/account")
	laptop.submit(fmt.Sprintf(`form[action="/account/sessions/%s/revoke"] button[type=submit]`, id))
	if p := laptop.path(); p != "/account?done=revoked" {
		t.Fatalf("after signing out the phone: at %s, want /account?done=revoked", p)
	}
	laptop.mustContain("That device was signed out.", "No other device is signed in.")
	phone.mustBeSignedOut(srv, "after being signed out from the laptop")

	laptop.open(srv.URL + "/account")
	if p := laptop.path(); p != "/account" {
		t.Errorf("the laptop: /account shows %s, want still signed in", p)
	}
}

// mustBeSignedOut checks that the browser's next page is the sign-in page.
func (b *browser) mustBeSignedOut(srv *tether, when string) {
	b.t.Helper()
	b.open(srv.URL + "/account")
	if p := b.path(); p != "/login" {
		b.t.Fatalf("%s, %s: /account shows %s, want the sign-in page", b.name, when, p)
	}
}

// visible reports whether the element sel is rendered on the page.
func (b *browser) visible(sel string) bool {
	b.t.Helper()
	return get(b, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		return el !== null && el.checkVisibility({visibilityProperty: true});
	})()`, sel)))
}
