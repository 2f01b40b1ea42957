package server

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/session"
)

// The pages: server-rendered html/template, a small stylesheet, no
// JavaScript. Thin front ends over the actions, like the JSON API.

//go:embed templates/*.html static/*
var assets embed.FS

// page is what every template gets.
type page struct {
	Title string
	// SignOutCSRF is the session's csrf token for the sign-out button in
	// the header; empty when signed out, which hides the button.
	SignOutCSRF string
	User        *account.User // shown in the header when known
	CSRF        string        // the token for the page's own forms
	Notice      string
	// Error is what went wrong, shown next to the form ErrorIn names
	// ("login", "setup", "password", "devices"), or as the error page's
	// message. Invalid is the id of the field it is about, if any: that
	// field is marked (aria-invalid), described by the error and focused.
	Error   string
	ErrorIn string
	Invalid string
	Focus   string // the id of the field to focus when none is invalid
	// HTTPS, when not empty, is the https:// address of a page sent
	// over plain HTTP, where signing in can't work (transport.go).
	HTTPS string

	Username   string       // sign-in and setup forms
	Return     string       // sign-in form: where to go after, checked (returnto.go)
	SetupToken string       // setup form
	SetupHelp  bool         // error page: how an operator creates an admin without a link
	Devices    []deviceView // account page: the user's sessions, this one first
	Others     int          // account page: how many of Devices are not this one
	MinLength  int          // password forms: the policy's fewest characters

	// The account page's personal access tokens, when the server has
	// them (PATsOn): the list, the form's values after an error, the
	// longest lifetime in days, and a token just made, shown this once.
	PATsOn     bool
	PATs       []patRow
	PATForm    patRequest
	PATMaxDays int
	NewPAT     string
	NewPATName string
}

// patRow is a personal access token as the account page lists it.
type patRow struct {
	patView
	Created  timeView
	LastUsed *timeView // nil: never used
}

// FormDays is the lifetime the token form shows: the one asked for, else
// the default's.
func (p *page) FormDays() int {
	if d := p.PATForm.ExpiresInDays; d != nil && *d > 0 {
		return *d
	}
	return min(int(DefaultPATTTL/(24*time.Hour)), p.PATMaxDays)
}

// deviceView is a session as the account page shows it (SES-10): times
// relative to now with the exact time alongside.
type deviceView struct {
	sessionView
	Created  timeView
	LastSeen timeView
}

// timeView is a time as the pages show it: "5 minutes ago", with the exact
// time for a title attribute and a <time datetime>.
type timeView struct {
	Ago   string
	Exact string
	ISO   string
}

// notices are the messages a redirect after a form can ask for with
// ?done=...; nothing else of the query is shown.
var notices = map[string]string{
	"password":    "Your password was changed. Every other device was signed out.",
	"revoked":     "That device was signed out.",
	"others":      "Every other device was signed out.",
	"signedout":   "You are signed out.",
	"pat-revoked": "That personal access token was revoked: it no longer works anywhere.",
	"signedout-pending": "You are signed out in this browser. The server could not reach its session store to end the session there too; " +
		"it will as soon as the store answers.",
}

// Field returns the attributes of the form field with that id: aria-invalid,
// and the error first among the ids describedBy of what describes it, when
// the page's error is about it; autofocus when it is the field to fix, or
// to fill first. The ids are the templates' own, never input.
func (p *page) Field(id string, describedBy ...string) template.HTMLAttr {
	var b strings.Builder
	if p.Invalid == id {
		b.WriteString(` aria-invalid="true"`)
		describedBy = append([]string{"form-error"}, describedBy...)
	}
	if len(describedBy) > 0 {
		b.WriteString(` aria-describedby="` + strings.Join(describedBy, " ") + `"`)
	}
	if cmp.Or(p.Invalid, p.Focus) == id {
		b.WriteString(" autofocus")
	}
	return template.HTMLAttr(b.String())
}

