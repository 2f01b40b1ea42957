package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"

	"github.com/redis/rueidis"
)

// A script runs on the slot of one user's keys (all of them, declared or
// built from the user's key start, share its hash tag). Scripts answer a
// failure with a negative integer, one of these.
const (
	replyConflict = -1 // a create found the hash or id taken; a save found another version or id
	replyNotFound = -2 // a save found no live record; a rotation found the record it replaces dead
	replyRevoked  = -3 // a create found the user's generation moved past the caller's
)

// libLua is shared by the scripts. A stored record is a string (see
// encodeStored): parse returns its generation, version and absolute
// deadline as stored (strings of digits), its public id and the position of
// the rest, or nothing if rec is no record. prune drops from the user's
// index idx the entries that expired by Redis's clock; index files hash in
// idx with score exp (the record's expiry, Unix ms), prunes, and has the
// index expire with its last entry: the index holds the user's live
// sessions (RevokeUser empties it of the others), never more. drop deletes
// the record under key of the user whose keys start with u, and its id's
// claim. evict is drop by hash, with the index entry, and publishes the
// record's invalidation on channel ch: head (a Changed message's kind and
// origin), then the hash in bytes.
const libLua = `
local function parse(rec)
	local g, v, a, n, p = string.match(rec, '^(%d+) (%d+) (%d+) (%d+)\n()')
	if not g then return nil end
	n = tonumber(n)
	return g, v, a, string.sub(rec, p, p + n - 1), p + n
end
local function now()
	local t = redis.call('TIME')
	return t[1] * 1000 + math.floor(t[2] / 1000)
end
local function prune(idx)
	redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. now())
end
local function index(idx, exp, hash)
	redis.call('ZADD', idx, exp, hash)
	prune(idx)
	local last = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
	if last[2] then redis.call('PEXPIREAT', idx, last[2]) end
end
local function drop(u, key)
	local rec = redis.call('GET', key)
	if not rec then return end
	local _, _, _, id = parse(rec)
	redis.call('DEL', key)
	if id then redis.call('DEL', u .. 'd:' .. id) end
end
local function unhex(hx)
	return (string.gsub(hx, '..', function(c) return string.char(tonumber(c, 16)) end))
end
local function evict(u, hash, ch, head)
	drop(u, u .. 's:' .. hash)
	redis.call('ZREM', u .. 'i', hash)
	redis.call('PUBLISH', ch, head .. unhex(hash))
end
`

// createScript: KEYS record, generation, index, id and, for a rotation,
// the record replaced; ARGV id, encoded rest, expiry (Unix ms), absolute
// deadline (Unix ms), hash (hex), the generation the caller read, the cap
// (0 for none), the user's key start, channel, message head (see
// evict) and, for a rotation, the replaced hash (hex). Checked in this
// order: the generation is still the caller's (or, for a rotation, the
// replaced record is live and its generation is taken instead), the hash
// and id are free. Then it deletes the replaced record and, with a cap,
// the records that expire first until the new one fits, publishing an
// invalidation for each, and writes the record. It answers {generation
// stamped, hash, ...} with the hashes (hex) of the records it deleted, or
// replyRevoked, replyNotFound (the replaced record is not live) or
// replyConflict.
var createScript = newScript(libLua + `
local u, cap = ARGV[8], tonumber(ARGV[7])
local gen = redis.call('GET', KEYS[2]) or '0'
if KEYS[5] then
	local old = redis.call('GET', KEYS[5])
	local g = old and parse(old)
	if not g or tonumber(g) < tonumber(gen) then return -2 end
	gen = g
elseif ARGV[6] ~= gen then
	return -3
end
if redis.call('EXISTS', KEYS[1], KEYS[4]) > 0 then return -1 end
local out = {gen}
if KEYS[5] then
	evict(u, ARGV[11], ARGV[9], ARGV[10])
	out[#out + 1] = ARGV[11]
end
prune(KEYS[3])
local over = cap > 0 and redis.call('ZCARD', KEYS[3]) - cap + 1 or 0
if over > 0 then
	local first = redis.call('ZPOPMIN', KEYS[3], over)
	for i = 1, #first, 2 do
		evict(u, first[i], ARGV[9], ARGV[10])
		out[#out + 1] = first[i]
	end
end
redis.call('SET', KEYS[1], gen .. ' 1 ' .. ARGV[4] .. ' ' .. #ARGV[1] .. '\n' .. ARGV[1] .. ARGV[2], 'PXAT', ARGV[3])
redis.call('SET', KEYS[4], ARGV[5], 'PXAT', ARGV[3])
index(KEYS[3], ARGV[3], ARGV[5])
return out
`)

// updateScript: KEYS record, generation, index, id; ARGV version, id,
// encoded rest, expiry, absolute deadline, hash, channel, message. It
// answers {new version, 1 if the absolute deadline changed else 0},
// replyNotFound (no record, or revoked by generation), or replyConflict
// (another version, or its id changed).
var updateScript = newScript(libLua + `
local rec = redis.call('GET', KEYS[1])
if not rec then return -2 end
local g, v, a, id = parse(rec)
if tonumber(g) < tonumber(redis.call('GET', KEYS[2]) or '0') then return -2 end
if v ~= ARGV[1] or id ~= ARGV[2] then return -1 end
v = tonumber(v) + 1
redis.call('SET', KEYS[1], g .. ' ' .. v .. ' ' .. ARGV[5] .. ' ' .. #id .. '\n' .. id .. ARGV[3], 'PXAT', ARGV[4])
redis.call('PEXPIREAT', KEYS[4], ARGV[4])
index(KEYS[3], ARGV[4], ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[8])
local moved = 0
if a ~= ARGV[5] then moved = 1 end
return {v, moved}
`)

