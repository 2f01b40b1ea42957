package revocation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// Source is where a View reads what its memory can't vouch for: the
// session store's token denylist and subjects' generations, behind the
// node's invalidation feed. session.Manager implements it.
type Source interface {
	// TokenRevoked reports whether jti is on the denylist.
	TokenRevoked(ctx context.Context, jti string) (bool, error)
	// SubjectGeneration returns subject's current generation (0 for a
	// subject never revoked).
	SubjectGeneration(ctx context.Context, subject string) (uint64, error)
	// Revocations returns every live denylist entry: the snapshot a View
	// loads once the feed is up.
	Revocations(ctx context.Context) ([]session.Revocation, error)
	// Current reports whether the invalidation feed is up and was heard
	// within its staleness bound (SES-14). It runs on every Check: it
	// must be cheap and must not allocate.
	Current() bool
}

var _ Source = (*session.Manager)(nil)

// ViewConfig configures a View. Every field has a default.
type ViewConfig struct {
	// Timeout bounds each call to the Source (MISC-05). Default 2 s.
	Timeout time.Duration
	// MaxSubjects caps the cached generations; past it an arbitrary one
	// is dropped (and read again when needed). Default 65536.
	MaxSubjects int
	// History is how many recent revocations the View keeps for streams
	// that resume (Last-Event-ID); an older id gets the snapshot again.
	// Default 4096.
	History int
	// Now is the clock that decides which entries have expired. Default
	// time.Now.
	Now func() time.Time
	// Logger gets the failures of Run. Default slog.Default().
	Logger *slog.Logger
}

// View is the node's revocation view for the server's own verifiers
// (token.Revocations) and the source of its revocation stream. It is
// safe for concurrent use; feed it every event of the store's feed with
// Handle, and keep Run running.
type View struct {
	src Source
	cfg ViewConfig
	log *slog.Logger

	loaded atomic.Bool   // the snapshot of the feed's current up period is in memory
	epoch  atomic.Uint64 // bumped by every event that may outdate a cached generation
	reload chan struct{} // a FeedUp for Run: load the snapshot

	mu       sync.RWMutex // guards the fields below
	up       uint64       // counts FeedUp and FeedDown: which up period the memory belongs to
	jtis     map[string]time.Time
	subjects map[string]session.Revocation // the denylist's subject entries: a floor for generations
	gens     map[string]uint64             // generations read from the Source, dropped by UserRevoked
	hub      hub
	ended    bool // EndStreams was called: no more subscribers
}

var _ token.Revocations = (*View)(nil)

// NewView returns a View over src with no snapshot loaded: until the feed
// is up and Run has loaded it, every Check reads src.
func NewView(src Source, cfg ViewConfig) (*View, error) {
	if src == nil {
		return nil, errors.New("revocation.NewView: Source is required")
	}
	if cfg.Timeout < 0 || cfg.MaxSubjects < 0 || cfg.History < 0 {
		return nil, errors.New("revocation.NewView: Timeout, MaxSubjects and History must not be negative")
	}
	cfg.MaxSubjects = cmp.Or(cfg.MaxSubjects, 65536)
	cfg.History = cmp.Or(cfg.History, 4096)
	cfg.Timeout = cmp.Or(cfg.Timeout, 2*time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &View{
		src: src, cfg: cfg, log: cfg.Logger.With("component", "revocation"),
		reload: make(chan struct{}, 1),
		jtis:   map[string]time.Time{}, subjects: map[string]session.Revocation{}, gens: map[string]uint64{},
	}
	v.hub.init(cfg.History)
	return v, nil
}

// ready reports whether Check may answer from memory: the snapshot of
// this up period is loaded and the feed is current (SES-14).
func (v *View) ready() bool { return v.loaded.Load() && v.src.Current() }

// Check implements token.Revocations. While the feed is current it
// answers from memory, reading a subject's generation from the Source only
// the first time it is asked about (0 allocations once cached); otherwise
// it asks the Source. An error of the Source is returned as it is (not
// token.ErrRevoked): the verifier refuses the token, failing closed.
func (v *View) Check(ctx context.Context, subject string, gen uint64, jti string) error {
	if !v.ready() {
		return v.checkSource(ctx, subject, gen, jti)
	}
	v.mu.RLock()
	_, denied := v.jtis[jti]
	floor := v.subjects[subject].Gen
	current, cached := v.gens[subject]
	v.mu.RUnlock()
	if denied || gen < floor {
		return token.ErrRevoked
	}
	if !cached {
		epoch := v.epoch.Load()
		var err error
		if current, err = v.generation(ctx, subject); err != nil {
			return err
		}
		v.cache(subject, current, epoch)
	}
	if gen < current {
		return token.ErrRevoked
	}
	return nil
}

// checkSource answers Check from the Source alone.
func (v *View) checkSource(ctx context.Context, subject string, gen uint64, jti string) error {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	revoked, err := v.src.TokenRevoked(ctx, jti)
	if err != nil {
		return fmt.Errorf("revocation: read the denylist: %w", err)
	}
	if revoked {
		return token.ErrRevoked
	}
	current, err := v.src.SubjectGeneration(ctx, subject)
	if err != nil {
		return fmt.Errorf("revocation: read the subject's generation: %w", err)
	}
	if gen < current {
		return token.ErrRevoked
	}
	return nil
}

func (v *View) generation(ctx context.Context, subject string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	g, err := v.src.SubjectGeneration(ctx, subject)
	if err != nil {
		return 0, fmt.Errorf("revocation: read the subject's generation: %w", err)
	}
	return g, nil
}

// cache keeps subject's generation, read from the Source since epoch was
// taken, unless an event that may have changed it came meanwhile.
func (v *View) cache(subject string, gen uint64, epoch uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.epoch.Load() != epoch || !v.loaded.Load() {
		return
	}
	if len(v.gens) >= v.cfg.MaxSubjects {
		for s := range v.gens {
			delete(v.gens, s)
			break
		}
	}
	v.gens[subject] = gen
}

// Handle applies one event of the store's feed (session.Config.OnEvent):
// a TokenRevoked event goes on the denylist and out to the streams'
// subscribers; UserRevoked forgets the subject's generation; FeedDown and
// FeedUp empty the memory, end every subscription (their followers
// reconnect and get a snapshot), and FeedUp has Run load the snapshot.
// It never calls the Source, so it may run under the store's locks.
func (v *View) Handle(e session.Event) {
	switch e.Kind {
	case session.TokenRevoked:
		v.mu.Lock()
		v.add(e.Revocation)
		v.hub.publish(e.Revocation)
		v.mu.Unlock()
	case session.UserRevoked:
		v.mu.Lock()
		v.epoch.Add(1)
		delete(v.gens, e.UserID)
		v.mu.Unlock()
	case session.FeedUp, session.FeedDown:
		v.mu.Lock()
		v.up++
		v.loaded.Store(false)
		v.epoch.Add(1)
		clear(v.jtis)
		clear(v.subjects)
		clear(v.gens)
		v.hub.reset()
		v.mu.Unlock()
		if e.Kind == session.FeedUp {
			select {
			case v.reload <- struct{}{}:
			default:
			}
		}
	}
}

// EndStreams ends every stream's subscription and refuses new ones (503,
// as while the View is not current): for a server shutting down, whose
// graceful shutdown waits for its connections to end
// (http.Server.RegisterOnShutdown). Followers reconnect, to another node
// or to this one once it is back. Check goes on answering.
func (v *View) EndStreams() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.ended = true
	for s := range v.hub.subs {
		v.hub.drop(s)
	}
}

