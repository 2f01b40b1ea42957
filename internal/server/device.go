package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"
)

// Device cookies (PW-06), as OWASP's Authentication Cheat Sheet describes
// them: a browser that signed in as a user gets a signed cookie naming
// that user. Its later sign-ins as that user are throttled under the
// cookie's own key, not under the account's key (which every stranger's
// guesses feed) nor its address's. So a stranger who keeps an account at
// its longest delay keeps out only clients that never signed in to it;
// the owner's own browser signs in. The cookie grants nothing by itself: the
// password is still checked, and a device's own wrong guesses delay it as
// any key's do. It is kept nowhere on the server: its value is a random
// nonce and an HMAC of the nonce and the account name under DeviceSecret.
const (
	deviceCookie  = "__Host-tether-device"
	deviceTTL     = 180 * 24 * time.Hour
	deviceNonce   = 16
	deviceMACSize = sha256.Size
	// deviceDomain separates these MACs from anything else the secret keys.
	deviceDomain = "tether-device-v1\x00"
)

// devices issues and checks device cookies.
type devices struct {
	key []byte
}

func newDevices(secret []byte) (*devices, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("DeviceSecret is %d bytes, need at least 32 random bytes", len(secret))
	}
	return &devices{key: append([]byte(nil), secret...)}, nil
}

// mac returns the MAC of nonce for the account canon.
func (d *devices) mac(canon string, nonce []byte) []byte {
	m := hmac.New(sha256.New, d.key)
	m.Write([]byte(deviceDomain))
	m.Write([]byte(canon))
	m.Write([]byte{0})
	m.Write(nonce)
	return m.Sum(nil)
}

// issue returns a new device cookie value for the account canon.
func (d *devices) issue(canon string) string {
	raw := make([]byte, deviceNonce, deviceNonce+deviceMACSize)
	rand.Read(raw) // never fails: crypto/rand crashes the program instead
	return base64.RawURLEncoding.EncodeToString(append(raw, d.mac(canon, raw)...))
}

// check returns the value and the nonce of r's device cookie if there is
// exactly one and it was issued for the account canon.
func (d *devices) check(r *http.Request, canon string) (value, nonce string, ok bool) {
	cs := r.CookiesNamed(deviceCookie)
	if len(cs) != 1 || canon == "" {
		return "", "", false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(cs[0].Value)
	if err != nil || len(raw) != deviceNonce+deviceMACSize {
		return "", "", false
	}
	if !hmac.Equal(raw[deviceNonce:], d.mac(canon, raw[:deviceNonce])) {
		return "", "", false
	}
	return cs[0].Value, base64.RawURLEncoding.EncodeToString(raw[:deviceNonce]), true
}

// setDeviceCookie sends value as the device cookie, valid for deviceTTL from now.
func setDeviceCookie(w http.ResponseWriter, value string) {
	http.SetCookie(w, &http.Cookie{
		Name:     deviceCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   int(deviceTTL / time.Second),
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}
