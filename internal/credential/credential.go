// Package credential owns every change to what a person signs in with —
// their name, their password, and whether their account may sign in or
// exist at all — and the order of the steps each change takes against
// the sign-ins racing it. The server's pages, its JSON API and the
// command line all go through a Service: nothing else writes a password
// hash, the disabled flag or a user's name, or deletes a user.
//
// # The ordering (SES-12)
//
// A sign-in reads the user's session generation first
// (session.Manager.Begin), the credential second (the user's record: hash
// and disabled flag), checks the password, and creates its session only
// while that generation is still current (session.Manager.Create, in the
// session store's own atomic check). A change stores the new credential
// first and revokes the user's sessions second (RevokeUser, which bumps
// the generation). So a sign-in that read the old credential read the
// generation before the revocation, and either its Create sees the
// revocation and fails, or the session it made dies with it: no sign-in
// that checked a credential that is no longer current keeps a session, on
// any node. What each change does:
//
//   - ChangePassword (the signed-in owner, CHG-01..04): begin the caller's
//     fresh session, read and check the current password, store the new
//     hash (a compare-and-swap from the hash just checked), then revoke
//     every session of the user but the fresh one. If the revocation
//     can't be written, the hash is swapped back and the change is
//     reported as failed (CHG-04).
//     By default the revocation ends the user's tokens too (their token
//     subject's generation, CHG-03), unless Config.KeepTokensOnPasswordChange,
//     and then deletes their personal access tokens from the account
//     store (Config.PATs), so that they stay ended if the session store
//     loses the generation; a failure there is a failed revocation too.
//     Disable and Delete end the tokens the same way.
//   - SetPassword (an administrator): the same without the current
//     password and without a fresh session.
//   - Disable: set the flag, then revoke the sessions and the tokens. A failed revocation is reported;
//     the flag stays set, since every sign-in and signed-in page checks it.
//   - Enable: clear the flag. Nothing else: no session of the user
//     survived the disable (SES-10), and a sign-in that began before it
//     can't create one now.
//   - Delete: remove the account (the store refuses to remove the only
//     admin who can sign in, before anything changed), then revoke. A
//     failed revocation is reported; the sessions left are refused all
//     the same, since every signed-in request reads its account.
//   - Rename: store the new name. Nothing else: a rename changes what the
//     user types to sign in, not who they are; sessions carry the id, so
//     they go on.
//   - Rehash (inside SignIn, PW-03): after the session is created, a
//     compare-and-swap from the hash the password was checked against, so
//     it never overwrites a password changed meanwhile.
package credential

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/password"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// Errors of a Service, for errors.Is. The first three are the reasons a
// sign-in fails; callers must answer them all alike (PW-05).
var (
	// ErrUnknownUser: no user has that name.
	ErrUnknownUser = errors.New("credential: unknown user")
	// ErrWrongPassword: the password is not the user's.
	ErrWrongPassword = errors.New("credential: wrong password")
	// ErrDisabled: the user may not sign in.
	ErrDisabled = errors.New("credential: user disabled")
	// ErrChangedMeanwhile: the user's credential or sessions changed while
	// this sign-in or change was under way (another device changed the
	// password, an administrator disabled the user, ...). Nothing was
	// changed; trying again reads the new state.
	ErrChangedMeanwhile = errors.New("credential: the account changed meanwhile; try again")
	// ErrUnchanged: the new password is the current one (as Verify
	// compares them, PW-09). Keeping it would end every other session
	// while leaving in force a password that may be known elsewhere.
	ErrUnchanged = errors.New("credential: the new password is the current one; choose another")
)