// add puts r in memory, keeping the later Exp and the greater Gen. v.mu
// is held.
func (v *View) add(r session.Revocation) {
	if r.JTI != "" {
		if r.Exp.After(v.jtis[r.JTI]) {
			v.jtis[r.JTI] = r.Exp
		}
		return
	}
	old := v.subjects[r.Subject]
	r.Gen = max(r.Gen, old.Gen)
	if old.Exp.After(r.Exp) {
		r.Exp = old.Exp
	}
	v.subjects[r.Subject] = r
}

// Run loads the denylist's snapshot after every FeedUp (retrying with a
// growing delay, at most 5 s, while the Source fails), and forgets
// expired entries every minute, until ctx is done; then it returns nil.
func (v *View) Run(ctx context.Context) error {
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-prune.C:
			v.prune()
		case <-v.reload:
			v.load(ctx)
		}
	}
}

// load reads the snapshot until it is in memory, the up period it was
// asked for has ended, or ctx is done.
func (v *View) load(ctx context.Context) {
	v.mu.RLock()
	up := v.up
	v.mu.RUnlock()
	const minDelay, maxDelay = 50 * time.Millisecond, 5 * time.Second
	delay := minDelay
	for {
		list, err := v.snapshotFromSource(ctx)
		v.mu.Lock()
		current := v.up == up
		if err == nil && current {
			for _, r := range list {
				v.add(r)
			}
			v.loaded.Store(true)
		}
		v.mu.Unlock()
		if err == nil || !current {
			return
		}
		v.log.Warn("loading the token denylist; verifiers ask the store until it is loaded", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, maxDelay)
	}
}

func (v *View) snapshotFromSource(ctx context.Context) ([]session.Revocation, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	return v.src.Revocations(ctx)
}

// prune forgets the entries whose Exp has passed: their tokens are
// refused as expired anyway (JWT-09).
func (v *View) prune() {
	now := v.cfg.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	for jti, exp := range v.jtis {
		if exp.Before(now) {
			delete(v.jtis, jti)
		}
	}
	for s, r := range v.subjects {
		if r.Exp.Before(now) {
			delete(v.subjects, s)
		}
	}
}

// entries returns the live denylist in memory, for a stream's snapshot.
// v.mu is held.
func (v *View) entries() []session.Revocation {
	now := v.cfg.Now()
	list := make([]session.Revocation, 0, len(v.jtis)+len(v.subjects))
	for jti, exp := range v.jtis {
		if !exp.Before(now) {
			list = append(list, session.Revocation{JTI: jti, Exp: exp})
		}
	}
	for _, r := range v.subjects {
		if !r.Exp.Before(now) {
			list = append(list, r)
		}
	}
	return list
}