// parsePages parses each page's template with the shared layout.
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"when": func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") },
		"plural": func(n int, one, many string) string {
			if n == 1 {
				return one
			}
			return many
		},
	}
	pages := make(map[string]*template.Template)
	for _, name := range []string{"login", "setup", "account", "error"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("server: parse page %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// newPage starts the data of a page for r: the header's sign-out button
// when r has a session, and the notice ?done= asks for.
func (s *server) newPage(r *http.Request, title string) *page {
	p := &page{Title: title, Notice: notices[r.URL.Query().Get("done")]}
	if s.plainHTTP(r) {
		p.HTTPS = httpsURL(r)
	}
	if sess := session.FromContext(r.Context()); sess != nil {
		p.SignOutCSRF = s.tokenFor(sess)
	}
	return p
}

// render writes the page name with status. It renders into a buffer first,
// so a template error is a clean 500, not half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.ErrorContext(r.Context(), "rendering page", "page", name, "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes()) // an error here means the client went away
}

// failPage answers err as a page: a redirect to the sign-in page when
// signed out, else a page saying what went wrong.
func (s *server) failPage(w http.ResponseWriter, r *http.Request, err error) {
	p := s.problemFor(r, err)
	if p == errSignedOut {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	setRetryAfter(w.Header(), p.retryAfter)
	data := s.newPage(r, "Something went wrong")
	data.Error = pageMessage(p)
	data.SetupHelp = p == errSetupInvalid
	s.render(w, r, p.status, "error", data)
}

// formPage re-renders a form page after err, with its error next to the
// form, on the field it is about, and a fresh token for its form; fill
// keeps what may be kept of what the user typed (never a password).
func (s *server) formPage(w http.ResponseWriter, r *http.Request, err error, name, title string, fill func(*page)) {
	p := s.problemFor(r, err)
	if p == errSignedOut || p.status == http.StatusServiceUnavailable {
		s.failPage(w, r, err)
		return
	}
	setRetryAfter(w.Header(), p.retryAfter)
	data := s.newPage(r, title)
	data.Error, data.ErrorIn, data.Invalid = pageMessage(p), name, p.field
	fill(data)
	s.render(w, r, p.status, name, data)
}

func handleHome() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to := "/login"
		if session.FromContext(r.Context()) != nil {
			to = "/account"
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
	})
}

func handleLoginPage(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := s.newPage(r, "Sign in")
		p.CSRF = s.csrf.PreSessionToken(w, r)
		p.Focus = "username"
		p.Return, _ = s.returnTo(r.URL.Query().Get("return"))
		s.render(w, r, http.StatusOK, "login", p)
	})
}

func handleLoginForm(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PostFormValue("username")
		back, _ := s.returnTo(r.PostFormValue("return")) // GW-01: "" when not to be followed
		_, _, err := s.signIn(w, r, name, r.PostFormValue("password"))
		if !utf8.ValidString(name) { // refused (PW-09), and not shown back
			name = ""
		}
		if err != nil {
			s.formPage(w, r, err, "login", "Sign in", func(p *page) {
				p.Username = name
				p.Focus = "password"
				if name == "" {
					p.Focus = "username"
				}
				p.CSRF = s.csrf.PreSessionToken(w, r)
				p.Return = back
			})
			return
		}
		if back == "" {
			back = "/account"
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
	})
}

func handleSetupPage(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("token")
		open, err := s.setupOpen(r.Context(), token)
		if err == nil && !open {
			err = errSetupInvalid
		}
		if err != nil {
			s.failPage(w, r, err)
			return
		}
		p := s.newPage(r, "Create the first admin")
		p.CSRF = s.csrf.PreSessionToken(w, r)
		p.SetupToken = token
		p.MinLength = s.minLength()
		p.Focus = "username"
		s.render(w, r, http.StatusOK, "setup", p)
	})
}

func handleSetupForm(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, name, pw := r.PostFormValue("token"), r.PostFormValue("username"), r.PostFormValue("password")
		var err error
		if pw != r.PostFormValue("confirm") {
			err = errPasswordsDiffer.about("password")
		} else {
			_, _, err = s.setupAdmin(w, r, token, name, pw)
		}
		switch {
		case err == nil:
			http.Redirect(w, r, "/account", http.StatusSeeOther)
		case errors.Is(err, errSetupInvalid):
			s.failPage(w, r, err)
		default:
			s.formPage(w, r, err, "setup", "Create the first admin", func(p *page) {
				p.Username = name
				p.Focus = "password"
				p.SetupToken = token
				p.MinLength = s.minLength()
				p.CSRF = s.csrf.PreSessionToken(w, r)
			})
		}
	})
}

