package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/tetherauth/tether/session"
)

// cleanupTimeout bounds the removal of pointers (of a half-done create,
// or of records a write deleted), which runs even when the caller's
// context is done.
const cleanupTimeout = 5 * time.Second

// Get returns the record stored under h, if it is live (see the package
// documentation for how it finds it).
func (s *Store) Get(ctx context.Context, h session.Hash) (*session.Record, error) {
	if s.watches.Closed() {
		return nil, closedError("get")
	}
	hx := hexHash(h)
	user, err := s.owner(ctx, h, hx)
	if err != nil {
		return nil, s.fail("get", err)
	}
	r, err := s.read(ctx, user, hx, h)
	if err != nil {
		return nil, s.fail("get", err)
	}
	return r, nil
}

// owner returns the user the session under h (hx in hex) belongs to, or ""
// if there is none: from s.owners, or else from the pointer in Redis.
func (s *Store) owner(ctx context.Context, h session.Hash, hx string) (string, error) {
	if user := s.owners.get(h); user != "" {
		return user, nil
	}
	user, err := s.client.Do(ctx, s.client.B().Get().Key(s.keys.pointer(hx)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	s.owners.put(h, user)
	return user, nil
}

// errNoRecord: read found no record (as opposed to a revoked one). It
// wraps session.ErrNotFound.
var errNoRecord = fmt.Errorf("%w: no record", session.ErrNotFound)

// read reads the record of user under hx with the user's generation, in
// one MGET (both keys share the user's slot).
func (s *Store) read(ctx context.Context, user, hx string, h session.Hash) (*session.Record, error) {
	if user == "" {
		return nil, errNoRecord
	}
	u := s.keys.user(user)
	vals, err := s.client.Do(ctx, s.client.B().Mget().Key(genKey(u), recordKey(u, hx)).Build()).ToArray()
	if err != nil {
		return nil, err
	}
	if len(vals) != 2 {
		return nil, fmt.Errorf("%w: MGET answered %d values", errCorrupt, len(vals))
	}
	stored, err := vals[1].ToString()
	if rueidis.IsRedisNil(err) {
		return nil, errNoRecord
	}
	if err != nil {
		return nil, err
	}
	var gen uint64
	if g, err := vals[0].ToString(); err == nil {
		if gen, err = strconv.ParseUint(g, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: generation %q", errCorrupt, g)
		}
	} else if !rueidis.IsRedisNil(err) {
		return nil, err
	}
	r := &session.Record{Hash: h, UserID: user}
	if err := decodeStored(stored, r); err != nil {
		return nil, err
	}
	if r.Gen < gen {
		return nil, fmt.Errorf("%w: revoked", session.ErrNotFound)
	}
	return r, nil
}

// Generation returns the current generation of userID (0 if it was never
// revoked): one GET, sent again after a network error as Get's reads are.
func (s *Store) Generation(ctx context.Context, userID string) (uint64, error) {
	if s.watches.Closed() {
		return 0, closedError("read generation")
	}
	g, err := s.client.Do(ctx, s.client.B().Get().Key(genKey(s.keys.user(userID))).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	if err != nil {
		return 0, s.fail("read generation", err)
	}
	gen, err := strconv.ParseUint(g, 10, 64)
	if err != nil {
		return 0, s.fail("read generation", fmt.Errorf("%w: generation %q", errCorrupt, g))
	}
	return gen, nil
}

// Create adds r if its user's generation is still r.Gen, replacing
// opts.Replace and keeping the user under opts.MaxPerUser (see
// session.Store): the pointer first, then one script in the user's slot,
// then the pointers of the records the script deleted.
func (s *Store) Create(ctx context.Context, r *session.Record, opts session.CreateOptions) error {
	if s.watches.Closed() {
		return closedError("create")
	}
	if err := s.create(ctx, r, opts); err != nil {
		return s.fail("create", err)
	}
	return nil
}

// Save updates r if its stored version is still r.Version (see
// session.Store).
func (s *Store) Save(ctx context.Context, r *session.Record) error {
	if s.watches.Closed() {
		return closedError("save")
	}
	if err := s.update(ctx, r); err != nil {
		return s.fail("save", err)
	}
	return nil
}

// expireAt is t in Unix ms, at least 1: Redis refuses to expire a key at
// 0 or before.
func expireAt(t time.Time) int64 { return max(t.UnixMilli(), 1) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (s *Store) create(ctx context.Context, r *session.Record, opts session.CreateOptions) error {
	hx, abs := hexHash(r.Hash), expireAt(r.AbsDeadline)
	ptr := s.keys.pointer(hx)
	setPtr := s.client.B().Set().Key(ptr).Value(r.UserID).Nx().PxatMillisecondsTimestamp(abs).Build()
	// The pointer first: SET NX makes the hash unique. In a Cluster it is
	// on another primary than the record, and needs a WAIT of its own.
	var res rueidis.RedisResult
	if s.minReplicas > 0 && s.target.mode == cluster {
		res = s.waitFor(ctx, setPtr)
	} else {
		res = s.client.Do(ctx, setPtr)
	}
	if err := res.Error(); rueidis.IsRedisNil(err) {
		return fmt.Errorf("%w: hash taken", session.ErrConflict)
	} else if err != nil {
		s.dropPointers(ctx, ptr) // it may have been set
		return err
	}
	if s.afterPointer != nil {
		s.afterPointer()
	}

	u := s.keys.user(r.UserID)
	c := call{
		script: createScript,
		keys:   []string{recordKey(u, hx), genKey(u), indexKey(u), idKey(u, r.ID)},
		args: []string{r.ID, string(encodeRecord(r)), itoa(expireAt(r.Expiry())), itoa(abs), hx,
			strconv.FormatUint(r.Gen, 10), strconv.Itoa(max(opts.MaxPerUser, 0)), u,
			s.keys.channel(), s.message(changedMsg, nil)},
	}
	if opts.Replace != nil {
		old := hexHash(*opts.Replace)
		c.keys = append(c.keys, recordKey(u, old))
		c.args = append(c.args, old)
	}
	gen, gone, err := createReply(s.runReplicated(ctx, c))
	if err != nil {
		s.dropPointers(ctx, ptr)
		var refused *refusal
		if !errors.As(err, &refused) && (opts.Replace != nil || opts.MaxPerUser > 0) {
			// The script may have run and deleted records this process
			// can't name: its watchers drop all of the user's (see the
			// package documentation).
			s.hub.Publish(session.Event{Kind: session.UserRevoked, UserID: r.UserID})
		}
		return err
	}
	evs := make([]session.Event, len(gone))
	ptrs := make([]string, len(gone))
	for i, h := range gone {
		evs[i] = session.Event{Kind: session.Changed, Hash: h}
		ptrs[i] = s.keys.pointer(hexHash(h))
	}
	s.hub.Publish(evs...)
	s.dropPointers(ctx, ptrs...)
	r.Gen, r.Version = gen, 1
	return nil
}

// refusal is a script's answer that it changed nothing, and why. It wraps
// the session error to return.
type refusal struct{ err error }

func (e *refusal) Error() string { return e.err.Error() }
func (e *refusal) Unwrap() error { return e.err }

// createReply reads createScript's answer: the generation it stamped and
// the hashes of the records it deleted, or a refusal.
func createReply(res rueidis.RedisResult) (gen uint64, gone []session.Hash, err error) {
	msg, err := res.ToMessage()
	if err != nil {
		return 0, nil, err
	}
	if n, err := msg.AsInt64(); err == nil {
		switch n {
		case replyRevoked:
			return 0, nil, &refusal{session.ErrRevoked}
		case replyNotFound:
			return 0, nil, &refusal{fmt.Errorf("replaced record: %w", session.ErrNotFound)}
		case replyConflict:
			return 0, nil, &refusal{fmt.Errorf("%w: public id or hash taken", session.ErrConflict)}
		}
		return 0, nil, fmt.Errorf("%w: create answered %d", errCorrupt, n)
	}
	reply, err := msg.AsStrSlice()
	if err != nil || len(reply) == 0 {
		return 0, nil, fmt.Errorf("%w: create answered %v", errCorrupt, msg)
	}
	if gen, err = strconv.ParseUint(reply[0], 10, 64); err != nil {
		return 0, nil, fmt.Errorf("%w: generation %q", errCorrupt, reply[0])
	}
	gone, err = decodeHashes(reply[1:])
	return gen, gone, err
}

// decodeHashes decodes the hashes (hex) a script answered.
func decodeHashes(hxs []string) ([]session.Hash, error) {
	hs := make([]session.Hash, len(hxs))
	for i, hx := range hxs {
		if err := decodeHash(hx, &hs[i]); err != nil {
			return nil, err
		}
	}
	return hs, nil
}

// dropPointers removes pointers whose records are gone, or were never
// written (a create that failed after setting its pointer), even if ctx
// is done. It is best effort: a pointer without its record means no
// session, and one left behind expires with its session's absolute
// deadline.
func (s *Store) dropPointers(ctx context.Context, ptrs ...string) {
	if len(ptrs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	cmds := make(rueidis.Commands, len(ptrs))
	for i, p := range ptrs {
		cmds[i] = s.client.B().Del().Key(p).Build() // one each: in a Cluster, each is in a slot of its own
	}
	for _, res := range s.client.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			s.log.WarnContext(ctx, "removing the pointer of a deleted or failed session", "err", err)
			return
		}
	}
}

func (s *Store) update(ctx context.Context, r *session.Record) error {
	defer s.hub.Publish(session.Event{Kind: session.Changed, Hash: r.Hash}) // even if it failed: see the package documentation
	hx, abs := hexHash(r.Hash), expireAt(r.AbsDeadline)
	u := s.keys.user(r.UserID)
	res := s.run(ctx, call{
		script: updateScript,
		keys:   []string{recordKey(u, hx), genKey(u), indexKey(u), idKey(u, r.ID)},
		args: []string{strconv.FormatUint(r.Version, 10), r.ID, string(encodeRecord(r)),
			itoa(expireAt(r.Expiry())), itoa(abs), hx, s.keys.channel(), s.message(changedMsg, r.Hash[:])},
	})
	msg, err := res.ToMessage()
	if err != nil {
		return err
	}
	if n, err := msg.AsInt64(); err == nil {
		if n == replyNotFound {
			return session.ErrNotFound
		}
		return session.ErrConflict
	}
	reply, err := msg.AsIntSlice()
	if err != nil || len(reply) != 2 {
		return fmt.Errorf("%w: update answered %v", errCorrupt, msg)
	}
	r.Version = uint64(reply[0])
	if reply[1] == 1 { // the absolute deadline moved: the pointer's expiry follows
		ptr := s.keys.pointer(hx)
		if err := s.client.Do(ctx, s.client.B().Pexpireat().Key(ptr).MillisecondsTimestamp(abs).Build()).Error(); err != nil {
			return fmt.Errorf("saved, but moving the pointer's expiry: %w", err)
		}
	}
	return nil
}

// Delete removes the record under h: the record, its id and index entry
// (one script, replicated per Options.MinReplicas), then its pointer.
func (s *Store) Delete(ctx context.Context, h session.Hash) error {
	if s.watches.Closed() {
		return closedError("delete")
	}
	defer s.hub.Publish(session.Event{Kind: session.Changed, Hash: h}) // even if it failed
	hx := hexHash(h)
	user, err := s.owner(ctx, h, hx)
	if err != nil {
		return s.fail("delete", err)
	}
	if user != "" {
		u := s.keys.user(user)
		res := s.runReplicated(ctx, call{
			script: deleteScript,
			keys:   []string{recordKey(u, hx), indexKey(u)},
			args:   []string{u, hx, s.keys.channel(), s.message(changedMsg, h[:])},
		})
		if err := res.Error(); err != nil {
			return s.fail("delete", err)
		}
		if err := s.client.Do(ctx, s.client.B().Del().Key(s.keys.pointer(hx)).Build()).Error(); err != nil {
			return s.fail("delete", err)
		}
	}
	return nil
}

// List returns the live records of userID, oldest first.
func (s *Store) List(ctx context.Context, userID string) ([]*session.Record, error) {
	if s.watches.Closed() {
		return nil, closedError("list")
	}
	u := s.keys.user(userID)
	res := s.run(ctx, call{script: listScript, keys: []string{indexKey(u), genKey(u)}, args: []string{u}, retryable: true})
	flat, err := res.ToArray()
	if err != nil {
		return nil, s.fail("list", err)
	}
	if len(flat)%2 != 0 {
		return nil, s.fail("list", fmt.Errorf("%w: list answered %d values", errCorrupt, len(flat)))
	}
	out := make([]*session.Record, 0, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		r := &session.Record{UserID: userID}
		hx, err := flat[i].ToString()
		if err == nil {
			err = decodeHash(hx, &r.Hash)
		}
		var stored string
		if err == nil {
			stored, err = flat[i+1].ToString()
		}
		if err == nil {
			err = decodeStored(stored, r)
		}
		if err != nil {
			return nil, s.fail("list", err)
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b *session.Record) int { return a.Created.Compare(b.Created) })
	return out, nil
}

func decodeHash(hx string, h *session.Hash) error {
	if len(hx) != 2*len(h) {
		return fmt.Errorf("%w: hash %q", errCorrupt, hx)
	}
	if _, err := hex.Decode(h[:], []byte(hx)); err != nil {
		return fmt.Errorf("%w: hash %q", errCorrupt, hx)
	}
	return nil
}

// RevokeUser bumps the generation of userID, moving keep to the new one if
// it is a live record of the user and deleting the others (one script,
// replicated per Options.MinReplicas), then deletes their pointers.
func (s *Store) RevokeUser(ctx context.Context, userID string, keep *session.Hash) error {
	if s.watches.Closed() {
		return closedError("revoke user")
	}
	defer s.hub.Publish(session.Event{Kind: session.UserRevoked, UserID: userID}) // even if it failed
	u := s.keys.user(userID)
	c := call{
		script: revokeScript,
		keys:   []string{genKey(u), indexKey(u)},
		args:   []string{u, s.keys.channel(), s.message(revokedMsg, []byte(userID))},
	}
	if keep != nil {
		hx := hexHash(*keep)
		c.keys = append(c.keys, recordKey(u, hx))
		c.args = append(c.args, hx)
	}
	gone, err := s.runReplicated(ctx, c).AsStrSlice()
	if err != nil {
		return s.fail("revoke user", err)
	}
	ptrs := make([]string, len(gone))
	for i, hx := range gone {
		ptrs[i] = s.keys.pointer(hx)
	}
	s.dropPointers(ctx, ptrs...)
	return nil
}