// Config holds a Service's dependencies, all required but Changed.
type Config struct {
	Accounts account.Store
	Sessions *session.Manager
	Hasher   *password.Hasher
	// Policy decides which new passwords are acceptable (PW-01, PW-02).
	Policy password.Policy
	// Changed is told the id of every user whose record a Service changed,
	// once the change is stored (the server drops its cached copy).
	Changed func(userID string)
	// KeepTokensOnPasswordChange leaves the user's tokens (personal access
	// tokens, and access tokens with the user as subject) alive when the
	// password changes. By default a password change ends them with the
	// sessions: whoever knew the old password may have made one. Disabling
	// or deleting a user always ends them.
	KeepTokensOnPasswordChange bool
	// PATs keeps the users' personal access tokens. A password change
	// that ends the user's tokens deletes theirs from it: the
	// generation that ends them at once lives in the session store,
	// which may lose its data. Default nil: no personal access tokens.
	PATs account.PATs
}

// Service performs sign-ins and credential changes in the order the
// package documentation gives. It is safe for concurrent use.
type Service struct {
	cfg Config
}

// New returns a Service, or an error naming a missing dependency.
func New(cfg Config) (*Service, error) {
	var missing []error
	if cfg.Accounts == nil {
		missing = append(missing, errors.New("credential: Accounts is required"))
	}
	if cfg.Sessions == nil {
		missing = append(missing, errors.New("credential: Sessions is required"))
	}
	if cfg.Hasher == nil {
		missing = append(missing, errors.New("credential: Hasher is required"))
	}
	if err := cfg.Policy.Validate(); err != nil {
		missing = append(missing, fmt.Errorf("credential: %w", err))
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	if cfg.Changed == nil {
		cfg.Changed = func(string) {}
	}
	return &Service{cfg: cfg}, nil
}

// SignIn checks name and pw and, when they are right, creates a session
// for meta's device and returns the user, its token and the session. An
// unknown user, a wrong password and a disabled user are ErrUnknownUser,
// ErrWrongPassword and ErrDisabled after the same hashing work (PW-05); a
// sign-in overtaken by a change of the user's credential is
// ErrChangedMeanwhile (SES-12). Other errors are the hasher's (ErrBusy,
// invalid input) or a store's.
func (s *Service) SignIn(ctx context.Context, name, pw string, meta session.Meta) (*account.User, string, *session.Session, error) {
	found, err := s.cfg.Accounts.ByName(ctx, name)
	if errors.Is(err, account.ErrNotFound) {
		if err := s.cfg.Hasher.VerifyDummy(ctx, pw); err != nil {
			return nil, "", nil, err
		}
		return nil, "", nil, ErrUnknownUser
	}
	if err != nil {
		return nil, "", nil, err
	}
	ticket, u, err := s.begin(ctx, found.ID)
	if err != nil {
		return nil, "", nil, err
	}
	rehash, err := s.check(ctx, u, pw)
	if err != nil {
		return nil, "", nil, err
	}
	token, sess, err := s.cfg.Sessions.Create(ctx, ticket, meta)
	if err != nil {
		return nil, "", nil, changedMeanwhile(err)
	}
	if rehash {
		s.rehash(ctx, u, pw)
	}
	return u, token, sess, nil
}

// begin reads the generation of the user with that id, then the user: in
// this order (see the package documentation). A user deleted in between
// is ErrUnknownUser.
func (s *Service) begin(ctx context.Context, id string) (session.Ticket, *account.User, error) {
	ticket, err := s.cfg.Sessions.Begin(ctx, id)
	if err != nil {
		return session.Ticket{}, nil, err
	}
	u, err := s.cfg.Accounts.ByID(ctx, id)
	if errors.Is(err, account.ErrNotFound) {
		err = ErrUnknownUser
	}
	return ticket, u, err
}

// check checks pw against u's stored hash, then u's disabled flag, and
// reports whether the hash should be remade (PW-03). A malformed stored
// hash counts as a wrong password.
func (s *Service) check(ctx context.Context, u *account.User, pw string) (rehash bool, err error) {
	ok, rehash, err := s.cfg.Hasher.Verify(ctx, pw, u.PasswordHash)
	switch {
	case errors.Is(err, password.ErrMalformedHash):
		return false, fmt.Errorf("%w (the stored hash of user %s is malformed)", ErrWrongPassword, u.ID)
	case err != nil:
		return false, err
	case !ok:
		return false, ErrWrongPassword
	case u.Disabled:
		return false, ErrDisabled
	}
	return rehash, nil
}

// rehash stores a new hash of pw, u's password, made with the current
// parameters, unless the stored one changed since it was read. A failure
// costs nothing: the old hash still works.
func (s *Service) rehash(ctx context.Context, u *account.User, pw string) {
	h, err := s.cfg.Hasher.Hash(ctx, pw)
	if err == nil {
		err = s.cfg.Accounts.SetPassword(ctx, u.ID, u.PasswordHash, h)
	}
	if err == nil {
		s.cfg.Changed(u.ID)
	}
}

// ChangePassword changes the password of the user with that id from
// current, which it checks (CHG-01), to next, which the policy must accept.
// It returns a fresh session for the caller's device (meta): every other
// session of the user, the caller's own included, is dead when it returns
// (CHG-02). Errors: ErrWrongPassword, ErrDisabled, ErrUnknownUser, a
// policy error, ErrUnchanged, ErrChangedMeanwhile, or a store's error, in
// which case nothing changed (CHG-04).
func (s *Service) ChangePassword(ctx context.Context, userID, current, next string, meta session.Meta) (string, *session.Session, error) {
	ticket, u, err := s.begin(ctx, userID)
	if err != nil {
		return "", nil, err
	}
	if _, err := s.check(ctx, u, current); err != nil {
		return "", nil, err
	}
	hash, err := s.newHash(ctx, u, next)
	if err != nil {
		return "", nil, err
	}
	token, fresh, err := s.cfg.Sessions.Create(ctx, ticket, meta)
	if err != nil {
		return "", nil, changedMeanwhile(err)
	}
	if err := s.replace(ctx, u, hash, fresh); err != nil {
		return "", nil, errors.Join(err, s.cfg.Sessions.Revoke(ctx, fresh))
	}
	return token, fresh, nil
}

// SetPassword sets the password of the user with that id to next, which
// the policy must accept, and ends every session of the user: an
// administrator's reset. Errors are those of ChangePassword.
func (s *Service) SetPassword(ctx context.Context, userID, next string) error {
	u, err := s.cfg.Accounts.ByID(ctx, userID)
	if err != nil {
		return err
	}
	hash, err := s.newHash(ctx, u, next)
	if err != nil {
		return err
	}
	return s.replace(ctx, u, hash, nil)
}

// newHash checks next against the policy for u (PW-01, PW-02) and against
// u's stored hash (ErrUnchanged), and hashes it. The second check costs a
// Verify, but it is the one check that answers alike for the owner's
// change, who typed the current password, and an administrator's reset,
// who didn't, and for a hash stored before passwords were normalised.
// A stored hash that is malformed is no password: a reset replaces it.
func (s *Service) newHash(ctx context.Context, u *account.User, next string) (string, error) {
	if err := s.cfg.Policy.Check(next, u.Name); err != nil {
		return "", err
	}
	same, _, err := s.cfg.Hasher.Verify(ctx, next, u.PasswordHash)
	switch {
	case same:
		return "", ErrUnchanged
	case err != nil && !errors.Is(err, password.ErrMalformedHash):
		return "", err
	}
	return s.cfg.Hasher.Hash(ctx, next)
}

// replace swaps u's stored hash, as read into u, for hash, then revokes
// every session of u but keep (nil: all). If the revocation fails, the old
// hash is swapped back, so that a change whose sessions live on is never
// in force (CHG-04).
func (s *Service) replace(ctx context.Context, u *account.User, hash string, keep *session.Session) error {
	if err := s.cfg.Accounts.SetPassword(ctx, u.ID, u.PasswordHash, hash); err != nil {
		return changedMeanwhile(err)
	}
	s.cfg.Changed(u.ID)
	err := s.cfg.Sessions.RevokeUser(ctx, u.ID, keep)
	if err == nil && !s.cfg.KeepTokensOnPasswordChange {
		err = s.revokeTokens(ctx, u.ID)
	}
	if err == nil {
		return nil
	}
	// The undo runs even if the caller gave up, within its own deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	if undo := s.cfg.Accounts.SetPassword(ctx, u.ID, hash, u.PasswordHash); undo != nil {
		return fmt.Errorf("the password of %s was changed, but ending their sessions failed (%w) and so did restoring the old password (%w): end their sessions (tether sessions revoke) once the store is back", u.Name, err, undo)
	}
	return fmt.Errorf("password not changed: ending the user's sessions failed: %w", err)
}