// accountPage renders the account page: who you are, your devices, your
// personal access tokens, and the forms to sign devices out, make and
// revoke tokens and change the password; with the error of a failed
// form, if any, next to that form ("devices", "tokens" or "password").
// fill, if not nil, adds what the form's handler has to show.
func (s *server) accountPage(w http.ResponseWriter, r *http.Request, form string, formErr error, fill func(*page)) {
	sess, u, list, err := s.sessionsOf(r)
	if err != nil {
		s.failPage(w, r, err)
		return
	}
	p := s.newPage(r, "Your account")
	p.User = u
	p.CSRF = p.SignOutCSRF
	now := time.Now()
	p.Devices = viewDevices(viewSessions(list, sess), now)
	for _, d := range p.Devices {
		if !d.Current {
			p.Others++
		}
	}
	p.MinLength = s.minLength()
	if s.pats != nil {
		_, pats, err := s.patsOf(r)
		if err != nil {
			s.failPage(w, r, err)
			return
		}
		p.PATsOn, p.PATMaxDays = true, int(s.patMaxTTL/(24*time.Hour))
		for _, t := range pats {
			row := patRow{patView: viewPAT(t), Created: viewTime(t.Created, now)}
			if !t.LastUsed.IsZero() {
				last := viewTime(t.LastUsed, now)
				row.LastUsed = &last
			}
			p.PATs = append(p.PATs, row)
		}
	}
	if fill != nil {
		fill(p)
	}
	status := http.StatusOK
	if formErr != nil {
		pr := s.problemFor(r, formErr)
		status, p.Error, p.ErrorIn, p.Invalid = pr.status, pageMessage(pr), form, pr.field
		setRetryAfter(w.Header(), pr.retryAfter)
		if form == "password" {
			p.Focus = "current" // every password field is empty again
		}
	}
	s.render(w, r, status, "account", p)
}

func handleAccountPage(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.accountPage(w, r, "", nil, nil)
	})
}

func handleRevokePage(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		own, err := s.revokeSession(w, r, r.PathValue("id"))
		switch {
		case err != nil:
			s.accountPage(w, r, "devices", err, nil)
		case own:
			http.Redirect(w, r, "/login?done=signedout", http.StatusSeeOther)
		default:
			http.Redirect(w, r, "/account?done=revoked", http.StatusSeeOther)
		}
	})
}

func handleRevokeOthersPage(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.revokeOthers(r); err != nil {
			s.accountPage(w, r, "devices", err, nil)
			return
		}
		http.Redirect(w, r, "/account?done=others", http.StatusSeeOther)
	})
}

func handlePasswordPage(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next := r.PostFormValue("new")
		if next != r.PostFormValue("confirm") {
			s.accountPage(w, r, "password", errPasswordsDiffer.about("new"), nil)
			return
		}
		if _, err := s.changePassword(w, r, r.PostFormValue("current"), next); err != nil {
			s.accountPage(w, r, "password", err, nil)
			return
		}
		http.Redirect(w, r, "/account?done=password", http.StatusSeeOther)
	})
}

func handleLogoutPage(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pending, err := s.signOut(w, r)
		switch {
		case err != nil:
			s.failPage(w, r, err)
		case pending:
			http.Redirect(w, r, "/login?done=signedout-pending", http.StatusSeeOther)
		default:
			http.Redirect(w, r, "/login?done=signedout", http.StatusSeeOther)
		}
	})
}

