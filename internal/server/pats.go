package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// Personal access tokens (issue 11): a person makes, lists and revokes
// their own, on the account page and through the JSON API; PATCheck
// (patcheck.go) checks them. They are served when Config.PATs is set.
//
// Decisions:
//
//   - A token is shown once, in the answer that made it; the store keeps
//     its SHA-256 (SES-02's rule), and no list shows either.
//   - Its expiry is mandatory: DefaultPATTTL unless asked, never past
//     Config.PATMaxTTL (--pat-max-ttl); asking for more is refused rather
//     than cut, so that nobody believes a token lives longer than it does.
//   - Its generation is its user's token subject's, read before the
//     session and the account are checked, as sign-ins order it (SES-12):
//     a password change, a disable or a revocation of the user's tokens
//     racing the creation kills the new token too (CHG-03).
//   - Revoking puts its id on the token denylist until its expiry (JWT-09),
//     which reaches every node's cache through the feed, and then deletes
//     it. Another user's token, or one already gone, is 404.
//   - Each user has at most MaxPATsPerUser, so that listing them stays
//     cheap (SES-13's reasoning).

// The limits of personal access tokens.
const (
	// DefaultPATTTL is a new token's lifetime when none is asked for (at
	// most Config.PATMaxTTL).
	DefaultPATTTL = 30 * 24 * time.Hour
	// DefaultPATMaxTTL is Config.PATMaxTTL's default: a year.
	DefaultPATMaxTTL = 8760 * time.Hour
	// MaxPATsPerUser caps each user's tokens.
	MaxPATsPerUser = 100
	// MaxPATScopes caps the scopes of one token, and maxScopeLen each
	// scope's length.
	MaxPATScopes = 32
	maxScopeLen  = 128
)

// patRequest is the body of POST /api/v1/tokens: a name, scopes, and at
// most one of expires_in_days and expires_at (neither: DefaultPATTTL).
type patRequest struct {
	Name          string     `json:"name"`
	Scopes        []string   `json:"scopes"`
	ExpiresInDays *int       `json:"expires_in_days"`
	ExpiresAt     *time.Time `json:"expires_at"`
}

// patView is a token as the API and the account page show it: never the
// token or its hash.
type patView struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Scopes   []string   `json:"scopes"`
	Created  time.Time  `json:"created"`
	Expires  time.Time  `json:"expires"`
	LastUsed *time.Time `json:"last_used"` // null: never used
}

func viewPAT(p *account.PAT) patView {
	v := patView{ID: p.ID, Name: p.Name, Scopes: p.Scopes, Created: p.Created, Expires: p.Expires}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	if !p.LastUsed.IsZero() {
		v.LastUsed = &p.LastUsed
	}
	return v
}

// The problems of personal access tokens.
var (
	errNoSuchPAT   = &problem{status: http.StatusNotFound, code: "not_found", message: "You have no such personal access token; it may have been revoked already."}
	errTooManyPATs = &problem{status: http.StatusConflict, code: "too_many_tokens",
		message: "You have " + strconv.Itoa(MaxPATsPerUser) + " personal access tokens, the most there may be: revoke one first."}
	errPATName = &problem{status: http.StatusBadRequest, code: "invalid_name",
		message: "Name the token with 1 to " + strconv.Itoa(account.MaxPATNameLen) + " bytes of text, without control characters.", field: "name"}
	errPATScopes = &problem{status: http.StatusBadRequest, code: "invalid_scope",
		message: "Give at most " + strconv.Itoa(MaxPATScopes) + " scopes, each 1 to " + strconv.Itoa(maxScopeLen) +
			" printable ASCII characters without spaces, quotes or backslashes.", field: "scopes"}
	errPATTwoExpiries = &problem{status: http.StatusBadRequest, code: "invalid_expiry",
		message: "Give expires_in_days or expires_at, not both.", field: "expires_in_days"}
)

