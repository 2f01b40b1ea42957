package server

import (
	"context"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/throttle"
)

// DefaultStoreTimeout is Config.StoreTimeout's default, the same as the
// session Manager's (session.DefaultStoreTimeout).
const DefaultStoreTimeout = time.Second

// DefaultReadyTimeout is Config.ReadyTimeout's default: an orchestrator's
// probe gets its answer well within its own timeout (Kubernetes: 1 s).
const DefaultReadyTimeout = 500 * time.Millisecond

// bounded calls f with ctx bounded by d (MISC-05): a store that stops
// answering fails the call once d has passed, with an error wrapping
// context.DeadlineExceeded, which the handlers answer 503 with
// Retry-After.
func bounded[T any](ctx context.Context, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return f(ctx)
}

// boundedErr is bounded for a call that returns only an error.
func boundedErr(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	_, err := bounded(ctx, d, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

// deadlineAccounts is the account store the server calls: every call
// bounded by d.
type deadlineAccounts struct {
	s account.Store
	d time.Duration
}

var _ account.Store = deadlineAccounts{}

// BoundedAccounts returns s with every call bounded by d, as the server
// calls it (MISC-05); tether's admin commands call it so too.
func BoundedAccounts(s account.Store, d time.Duration) account.Store {
	return deadlineAccounts{s: s, d: d}
}

func (a deadlineAccounts) Create(ctx context.Context, u *account.User) error {
	return boundedErr(ctx, a.d, func(ctx context.Context) error { return a.s.Create(ctx, u) })
}

func (a deadlineAccounts) CreateFirst(ctx context.Context, u *account.User, setup account.SetupHash, now time.Time) error {
	return boundedErr(ctx, a.d, func(ctx context.Context) error { return a.s.CreateFirst(ctx, u, setup, now) })
}

func (a deadlineAccounts) AddSetup(ctx context.Context, setup account.SetupHash, expires time.Time) error {
	return boundedErr(ctx, a.d, func(ctx context.Context) error { return a.s.AddSetup(ctx, setup, expires) })
}

func (a deadlineAccounts) SetupValid(ctx context.Context, setup account.SetupHash, now time.Time) (bool, error) {
	return bounded(ctx, a.d, func(ctx context.Context) (bool, error) { return a.s.SetupValid(ctx, setup, now) })
}

func (a deadlineAccounts) ByName(ctx context.Context, name string) (*account.User, error) {
	return bounded(ctx, a.d, func(ctx context.Context) (*account.User, error) { return a.s.ByName(ctx, name) })
}

func (a deadlineAccounts) ByID(ctx context.Context, id string) (*account.User, error) {
	return bounded(ctx, a.d, func(ctx context.Context) (*account.User, error) { return a.s.ByID(ctx, id) })
}

func (a deadlineAccounts) List(ctx context.Context) ([]*account.User, error) {
	return bounded(ctx, a.d, a.s.List)
}

func (a deadlineAccounts) Count(ctx context.Context) (int, error) {
	return bounded(ctx, a.d, a.s.Count)
}

func (a deadlineAccounts) SetPassword(ctx context.Context, id, old, hash string) error {
	return boundedErr(ctx, a.d, func(ctx context.Context) error { return a.s.SetPassword(ctx, id, old, hash) })
}

func (a deadlineAccounts) SetDisabled(ctx context.Context, id string, disabled bool) error {
	return boundedErr(ctx, a.d, func(ctx context.Context) error { return a.s.SetDisabled(ctx, id, disabled) })
}

func (a deadlineAccounts) Rename(ctx context.Context, id, name string) error {
	return boundedErr(ctx, a.d, func(ctx context.Context) error { return a.s.Rename(ctx, id, name) })
}

func (a deadlineAccounts) Delete(ctx context.Context, id string) error {
	return boundedErr(ctx, a.d, func(ctx context.Context) error { return a.s.Delete(ctx, id) })
}

// deadlineThrottle is the throttle the server calls: every call bounded
// by d.
type deadlineThrottle struct {
	t Throttle
	d time.Duration
}

var _ Throttle = deadlineThrottle{}

func (t deadlineThrottle) Attempt(ctx context.Context, keys ...throttle.Key) (time.Duration, error) {
	return bounded(ctx, t.d, func(ctx context.Context) (time.Duration, error) { return t.t.Attempt(ctx, keys...) })
}

func (t deadlineThrottle) Wait(ctx context.Context, keys ...throttle.Key) (time.Duration, error) {
	return bounded(ctx, t.d, func(ctx context.Context) (time.Duration, error) { return t.t.Wait(ctx, keys...) })
}

func (t deadlineThrottle) Refund(ctx context.Context, keys ...string) error {
	return boundedErr(ctx, t.d, func(ctx context.Context) error { return t.t.Refund(ctx, keys...) })
}

func (t deadlineThrottle) Reset(ctx context.Context, keys ...string) error {
	return boundedErr(ctx, t.d, func(ctx context.Context) error { return t.t.Reset(ctx, keys...) })
}