// handleStatic serves the stylesheet, cacheable for an hour; no directory
// listings.
func handleStatic() http.Handler {
	files, err := fs.Sub(assets, "static")
	if err != nil {
		panic(err) // "static" is a valid path: fs.Sub can't fail
	}
	h := http.StripPrefix("/static", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// minLength is the fewest characters the policy allows in a new password,
// shown next to the password fields.
func (s *server) minLength() int {
	if s.policy.MinLength == 0 {
		return 8 // password.Policy's default
	}
	return s.policy.MinLength
}

// pageMessages replace, on a page, the messages written for programs:
// a person can't send a header, but can reload the form.
var pageMessages = map[string]string{
	errCSRFMissing.code: "This form has expired. Reload the page and send it again.",
	errCSRFInvalid.code: "This form belongs to an earlier session or has expired. Reload the page and send it again.",
}

// pageMessage is p's message for a page: with how long to wait when the
// request was throttled (PW-06), which Retry-After tells programs but not
// people.
func pageMessage(p *problem) string {
	if m, ok := pageMessages[p.code]; ok {
		return m
	}
	if p.status != http.StatusTooManyRequests || p.retryAfter <= 0 {
		return p.message
	}
	secs := int((p.retryAfter + time.Second - 1) / time.Second)
	if secs == 1 {
		return p.message + " Try again in a second."
	}
	if secs < 120 {
		return fmt.Sprintf("%s Try again in %d seconds.", p.message, secs)
	}
	return fmt.Sprintf("%s Try again in %d minutes.", p.message, (secs+59)/60)
}

// viewDevices describes sessions for the account page, the current one
// first, the others most recently active first.
func viewDevices(sessions []sessionView, now time.Time) []deviceView {
	out := make([]deviceView, len(sessions))
	for i, s := range sessions {
		out[i] = deviceView{
			sessionView: s,
			Created:     viewTime(s.Created, now),
			LastSeen:    viewTime(s.LastSeen, now),
		}
	}
	slices.SortStableFunc(out, func(a, b deviceView) int {
		switch {
		case a.Current != b.Current:
			if a.Current {
				return -1
			}
			return 1
		default:
			return b.sessionView.LastSeen.Compare(a.sessionView.LastSeen)
		}
	})
	return out
}

func viewTime(t, now time.Time) timeView {
	return timeView{
		Ago:   ago(now.Sub(t), t),
		Exact: t.UTC().Format("Mon 2 Jan 2006, 15:04:05 UTC"),
		ISO:   t.UTC().Format(time.RFC3339),
	}
}

// ago says how long d is, as in "5 minutes ago"; t is the time d ago, shown
// as a date once it is a month old. A time in the future (another node's
// clock a little ahead) is "just now".
func ago(d time.Duration, t time.Time) string {
	n := func(v time.Duration, unit string) string {
		if v == 1 {
			return "1 " + unit + " ago"
		}
		return fmt.Sprintf("%d %ss ago", v, unit)
	}
	const day = 24 * time.Hour
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return n(d/time.Minute, "minute")
	case d < day:
		return n(d/time.Hour, "hour")
	case d < 2*day:
		return "yesterday"
	case d < 30*day:
		return n(d/day, "day")
	}
	return "on " + t.UTC().Format("2 Jan 2006")
}

// deviceName summarises a user agent for the list of signed-in devices:
// "Firefox on Windows", "Safari on iPhone", "curl". It only has to be
// recognisable to the person whose device it is; the full user agent is
// shown with it. Unknown agents are named by their first product token.
func deviceName(ua string) string {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return "Unknown device"
	}
	has := func(tokens ...string) bool {
		for _, tok := range tokens {
			if strings.Contains(ua, tok) {
				return true
			}
		}
		return false
	}
	var browser string
	switch {
	case has("Edg/", "EdgA/", "EdgiOS/"):
		browser = "Edge"
	case has("OPR/", "Opera"):
		browser = "Opera"
	case has("SamsungBrowser/"):
		browser = "Samsung Internet"
	case has("Vivaldi/"):
		browser = "Vivaldi"
	case has("Firefox/", "FxiOS/"):
		browser = "Firefox"
	case has("HeadlessChrome/"):
		browser = "Headless Chrome"
	case has("CriOS/", "Chrome/"):
		browser = "Chrome"
	case has("Chromium/"):
		browser = "Chromium"
	case has("Safari/", "AppleWebKit/") && has("iPhone", "iPad", "Macintosh"):
		browser = "Safari"
	}
	var system string
	switch {
	case has("iPhone"):
		system = "iPhone"
	case has("iPad"):
		system = "iPad"
	case has("Android"):
		system = "Android"
	case has("Windows"):
		system = "Windows"
	case has("CrOS"):
		system = "ChromeOS"
	case has("Macintosh", "Mac OS X"):
		system = "macOS"
	case has("Linux"):
		system = "Linux"
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case strings.HasPrefix(ua, "Mozilla/") && system != "":
		return "A browser on " + system
	}
	// A program: its product token, "curl/8.5.0" -> "curl".
	product, _, _ := strings.Cut(ua, " ")
	product, _, _ = strings.Cut(product, "/")
	switch strings.ToLower(product) {
	case "go-http-client":
		return "A Go program"
	case "python-requests", "python-urllib", "python-httpx":
		return "A Python program"
	case "": // "/1.0": no name to show
		return "Unknown device"
	}
	if r := []rune(product); len(r) > 40 {
		product = string(r[:40]) + "…"
	}
	return product
}
