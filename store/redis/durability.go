package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/rueidis"
)

// Crash names the worst failure an acknowledged revocation survives on
// one Redis server, weakest first (SES-15).
type Crash int

const (
	// CrashNone: not even a restart. Redis snapshots (save) without the
	// append-only file, so a restart loads a snapshot older than the last
	// revocations and brings their sessions back.
	CrashNone Crash = iota
	// CrashProcess: Redis itself killed (kill -9, out of memory). The
	// append-only file has every acknowledged write (Redis writes it
	// before it replies), but fsyncs it only every second (appendfsync
	// everysec) or when the kernel pleases (no): a power cut or kernel
	// crash loses up to the last second or more, and with it revocations.
	// One exception: with everysec, while an fsync takes over a second (a
	// busy disk), Redis holds writes back in memory for up to 2 s and
	// replies all the same; Durability.HeldBack counts those times.
	CrashProcess
	// CrashHost: the machine losing power or its kernel. Redis fsyncs the
	// append-only file before every reply (appendfsync always), or keeps
	// no data at all across a restart (then every session ends with it:
	// nobody is let in, everybody signs in again).
	CrashHost
)

func (c Crash) String() string {
	switch c {
	case CrashNone:
		return "nothing: a restart can bring revoked sessions back"
	case CrashProcess:
		return "a Redis process crash, not a host crash"
	case CrashHost:
		return "a host crash"
	}
	return "Crash(" + strconv.Itoa(int(c)) + ")"
}

// Durability is what the Redis servers holding the sessions keep of an
// acknowledged revocation: how each persists it, and whether replicas
// have it first (Options.MinReplicas). Store.Durability reads it.
type Durability struct {
	// Local is the worst crash a primary's own persistence survives; the
	// weakest primary's, in a Cluster.
	Local Crash
	// Persistent: the primaries keep their data across a restart (the
	// append-only file, or snapshots). False: a restart ends every
	// session.
	Persistent bool
	// FsyncKnown is false when a primary refused CONFIG GET (a managed
	// Redis may rename it): then an append-only file's fsync policy is
	// unknown and Local assumes everysec.
	FsyncKnown bool
	// Replicas is the fewest replicas online of a primary; MinReplicas the
	// number every revocation waits for (WAIT). With MinReplicas ≥ 1, an
	// acknowledged revocation is on two machines and survives losing
	// either one, the primary included (a failover promotes a replica that
	// has it), but not a power cut of all of them unless Local is
	// CrashHost on each.
	Replicas, MinReplicas int
	// HeldBack is how often, since it started, a primary held writes of
	// the append-only file back because an fsync was slow (INFO's
	// aof_delayed_fsync): each time, up to 2 s of acknowledged writes sat
	// in memory only, and a Redis crash then would have undone them.
	HeldBack int
	// Eviction is the maxmemory-policy (INFO's maxmemory_policy) of a
	// primary: one that evicts keys, if any primary does, else
	// NoEviction; "" if INFO didn't say. Only NoEviction is safe: an
	// allkeys-* policy may evict a user's generation and bring back the
	// sessions it revoked, a volatile-* one a user's index, hiding a live
	// session from its user's list (SES-10) and the cap (SES-13).
	Eviction string
}

// NoEviction is the maxmemory-policy under which Redis evicts no key: it
// refuses writes past maxmemory instead.
const NoEviction = "noeviction"

// SurvivesMachineLoss reports whether a revocation, once acknowledged,
// survives losing a whole machine, the primary's: replicas acknowledged it.
func (d Durability) SurvivesMachineLoss() bool { return d.MinReplicas > 0 }

// HostCrashCanUndo reports whether a crash of the primary's host (a
// power cut, then a reboot) could undo an acknowledged revocation: its
// own persistence doesn't survive one. Replicas don't help there: a
// primary back before a failover keeps its role, and its replicas copy
// the older data it restarted with. They help when the machine stays
// down (SurvivesMachineLoss).
func (d Durability) HostCrashCanUndo() bool { return d.Local < CrashHost }

// String says, in a line for the log, which failures an acknowledged
// revocation survives.
func (d Durability) String() string {
	if !d.Persistent {
		return "survives every crash by forgetting: Redis keeps no data across a restart, so a restart ends every session"
	}
	s := "survives " + d.Local.String()
	if !d.FsyncKnown {
		s += " (appendfsync unknown: CONFIG GET refused)"
	}
	if d.HeldBack > 0 {
		s += fmt.Sprintf(" (but Redis held writes back %d time(s) for a slow fsync: a crash then could undo up to 2 s)", d.HeldBack)
	}
	if d.SurvivesMachineLoss() {
		s += fmt.Sprintf("; the loss of one machine: %d replica(s) acknowledge every revocation (WAIT)", d.MinReplicas)
	} else {
		s += "; not the loss of the machine: no replica acknowledges revocations (--redis-min-replicas 0)"
	}
	return s
}

