package session_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
)

// signInRequest is a POST from 192.0.2.7 carrying the given cookies.
func signInRequest(cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest("POST", "https://example.test/login", nil)
	r.RemoteAddr = "192.0.2.7:4242"
	r.Header.Set("User-Agent", "test-browser/1.0")
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

// loaded runs h behind m's middleware on r, as a real request would reach
// it, and returns the response.
func loaded(m *session.Manager, r *http.Request, h http.HandlerFunc) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	m.Middleware(h).ServeHTTP(w, r)
	return w
}

// sessionCookie returns the cookie named name that w sets, or nil.
func sessionCookie(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// SES-03: SignIn makes a new session, with the request's device, and
// ends the one the request came with.
func TestSES03_SignInEndsTheOldSession(t *testing.T) {
	m := newManager(t, newMemory(t), session.Config{})
	oldToken, _ := mustCreate(t, m, "user:alice", session.Meta{})
	old := &http.Cookie{Name: m.CookieName(signInRequest()), Value: oldToken}

	var s *session.Session
	w := loaded(m, signInRequest(old), func(w http.ResponseWriter, r *http.Request) {
		var err error
		if s, err = m.SignIn(w, r, "user:alice", func() error { return nil }); err != nil {
			t.Fatalf("SignIn: %v", err)
		}
	})
	c := sessionCookie(w, m.CookieName(signInRequest()))
	if c == nil || c.Value == oldToken || c.MaxAge < 0 {
		t.Fatalf("SignIn sent cookie %v, want a new session's", c)
	}
	if _, err := m.Load(ctx, oldToken); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("the request's old session after SignIn: got %v, want ErrNoSession", err)
	}
	got, err := m.Load(ctx, c.Value)
	if err != nil || got.ID() != s.ID() {
		t.Fatalf("the new cookie's session: got %v, %v; want %s", got, err, s.ID())
	}
	if got.UserAgent() != "test-browser/1.0" || got.IP() != "192.0.2.7" {
		t.Errorf("the new session's device: got %q from %q, want test-browser/1.0 from 192.0.2.7", got.UserAgent(), got.IP())
	}
}

// SES-12: a credential that changes while SignIn's check runs (here the
// check itself revokes the user, as another node's password change would)
// leaves no session and sends no cookie.
func TestSES12_SignInRacingRevocation(t *testing.T) {
	store := newMemory(t)
	m := newManager(t, store, session.Config{})
	other := newManager(t, store, session.Config{})
	w := httptest.NewRecorder()
	_, err := m.SignIn(w, signInRequest(), "user:alice", func() error {
		return other.RevokeUser(ctx, "user:alice", nil) // after Begin, before Create
	})
	if !errors.Is(err, session.ErrRevoked) {
		t.Fatalf("SignIn racing a revocation: got %v, want ErrRevoked", err)
	}
	if c := sessionCookie(w, m.CookieName(signInRequest())); c != nil {
		t.Errorf("SignIn racing a revocation sent a cookie: %v", c)
	}
	if list, err := m.List(ctx, "user:alice"); err != nil || len(list) != 0 {
		t.Errorf("sessions after the refused sign-in: got %d, %v; want none", len(list), err)
	}
}

// A check that refuses stops the sign-in, its error returned as it is.
func TestSignInCheckRefuses(t *testing.T) {
	m := newManager(t, newMemory(t), session.Config{})
	wrong := errors.New("wrong password")
	w := httptest.NewRecorder()
	if _, err := m.SignIn(w, signInRequest(), "user:alice", func() error { return wrong }); err != wrong {
		t.Fatalf("SignIn with a refusing check: got %v, want %v", err, wrong)
	}
	if c := sessionCookie(w, m.CookieName(signInRequest())); c != nil {
		t.Errorf("a refused sign-in sent a cookie: %v", c)
	}
	if list, _ := m.List(ctx, "user:alice"); len(list) != 0 {
		t.Errorf("a refused sign-in left %d sessions, want none", len(list))
	}
}

// SES-08: SignOut ends the session, clears the cookie and sends
// Clear-Site-Data without "cookies"; with the store down it still clears
// the cookie and says the end is pending.
func TestSES08_SignOut(t *testing.T) {
	store := &recordingStore{Store: newMemory(t)}
	m := newManager(t, store, session.Config{})
	signOut := func(token string) (*httptest.ResponseRecorder, error) {
		w := httptest.NewRecorder()
		r := signInRequest()
		if token != "" {
			r.AddCookie(&http.Cookie{Name: m.CookieName(signInRequest()), Value: token})
		}
		err := m.SignOut(w, r)
		if c := sessionCookie(w, m.CookieName(signInRequest())); c == nil || c.MaxAge >= 0 {
			t.Errorf("SignOut's cookie: got %v, want it expired", c)
		}
		if got := w.Header().Get("Clear-Site-Data"); got != `"cache", "storage"` {
			t.Errorf("SignOut's Clear-Site-Data: got %q, want \"cache\", \"storage\"", got)
		}
		return w, err
	}

	token, _ := mustCreate(t, m, "user:alice", session.Meta{})
	if _, err := signOut(token); err != nil {
		t.Fatalf("SignOut: %v", err)
	}
	if _, err := m.Load(ctx, token); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("session after SignOut: got %v, want ErrNoSession", err)
	}
	if _, err := signOut(""); err != nil {
		t.Errorf("SignOut without a cookie: %v", err)
	}
	if _, err := signOut("not a token"); err != nil {
		t.Errorf("SignOut with a malformed cookie: %v", err)
	}

	token, _ = mustCreate(t, m, "user:alice", session.Meta{})
	store.setFail(errors.New("store down"))
	if _, err := signOut(token); !errors.Is(err, session.ErrPending) {
		t.Fatalf("SignOut with the store down: got %v, want ErrPending", err)
	}
	store.setFail(nil)
	testkit.WaitFor(t, "the pending sign-out", func() bool {
		_, err := m.Load(ctx, token)
		return errors.Is(err, session.ErrNoSession)
	})
}

// CSRF-02: the binding is the session's ID, and nil without a session.
func TestCSRF02_CSRFBinding(t *testing.T) {
	m := newManager(t, newMemory(t), session.Config{})
	if b := session.CSRFBinding(signInRequest()); b != nil {
		t.Errorf("CSRFBinding without a session: got %q, want nil", b)
	}
	token, s := mustCreate(t, m, "user:alice", session.Meta{})
	r := signInRequest(&http.Cookie{Name: m.CookieName(signInRequest()), Value: token})
	loaded(m, r, func(w http.ResponseWriter, r *http.Request) {
		if b := session.CSRFBinding(r); !bytes.Equal(b, []byte(s.ID())) {
			t.Errorf("CSRFBinding: got %q, want the session's ID %q", b, s.ID())
		}
	})
}
