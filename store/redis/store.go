package redis

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/tetherauth/tether/session"
)

// cleanupTimeout bounds the undoing of a half-done create, which runs even
// when the caller's context is done.
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

// Save creates or updates r (see session.Store).
func (s *Store) Save(ctx context.Context, r *session.Record) error {
	if s.watches.Closed() {
		return closedError("save")
	}
	var err error
	if r.Version == 0 {
		err = s.create(ctx, r)
	} else {
		err = s.update(ctx, r)
	}
	if err != nil {
		return s.fail("save", err)
	}
	return nil
}

// expireAt is t in Unix ms, at least 1: Redis refuses to expire a key at
// 0 or before.
func expireAt(t time.Time) int64 { return max(t.UnixMilli(), 1) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (s *Store) create(ctx context.Context, r *session.Record) error {
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
		s.dropPointer(ctx, ptr) // it may have been set
		return err
	}

	u := s.keys.user(r.UserID)
	res = s.runReplicated(ctx, call{
		script: createScript,
		keys:   []string{recordKey(u, hx), genKey(u), indexKey(u), idKey(u, r.ID)},
		args:   []string{r.ID, string(encodeRecord(r)), itoa(expireAt(r.Expiry())), itoa(abs), hx},
	})
	gen, err := res.AsInt64()
	if err == nil && gen == replyConflict {
		err = fmt.Errorf("%w: public id taken", session.ErrConflict)
	}
	if err != nil {
		s.dropPointer(ctx, ptr)
		return err
	}
	r.Gen, r.Version = uint64(gen), 1
	return nil
}

// dropPointer removes the pointer of a create that failed after setting
// it, even if ctx is done; failing that, the pointer expires with the
// session's absolute deadline.
func (s *Store) dropPointer(ctx context.Context, ptr string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := s.client.Do(ctx, s.client.B().Del().Key(ptr).Build()).Error(); err != nil {
		s.log.WarnContext(ctx, "removing the pointer of a failed create", "err", err)
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
// it is a live record of the user (one script, replicated per
// Options.MinReplicas).
func (s *Store) RevokeUser(ctx context.Context, userID string, keep *session.Hash) error {
	if s.watches.Closed() {
		return closedError("revoke user")
	}
	defer s.hub.Publish(session.Event{Kind: session.UserRevoked, UserID: userID}) // even if it failed
	u := s.keys.user(userID)
	keys := []string{genKey(u)}
	if keep != nil {
		keys = append(keys, recordKey(u, hexHash(*keep)))
	}
	res := s.runReplicated(ctx, call{
		script: revokeScript,
		keys:   keys,
		args:   []string{s.keys.channel(), s.message(revokedMsg, []byte(userID))},
	})
	if err := res.Error(); err != nil {
		return s.fail("revoke user", err)
	}
	return nil
}
