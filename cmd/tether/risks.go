package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/tetherauth/tether/store/redis"
)

// The settings of a Redis session store that serve refuses to start on
// unless --redis-accept-risk names them: under the first two, signed-out
// sessions can come back; under the third, every sign-in fails.
const (
	riskPersistence = "persistence"
	riskEviction    = "eviction"
	riskReplicas    = "replicas"
)

// riskNames are every name --redis-accept-risk takes, in the order serve
// reports them.
var riskNames = []string{riskPersistence, riskEviction, riskReplicas}

// risk is a setting of the session store that serve found at start.
type risk struct {
	name  string // one of riskNames
	found string // what the setting is, what it does, and how to fix it
}

// redisRisks returns the risks of a Redis session store whose primaries
// are described by d, and what it could not check (a managed Redis may
// refuse CONFIG GET): serve warns about those instead.
func redisRisks(d redis.Durability) (found []risk, unchecked []string) {
	switch {
	case d.Local == redis.CrashNone && d.FsyncKnown:
		found = append(found, risk{riskPersistence, "Redis keeps snapshots (save) without the append-only file (appendonly no): " +
			"a restart loads a snapshot older than the last sign-outs and brings those sessions back. " +
			"Fix: redis-cli CONFIG SET appendonly yes, then CONFIG REWRITE (or appendonly yes in redis.conf); " +
			`or keep nothing across a restart (save "", every session ends with Redis)`})
	case d.Local == redis.CrashNone:
		unchecked = append(unchecked, "whether Redis keeps snapshots without the append-only file (CONFIG GET save refused): "+
			"if it does, a restart brings signed-out sessions back; turn on appendonly yes")
	}
	switch {
	case d.Eviction == "":
		unchecked = append(unchecked, "Redis's maxmemory-policy (INFO doesn't show it): anything but noeviction "+
			"lets Redis evict sessions and the keys that end them")
	case d.Eviction != redis.NoEviction:
		does := "may evict the key that ended a user's sessions (sign out everywhere, a password change), and those sessions come back"
		if strings.HasPrefix(d.Eviction, "volatile-") { // keys with a TTL only: not the generation
			does = "evicts sessions and the index of a user's sessions, which hides a live session from its user's list of devices (SES-10)"
		}
		found = append(found, risk{riskEviction, fmt.Sprintf("maxmemory-policy is %s: when memory runs short, Redis %s. "+
			"Fix: redis-cli CONFIG SET maxmemory-policy noeviction, then CONFIG REWRITE (or maxmemory-policy noeviction in redis.conf)",
			d.Eviction, does)})
	}
	if d.MinReplicas > d.Replicas {
		found = append(found, risk{riskReplicas, fmt.Sprintf("--redis-min-replicas is %d, but a primary has %d replica(s) online: "+
			"every sign-in and sign-out would wait for them and fail with 503. "+
			"Fix: start the replicas (replicaof), or lower --redis-min-replicas", d.MinReplicas, d.Replicas)})
	}
	return found, unchecked
}

// checkDurability says at start which failures an acknowledged revocation
// survives, and warns when a host crash could undo one (SES-15). It
// refuses a session store with a risk (see redisRisks) that
// c.AcceptRisks doesn't name, naming each setting and its fix; it only
// warns about the risks c.AcceptRisks names and about what it could not
// check.
func checkDurability(ctx context.Context, st *stores, c config, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, durabilityTimeout)
	defer cancel()
	d, err := st.durability(ctx)
	switch {
	case err != nil:
		log.Warn("revocation durability unknown", "component", "serve", "err", err)
	case d.hostCrashCanUndo:
		log.Warn("revocations can be undone by a host crash", "component", "serve", "durability", d.survives)
	default:
		log.Info("revocation durability", "component", "serve", "durability", d.survives)
	}
	for _, u := range d.unchecked {
		log.Warn("session store setting unchecked", "component", "serve", "setting", u)
	}
	var refused []string
	for _, r := range d.risks {
		if slices.Contains(c.AcceptRisks, r.name) {
			log.Warn("session store risk accepted (--redis-accept-risk)", "component", "serve", "risk", r.name, "found", r.found)
			continue
		}
		refused = append(refused, fmt.Sprintf("\n\t%s: %s", r.name, r.found))
	}
	if len(refused) == 0 {
		return nil
	}
	names := make([]string, len(d.risks))
	for i, r := range d.risks {
		names[i] = r.name
	}
	return errors.New("sessions: the Redis at " + redactURL(c.Sessions) + " is not safe to keep sessions in:" + strings.Join(refused, "") +
		"\nChange the settings above, or start with --redis-accept-risk " + strings.Join(names, ",") + " to run anyway, at that risk")
}

// parseRisks parses --redis-accept-risk: a comma-separated list of names
// of riskNames, each named once; it names every bad entry.
func parseRisks(v string) ([]string, error) {
	var names, bad []string
	for f := range strings.SplitSeq(v, ",") {
		switch f = strings.TrimSpace(f); {
		case f == "":
		case !slices.Contains(riskNames, f):
			bad = append(bad, fmt.Sprintf("%q is not a risk", f))
		case slices.Contains(names, f):
			bad = append(bad, fmt.Sprintf("%q is named twice", f))
		default:
			names = append(names, f)
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: want some of %s", strings.Join(bad, "; "), strings.Join(riskNames, ", "))
	}
	return names, nil
}