// newPATRecord checks req at now against the longest lifetime maxTTL and
// returns the token to create, without its user, hash and generation.
func newPATRecord(req patRequest, now time.Time, maxTTL time.Duration) (*account.PAT, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > account.MaxPATNameLen || !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) {
		return nil, errPATName
	}
	if len(req.Scopes) > MaxPATScopes || slices.ContainsFunc(req.Scopes, func(s string) bool { return !isScopeToken(s) || len(s) > maxScopeLen }) {
		return nil, errPATScopes
	}
	maxDays := int(maxTTL / (24 * time.Hour))
	expires := now.Add(min(DefaultPATTTL, maxTTL))
	switch {
	case req.ExpiresInDays != nil && req.ExpiresAt != nil:
		return nil, errPATTwoExpiries
	case req.ExpiresInDays != nil:
		days := *req.ExpiresInDays
		if days < 1 || days > maxDays {
			return nil, &problem{status: http.StatusBadRequest, code: "invalid_expiry", field: "expires_in_days",
				message: fmt.Sprintf("A token expires in 1 to %d days.", maxDays)}
		}
		expires = now.AddDate(0, 0, days)
	case req.ExpiresAt != nil:
		expires = *req.ExpiresAt
		if !expires.After(now) || expires.Sub(now) > maxTTL {
			return nil, &problem{status: http.StatusBadRequest, code: "invalid_expiry", field: "expires_at",
				message: fmt.Sprintf("A token expires after now and at most %d days from now.", maxDays)}
		}
	}
	if expires.Sub(now) > maxTTL { // days of 25 hours, at a change of clocks
		expires = now.Add(maxTTL)
	}
	return &account.PAT{Name: name, Scopes: req.Scopes, Expires: expires}, nil
}

// isControl reports whether r is a control character.
func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 }

// createPAT makes a personal access token for the request's user and
// returns it, to be shown once, with what the store keeps.
func (s *server) createPAT(r *http.Request, req patRequest) (string, *account.PAT, error) {
	const event = "pat-create"
	ctx := r.Context()
	p, err := newPATRecord(req, s.now(), s.patMaxTTL)
	if err != nil {
		return "", nil, err
	}
	sess := session.FromContext(ctx)
	if sess == nil {
		return "", nil, errSignedOut
	}
	// The generation first, then the checks (SES-12's order): a change
	// that ends the user's tokens after this read ends this one.
	gen, err := s.sessions.SubjectGeneration(ctx, token.UserSubject(sess.UserID()))
	if err != nil {
		return "", nil, fmt.Errorf("create personal access token: %w", err)
	}
	u, err := s.stillSignedIn(r)
	if err != nil {
		return "", nil, err
	}
	failed := func(reason string, err error) (string, *account.PAT, error) {
		s.audit(r, event, u.Name, "user_id", u.ID, "outcome", "failure", "reason", reason)
		return "", nil, err
	}
	list, err := bounded(ctx, s.storeTimeout, func(ctx context.Context) ([]*account.PAT, error) { return s.pats.PATList(ctx, u.ID) })
	switch {
	case err != nil:
		return failed("store error", fmt.Errorf("create personal access token: %w", err))
	case len(list) >= MaxPATsPerUser:
		return failed("too many tokens", errTooManyPATs)
	}
	tok, h := account.NewPAT()
	p.UserID, p.Hash, p.Gen = u.ID, h, gen
	err = boundedErr(ctx, s.storeTimeout, func(ctx context.Context) error { return s.pats.CreatePAT(ctx, p) })
	switch {
	case errors.Is(err, account.ErrNotFound):
		return failed("no such user", errSignedOut)
	case err != nil:
		return failed("store error", fmt.Errorf("create personal access token: %w", err))
	}
	s.audit(r, event, u.Name, "user_id", u.ID, "outcome", "success", "pat_id", p.ID,
		"scopes", strings.Join(p.Scopes, " "), "expires", p.Expires.Unix())
	return tok, p, nil
}

// stillSignedIn returns the request's user as the stores have them now:
// the account read afresh (not disabled, not gone) and the session still
// among the user's live ones in the session store, not a cache.
func (s *server) stillSignedIn(r *http.Request) (*account.User, error) {
	sess, u, err := s.whoamiFresh(r)
	if err != nil {
		return nil, err
	}
	switch live, err := s.sessionLive(r.Context(), u.ID, sess.ID()); {
	case err != nil:
		return nil, err
	case !live:
		return nil, errSignedOut
	}
	return u, nil
}

// sessionLive reports whether the session with that public id is among
// the user's live sessions in the session store, not a cache.
func (s *server) sessionLive(ctx context.Context, userID, id string) (bool, error) {
	live, err := s.sessions.List(ctx, userID)
	if err != nil {
		return false, fmt.Errorf("check session: %w", err)
	}
	return slices.ContainsFunc(live, func(l *session.Session) bool { return l.ID() == id }), nil
}