// Durability asks every primary how it persists its data and how many
// replicas it has, and says which failures an acknowledged revocation
// survives (SES-15). It reads INFO replication, persistence and memory,
// and CONFIG GET appendfsync and save (INFO doesn't show them).
func (s *Store) Durability(ctx context.Context) (Durability, error) {
	clients := map[string]rueidis.Client{s.target.String(): s.client}
	if addrs, err := s.primaries(ctx); err != nil {
		return Durability{}, fmt.Errorf("redis store: durability: %w", err)
	} else if len(addrs) > 0 {
		nodes := s.client.Nodes()
		clients = map[string]rueidis.Client{}
		for _, a := range addrs {
			if c, ok := nodes[a]; ok {
				clients[a] = c
			}
		}
		if len(clients) == 0 {
			return Durability{}, errors.New("redis store: durability: no primary reachable")
		}
	}
	d := Durability{Local: CrashHost, FsyncKnown: true, Replicas: -1, MinReplicas: s.minReplicas, Eviction: NoEviction}
	for addr, c := range clients {
		n, err := nodeDurability(ctx, c)
		if err != nil {
			return Durability{}, fmt.Errorf("redis store: durability of %s: %w", addr, err)
		}
		d.Local = min(d.Local, n.Local)
		d.Persistent = d.Persistent || n.Persistent
		d.FsyncKnown = d.FsyncKnown && n.FsyncKnown
		d.HeldBack += n.HeldBack
		if d.Replicas < 0 || n.Replicas < d.Replicas {
			d.Replicas = n.Replicas
		}
		if evictionRank(n.Eviction) > evictionRank(d.Eviction) {
			d.Eviction = n.Eviction
		}
	}
	return d, nil
}

// evictionRank orders maxmemory policies for Durability.Eviction, which
// names the worst of the primaries': one that evicts, then an unknown one,
// then NoEviction.
func evictionRank(policy string) int {
	switch policy {
	case NoEviction:
		return 0
	case "":
		return 1
	}
	return 2
}

// nodeDurability is Durability for one primary.
func nodeDurability(ctx context.Context, c rueidis.Client) (Durability, error) {
	text, err := c.Do(ctx, c.B().Info().Section("persistence", "replication", "memory").Build()).ToString()
	if err != nil {
		return Durability{}, fmt.Errorf("INFO: %w", err)
	}
	info, err := parseInfo(text)
	if err != nil {
		return Durability{}, err
	}
	conf := map[string]string{}
	res, err := c.Do(ctx, c.B().ConfigGet().Parameter("appendfsync", "save").Build()).AsStrMap()
	if err == nil {
		conf = res
	} else if _, refused := rueidis.IsRedisErr(err); !refused {
		return Durability{}, fmt.Errorf("CONFIG GET: %w", err)
	}
	return classify(info, conf)
}

// parseInfo reads INFO's answer: lines of field:value, section headers
// starting with #, blank lines. A field given twice, or a line of another
// form, is an error.
func parseInfo(text string) (map[string]string, error) {
	info := map[string]string{}
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		field, value, ok := strings.Cut(line, ":")
		if !ok || field == "" {
			return nil, fmt.Errorf("%w: INFO line %q", errCorrupt, line)
		}
		if _, dup := info[field]; dup {
			return nil, fmt.Errorf("%w: INFO field %q twice", errCorrupt, field)
		}
		info[field] = value
	}
	return info, nil
}

// classify says what a server whose INFO fields are info and whose
// configuration (CONFIG GET appendfsync and save, empty if refused) is conf
// keeps of an acknowledged write.
func classify(info, conf map[string]string) (Durability, error) {
	role := info["role"]
	if role != "master" {
		return Durability{}, fmt.Errorf("%w: role %q, want master", errCorrupt, role)
	}
	aof, err := flag(info, "aof_enabled")
	if err != nil {
		return Durability{}, err
	}
	replicas, err := strconv.Atoi(info["connected_slaves"])
	if err != nil || replicas < 0 {
		return Durability{}, fmt.Errorf("%w: connected_slaves %q", errCorrupt, info["connected_slaves"])
	}
	online := 0
	for i := range replicas {
		if strings.Contains(info["slave"+strconv.Itoa(i)], "state=online") {
			online++
		}
	}
	heldBack := 0
	if aof {
		if heldBack, err = strconv.Atoi(info["aof_delayed_fsync"]); err != nil || heldBack < 0 {
			return Durability{}, fmt.Errorf("%w: aof_delayed_fsync %q", errCorrupt, info["aof_delayed_fsync"])
		}
	}
	fsync, fsyncKnown := conf["appendfsync"]
	save, saveKnown := conf["save"]
	d := Durability{FsyncKnown: fsyncKnown, Replicas: online, HeldBack: heldBack, Eviction: info["maxmemory_policy"]}
	switch {
	case aof && fsync == "always":
		d.Local, d.Persistent = CrashHost, true
	case aof:
		d.Local, d.Persistent = CrashProcess, true
	case saveKnown && strings.TrimSpace(save) == "":
		d.Local = CrashHost // nothing kept: a restart ends every session
	default: // snapshots only (or unknown): a restart loads an old one
		d.Local, d.Persistent = CrashNone, true
	}
	return d, nil
}

// flag reads an INFO field that is 0 or 1.
func flag(info map[string]string, field string) (bool, error) {
	switch info[field] {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("%w: %s %q", errCorrupt, field, info[field])
}
