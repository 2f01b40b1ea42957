package server

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// testDevices returns devices under a fixed secret, and a device cookie
// value of theirs for canon with a fixed nonce, so that seeds are the same
// on every run.
func testDevices(t testing.TB) (*devices, func(canon string) string) {
	d, err := newDevices(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return d, func(canon string) string {
		nonce := bytes.Repeat([]byte{1}, deviceNonce)
		return base64.RawURLEncoding.EncodeToString(append(nonce, d.mac(canon, nonce)...))
	}
}

// deviceCookieCases are Cookie headers and whether alice's device cookie
// is in them.
func deviceCookieCases(value func(string) string) []struct {
	name, header string
	ok           bool
} {
	alice := value("alice")
	return []struct {
		name, header string
		ok           bool
	}{
		{"alice's", deviceCookie + "=" + alice, true},
		{"beside others", "a=1; " + deviceCookie + "=" + alice + "; b=2", true},
		{"none", "", false},
		{"empty", deviceCookie + "=", false},
		{"bob's", deviceCookie + "=" + value("bob"), false},
		{"alice's twice", deviceCookie + "=" + alice + "; " + deviceCookie + "=" + alice, false},
		{"beside another", deviceCookie + "=" + alice + "; " + deviceCookie + "=x", false},
		{"padded", deviceCookie + "=" + alice + "=", false},
		{"standard alphabet", deviceCookie + "=" + strings.NewReplacer("-", "+", "_", "/").Replace(value("alice")) + "+/", false},
		{"truncated", deviceCookie + "=" + alice[:len(alice)-1], false},
		{"a byte more", deviceCookie + "=" + base64.RawURLEncoding.EncodeToString(append(mustDecode(alice), 0)), false},
		{"quoted", deviceCookie + `="` + alice + `"`, true}, // net/http strips the quotes of a cookie value
		{"another name's case", strings.ToLower(deviceCookie) + "=" + alice, false},
	}
}

func mustDecode(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// checkDeviceCookie is d.check of a request with that Cookie header.
func checkDeviceCookie(d *devices, header, canon string) (value, nonce string, ok bool) {
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	if header != "" {
		r.Header.Set("Cookie", header)
	}
	return d.check(r, canon)
}

// PW-06: a device cookie counts only when it is the one cookie of its
// name, exactly as issued, for the account it names.
func TestPW06_DeviceCookieCheck(t *testing.T) {
	d, value := testDevices(t)
	for _, tc := range deviceCookieCases(value) {
		_, nonce, ok := checkDeviceCookie(d, tc.header, "alice")
		if ok != tc.ok {
			t.Errorf("%s: got %v, want %v", tc.name, ok, tc.ok)
		}
		if ok && nonce != base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, deviceNonce)) {
			t.Errorf("%s: nonce %q, want the cookie's", tc.name, nonce)
		}
	}
	if _, _, ok := checkDeviceCookie(d, deviceCookie+"="+d.issue("alice"), "alice"); !ok {
		t.Error("a cookie just issued for alice is refused")
	}
	if _, _, ok := checkDeviceCookie(d, deviceCookie+"="+value(""), ""); ok {
		t.Error("a cookie for no account is accepted")
	}
}

// FuzzDeviceCookie: whatever the Cookie header and the account, check
// never panics, and what it accepts is one cookie of the name, in strict
// unpadded base64url of a nonce and the MAC for that account: its value,
// and its nonce as check returns it, are the cookie's own.
func FuzzDeviceCookie(f *testing.F) {
	d, value := testDevices(f)
	for _, tc := range deviceCookieCases(value) {
		f.Add(tc.header, "alice")
		f.Add(tc.header, "bob")
	}
	f.Fuzz(func(t *testing.T, header, canon string) {
		got, nonce, ok := checkDeviceCookie(d, header, canon)
		if !ok {
			if got != "" || nonce != "" {
				t.Fatalf("check(%q, %q): refused, but returned %q, %q", header, canon, got, nonce)
			}
			return
		}
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		r.Header.Set("Cookie", header)
		cs := r.CookiesNamed(deviceCookie)
		if len(cs) != 1 || cs[0].Value != got || canon == "" {
			t.Fatalf("check(%q, %q): accepted %q among cookies %v", header, canon, got, cs)
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(got)
		if err != nil || len(raw) != deviceNonce+deviceMACSize || base64.RawURLEncoding.EncodeToString(raw) != got {
			t.Fatalf("check(%q, %q): accepted %q, not the encoding of a nonce and a MAC", header, canon, got)
		}
		if nonce != base64.RawURLEncoding.EncodeToString(raw[:deviceNonce]) ||
			!bytes.Equal(raw[deviceNonce:], d.mac(canon, raw[:deviceNonce])) {
			t.Fatalf("check(%q, %q): accepted %q with nonce %q", header, canon, got, nonce)
		}
		if _, _, other := checkDeviceCookie(d, header, canon+"x"); other {
			t.Fatalf("check(%q): the cookie of %q also counts for %q", header, canon, canon+"x")
		}
	})
}