// undoTimeout bounds the swap back of a password whose sessions could not
// be ended.
const undoTimeout = 5 * time.Second

// Disable stops the user with that id from signing in and ends all their
// sessions (SES-10).
func (s *Service) Disable(ctx context.Context, userID string) error {
	if err := s.cfg.Accounts.SetDisabled(ctx, userID, true); err != nil {
		return err
	}
	s.cfg.Changed(userID)
	if err := s.revokeAll(ctx, userID); err != nil {
		return fmt.Errorf("the user is disabled, but ending their sessions and tokens failed: %w", err)
	}
	return nil
}

// Enable lets the user with that id sign in again.
func (s *Service) Enable(ctx context.Context, userID string) error {
	if err := s.cfg.Accounts.SetDisabled(ctx, userID, false); err != nil {
		return err
	}
	s.cfg.Changed(userID)
	return nil
}

// Delete removes the user with that id and ends all their sessions. It
// returns account.ErrLastAdmin, having changed nothing, for the only admin
// who can sign in.
func (s *Service) Delete(ctx context.Context, userID string) error {
	if err := s.cfg.Accounts.Delete(ctx, userID); err != nil {
		return err
	}
	s.cfg.Changed(userID)
	if err := s.revokeAll(ctx, userID); err != nil {
		return fmt.Errorf("the user is deleted, but ending their sessions and tokens failed (the server refuses them anyway: they belong to no account): %w", err)
	}
	return nil
}