// patsOf returns the request's user and their tokens, oldest first.
func (s *server) patsOf(r *http.Request) (*account.User, []*account.PAT, error) {
	_, u, err := s.whoami(r)
	if err != nil {
		return nil, nil, err
	}
	list, err := bounded(r.Context(), s.storeTimeout, func(ctx context.Context) ([]*account.PAT, error) { return s.pats.PATList(ctx, u.ID) })
	if err != nil {
		return nil, nil, fmt.Errorf("list personal access tokens: %w", err)
	}
	return u, list, nil
}

// revokePAT revokes the request's user's token with that id: its id on
// the denylist until its expiry, durably (SES-15), then its record gone.
func (s *server) revokePAT(r *http.Request, id string) error {
	const event = "pat-revoke"
	u, list, err := s.patsOf(r)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(p *account.PAT) bool { return p.ID == id })
	if i < 0 {
		s.audit(r, event, u.Name, "user_id", u.ID, "outcome", "failure", "reason", "no such token")
		return errNoSuchPAT
	}
	p := list[i]
	ctx := r.Context()
	if err := s.sessions.RevokeToken(ctx, session.Revocation{JTI: p.ID, Exp: p.Expires}); err != nil {
		s.audit(r, event, u.Name, "user_id", u.ID, "pat_id", p.ID, "outcome", "failure", "reason", "store error")
		return fmt.Errorf("revoke personal access token: %w", err)
	}
	_, err = bounded(ctx, s.storeTimeout, func(ctx context.Context) (*account.PAT, error) { return s.pats.DeletePAT(ctx, u.ID, p.ID) })
	if err != nil && !errors.Is(err, account.ErrPATNotFound) {
		s.audit(r, event, u.Name, "user_id", u.ID, "pat_id", p.ID, "outcome", "revoked, not deleted", "reason", "store error")
		return fmt.Errorf("personal access token revoked, but deleting it: %w", err)
	}
	s.audit(r, event, u.Name, "user_id", u.ID, "pat_id", p.ID, "outcome", "success")
	return nil
}

// The API's handlers.

// patCreated answers POST /api/v1/tokens: the token, shown once, and how
// it is listed.
type patCreated struct {
	Token string `json:"token"`
	patView
}

func handleAPICreatePAT(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[patRequest](w, r)
		if err != nil {
			s.failJSON(w, r, err)
			return
		}
		tok, p, err := s.createPAT(r, req)
		if err != nil {
			s.failJSON(w, r, err)
			return
		}
		encode(w, http.StatusCreated, patCreated{Token: tok, patView: viewPAT(p)})
	})
}

func handleAPIPATs(s *server) http.Handler {
	type response struct {
		Tokens []patView `json:"tokens"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, list, err := s.patsOf(r)
		if err != nil {
			s.failJSON(w, r, err)
			return
		}
		out := make([]patView, len(list))
		for i, p := range list {
			out[i] = viewPAT(p)
		}
		encode(w, http.StatusOK, response{Tokens: out})
	})
}

func handleAPIRevokePAT(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.revokePAT(r, r.PathValue("id")); err != nil {
			s.failJSON(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// The account page's handlers.

// patFormRequest reads the account page's form: scopes separated by
// spaces or commas, and the lifetime in days.
func patFormRequest(r *http.Request) patRequest {
	req := patRequest{
		Name:   r.PostFormValue("name"),
		Scopes: strings.FieldsFunc(r.PostFormValue("scopes"), func(c rune) bool { return c == ',' || c == ' ' || c == '\t' }),
	}
	if days := strings.TrimSpace(r.PostFormValue("expires_in_days")); days != "" {
		n, err := strconv.Atoi(days)
		if err != nil {
			n = -1 // refused as out of range
		}
		req.ExpiresInDays = &n
	}
	return req
}

func handleCreatePATPage(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := patFormRequest(r)
		tok, p, err := s.createPAT(r, req)
		if err != nil {
			s.accountPage(w, r, "tokens", err, func(pg *page) { pg.PATForm = req })
			return
		}
		s.accountPage(w, r, "", nil, func(pg *page) { pg.NewPAT, pg.NewPATName = tok, p.Name })
	})
}

func handleRevokePATPage(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.revokePAT(r, r.PathValue("id")); err != nil {
			s.accountPage(w, r, "tokens", err, nil)
			return
		}
		http.Redirect(w, r, "/account?done=pat-revoked", http.StatusSeeOther)
	})
}