// deleteScript: KEYS record, index; ARGV the user's key start, hash,
// channel, message. It removes the record, its id and its index entry.
var deleteScript = newScript(libLua + `
drop(ARGV[1], KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 0
`)

// revokeScript: KEYS generation, index and, optionally, the record to
// keep; ARGV the user's key start, channel, message and, optionally, the
// kept hash (hex). It bumps the generation, moves the kept record to it if
// the record is live, deletes every other record of the index with its id,
// and leaves the index holding the kept record alone. It answers the
// hashes (hex) of the index's entries it deleted, so that their pointers
// can go too.
var revokeScript = newScript(libLua + `
local u, keep = ARGV[1], ARGV[4]
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
local new = redis.call('INCR', KEYS[1])
local rec = KEYS[3] and redis.call('GET', KEYS[3])
local g = rec and parse(rec)
local score
if g and tonumber(g) >= old then
	redis.call('SET', KEYS[3], new .. string.sub(rec, #g + 1), 'KEEPTTL')
	score = redis.call('ZSCORE', KEYS[2], keep)
end
local gone = {}
for _, h in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
	if not (score and h == keep) then
		drop(u, u .. 's:' .. h)
		gone[#gone + 1] = h
	end
end
redis.call('DEL', KEYS[2])
if score then index(KEYS[2], score, keep) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return gone
`)

// listScript: KEYS index, generation; ARGV the user's key start. It
// answers {hash, record, ...} for the live records of the index, and drops
// from the index the entries of records expired, deleted or revoked.
var listScript = newScript(libLua + `
prune(KEYS[1])
local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
local out = {}
for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
	local rec = redis.call('GET', ARGV[1] .. 's:' .. h)
	if rec and tonumber((parse(rec))) >= gen then
		out[#out + 1] = h
		out[#out + 1] = rec
	else
		redis.call('ZREM', KEYS[1], h)
	end
end
return out
`)

// script is a Lua script run with EVALSHA, and EVAL when Redis doesn't
// know it yet (after a restart, or on a new node).
type script struct {
	src, sha string
}

func newScript(src string) *script {
	sum := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(sum[:])}
}

// call is one run of a script.
type call struct {
	script     *script
	keys, args []string
	retryable  bool // safe to send again after a network error: it only reads, or its writes are idempotent
}

// command builds c as EVALSHA, or as EVAL when full.
func (c call) command(b rueidis.Builder, full bool) rueidis.Completed {
	var cmd rueidis.Completed
	if full {
		cmd = b.Eval().Script(c.script.src).Numkeys(int64(len(c.keys))).Key(c.keys...).Arg(c.args...).Build()
	} else {
		cmd = b.Evalsha().Sha1(c.script.sha).Numkeys(int64(len(c.keys))).Key(c.keys...).Arg(c.args...).Build()
	}
	if c.retryable {
		cmd = cmd.ToRetryable()
	}
	return cmd
}

// run runs c and returns its answer.
func (s *Store) run(ctx context.Context, c call) rueidis.RedisResult {
	res := s.client.Do(ctx, c.command(s.client.B(), false))
	if isNoScript(res.Error()) {
		res = s.client.Do(ctx, c.command(s.client.B(), true))
	}
	return res
}

// runReplicated runs c and, when Options.MinReplicas is set, waits on the
// same connection until that many replicas have acknowledged it (WAIT);
// too few by Options.WaitTimeout is an error wrapping ErrNotReplicated.
// WAIT counts everything the connection's primary wrote up to c, so it
// covers the earlier writes of the call on that primary too.
//
// A replicated call sends the script's source (EVAL), not its digest: a
// NOSCRIPT answer would come after the WAIT that follows it in the
// pipeline, which on a primary fresh from a failover, its replicas not yet
// attached, waits the whole WaitTimeout for nothing. Creates and
// revocations are not the hot path; the source is two kilobytes at most.
func (s *Store) runReplicated(ctx context.Context, c call) rueidis.RedisResult {
	if s.minReplicas == 0 {
		return s.run(ctx, c)
	}
	return s.waitFor(ctx, c.command(s.client.B(), true))
}

// waitFor sends cmd and a WAIT in one pipeline on one connection (rueidis
// sends a keyless command of a pipeline to the node of the keyed one).
func (s *Store) waitFor(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	wait := s.client.B().Wait().Numreplicas(int64(s.minReplicas)).Timeout(s.waitTimeout.Milliseconds()).Build()
	res := s.client.DoMulti(ctx, cmd, wait)
	if err := res[0].Error(); err != nil {
		return res[0]
	}
	n, err := res[1].AsInt64()
	if err != nil {
		return rueidis.NewErrorResult(err)
	}
	if n < int64(s.minReplicas) {
		return rueidis.NewErrorResult(fmt.Errorf("%w: %d of %d replicas acknowledged within %v", ErrNotReplicated, n, s.minReplicas, s.waitTimeout))
	}
	return res[0]
}

func isNoScript(err error) bool {
	e, ok := rueidis.IsRedisErr(err)
	return ok && e.IsNoScript()
}