// revokeAll ends every session and every token of the user with that id.
func (s *Service) revokeAll(ctx context.Context, userID string) error {
	if err := s.cfg.Sessions.RevokeUser(ctx, userID, nil); err != nil {
		return err
	}
	return s.revokeTokens(ctx, userID)
}

// revokeTokens ends every token of the user with that id in one write: the
// generation of their token subject (CHG-03), which every node sees at
// once. Then it deletes their personal access tokens from the account
// store, where they would otherwise come back to life if the session
// store lost the generation; a token made by a request that raced the
// write carries the old generation and is dead all the same.
func (s *Service) revokeTokens(ctx context.Context, userID string) error {
	if _, err := s.cfg.Sessions.RevokeSubject(ctx, token.UserSubject(userID)); err != nil {
		return fmt.Errorf("ending the user's tokens: %w", err)
	}
	if s.cfg.PATs == nil {
		return nil
	}
	if _, err := s.cfg.PATs.DeletePATs(ctx, userID); err != nil {
		return fmt.Errorf("deleting the user's personal access tokens: %w", err)
	}
	return nil
}

// Rename gives the user with that id the name name; their sessions go on.
// Errors: account.ErrInvalidName, account.ErrExists, account.ErrNotFound,
// or a store's. The new name is not checked against the user's password
// (PW-02): nobody knows the password here.
func (s *Service) Rename(ctx context.Context, userID, name string) error {
	if err := s.cfg.Accounts.Rename(ctx, userID, name); err != nil {
		return err
	}
	s.cfg.Changed(userID)
	return nil
}

// changedMeanwhile maps the stores' "it moved" errors to
// ErrChangedMeanwhile and leaves others alone.
func changedMeanwhile(err error) error {
	if errors.Is(err, session.ErrRevoked) || errors.Is(err, account.ErrChanged) {
		return fmt.Errorf("%w: %w", ErrChangedMeanwhile, err)
	}
	return err
}
