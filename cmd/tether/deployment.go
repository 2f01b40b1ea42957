package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/store/redis"
)

// The deployment record (ADM-01). serve writes into the account store
// which session store the deployment uses; every admin command reads it
// and refuses to run with other session-store settings, since on another
// store "ended all their sessions" would be a lie: the server would
// still accept them.
//
// No record: no serve or init of this version has run on the account
// store, so nothing says where the sessions are; admin commands refuse
// and say how to make one. serve with other settings than the record
// replaces it, loudly (moving sessions from SQLite to Redis is
// legitimate), unless a serve with the recorded settings was heard from
// within recordLive: then two nodes would disagree, and the newcomer
// refuses to start, or, given only another URL of the same kind of store
// and prefix (a proxy per node), starts with a warning (see
// claimDeployment).

// deploymentSetting is the account store's setting that holds the record.
const deploymentSetting = "deployment"

const (
	// recordHeartbeat is how often a running serve marks the record
	// served.
	recordHeartbeat = 20 * time.Second
	// recordLive is how long after its last mark a serve counts as
	// running: three missed marks.
	recordLive = 3 * recordHeartbeat
)

// sessionStore is where a deployment's sessions live, as the record
// keeps it: comparable, and without secrets.
type sessionStore struct {
	Kind string `json:"kind"` // "sqlite", "redis" or "postgres"
	// Location is a store URL with its password masked (redactURL), or
	// the SQLite file's absolute path when the accounts are elsewhere;
	// empty for the file that also holds the accounts, and the record.
	Location    string `json:"location,omitempty"`
	RedisPrefix string `json:"redis_prefix,omitempty"` // the effective one, default included
}

// deployment is the record.
type deployment struct {
	ID string `json:"id"` // made once, kept when the sessions move
	sessionStore
	Recorded time.Time `json:"recorded"` // when sessionStore was recorded
	By       string    `json:"by"`       // "serve on HOST", "init on HOST"
	// Served is the last mark of a running serve with these settings;
	// zero when only init or user add --create recorded them.
	Served time.Time `json:"served,omitzero"`
}

// sessionStoreOf returns where c keeps the sessions.
func sessionStoreOf(c config) sessionStore {
	switch {
	case c.Sessions == "" && c.Accounts == "":
		return sessionStore{Kind: "sqlite"}
	case c.Sessions == "":
		abs, err := filepath.Abs(c.Data)
		if err != nil {
			abs = c.Data
		}
		return sessionStore{Kind: "sqlite", Location: abs}
	case isPostgresURL(c.Sessions):
		return sessionStore{Kind: "postgres", Location: redactURL(c.Sessions)}
	default:
		return sessionStore{Kind: "redis", Location: redactURL(c.Sessions), RedisPrefix: cmp.Or(c.RedisPrefix, redis.DefaultKeyPrefix)}
	}
}

// String describes s for an operator.
func (s sessionStore) String() string {
	switch {
	case s.Kind == "sqlite" && s.Location == "":
		return "the --data file, beside the users"
	case s.Kind == "sqlite":
		return "the SQLite file " + s.Location
	case s.Kind == "redis":
		return fmt.Sprintf("%s with --redis-prefix %q", s.Location, s.RedisPrefix)
	default:
		return s.Location
	}
}

// flags says which flags, and environment variables, select s.
func (s sessionStore) flags() string {
	var f string
	switch {
	case s.Kind == "sqlite" && s.Location == "":
		return "no --sessions and no --redis-prefix (TETHER_SESSIONS and TETHER_REDIS_PREFIX empty)"
	case s.Kind == "sqlite":
		f = fmt.Sprintf("--data %s and no --sessions (TETHER_DATA, TETHER_SESSIONS empty)", s.Location)
	case s.Kind == "redis":
		f = fmt.Sprintf("--sessions %s --redis-prefix %q (TETHER_SESSIONS, TETHER_REDIS_PREFIX)", s.Location, s.RedisPrefix)
	default:
		f = fmt.Sprintf("--sessions %s (TETHER_SESSIONS)", s.Location)
	}
	if strings.Contains(s.Location, "xxxxx") || strings.Contains(s.Location, "(unreadable)") {
		f += ", with the password the record leaves out"
	}
	return f
}

// errDamagedRecord is the error of a record that doesn't parse.
var errDamagedRecord = errors.New("the deployment record in the account store is damaged: run tether init with the server's settings to record them again")

// readDeployment returns the record and its stored form; ErrNoSetting if
// there is none, errDamagedRecord (and the stored form) if it doesn't
// parse.
func readDeployment(ctx context.Context, acc accounts) (deployment, []byte, error) {
	raw, err := acc.Setting(ctx, deploymentSetting)
	if err != nil {
		return deployment{}, nil, err
	}
	var d deployment
	if err := json.Unmarshal(raw, &d); err != nil {
		return deployment{}, raw, fmt.Errorf("%w (%v)", errDamagedRecord, err)
	}
	return d, raw, nil
}

// recording says what claimDeployment is for.
type recording struct {
	by      string // who records: "serve on HOST"
	serving bool   // a running serve: mark the record served
	mayMove bool   // replace a record of other settings if no serve is running with them
}

// claimDeployment makes the record say that the sessions live where c
// keeps them, and returns it. While a serve with the recorded settings
// runs, it refuses settings that conflict with them (another kind of
// store, another Redis prefix, another SQLite file), and keeps the record
// as it is for another URL of the same kind and prefix, most likely the
// same store reached another way (a proxy per node), warning at start. A
// record that no running serve backs is replaced only if r.mayMove; a
// move is logged to log as a warning.
func claimDeployment(ctx context.Context, acc accounts, c config, r recording, now time.Time, log *slog.Logger) (deployment, error) {
	want := sessionStoreOf(c)
	// Another node may write between the read and the swap: then read
	// again. Nodes that agree settle in two rounds.
	for range 3 {
		old, raw, err := readDeployment(ctx, acc)
		damaged := errors.Is(err, errDamagedRecord)
		if err != nil && !errors.Is(err, account.ErrNoSetting) && !(damaged && r.mayMove) {
			return deployment{}, err
		}
		live := now.Sub(old.Served) < recordLive
		d, changed := old, true
		switch {
		case raw == nil || damaged:
			d = deployment{ID: "d_" + rand.Text(), sessionStore: want, Recorded: now.UTC(), By: r.by}
		case old.sessionStore == want:
			changed = false
		case !conflicts(old.sessionStore, want) && (live || !r.mayMove):
			changed = false
			if r.mayMove { // at start, not at every mark
				log.Warn("this node reaches its session store by another URL than the one recorded: if it is not the same store, stop this node, "+
					"since the admin commands act on the recorded one only", "component", "deployment", "deployment", old.ID,
					"recorded", old.sessionStore.String(), "here", want.String())
			}
		case !r.mayMove:
			return deployment{}, fmt.Errorf("the deployment record now says sessions live in %s (recorded by %s at %s), not in this node's %s: "+
				"admin commands act there; stop this node, or restart it with %s",
				old.sessionStore, old.By, old.Recorded.Format(time.RFC3339), want, old.flags())
		case live:
			return deployment{}, fmt.Errorf("another node of this deployment keeps sessions in %s and ran %s ago (recorded by %s at %s); "+
				"this one was given %s: start it with %s, or, to move the sessions, stop every node and start again after %s",
				old.sessionStore, now.Sub(old.Served).Round(time.Second), old.By, old.Recorded.Format(time.RFC3339),
				want, old.flags(), old.Served.Add(recordLive).Format(time.RFC3339))
		default:
			d = deployment{ID: old.ID, sessionStore: want, Recorded: now.UTC(), By: r.by}
		}
		if !changed && !r.serving {
			return d, nil
		}
		if r.serving {
			d.Served = now.UTC()
		}
		fresh, err := json.Marshal(d)
		if err != nil {
			return deployment{}, err
		}
		if err := acc.SwapSetting(ctx, deploymentSetting, raw, fresh); errors.Is(err, account.ErrSettingChanged) {
			continue
		} else if err != nil {
			return deployment{}, fmt.Errorf("recording the deployment's session store: %w", err)
		}
		switch {
		case damaged:
			log.Warn("replaced a damaged deployment record", "component", "deployment", "deployment", d.ID, "sessions", d.sessionStore.String())
		case raw == nil:
			log.Info("recorded where this deployment keeps its sessions: admin commands must use the same", "component", "deployment",
				"deployment", d.ID, "sessions", d.sessionStore.String())
		case changed:
			log.Warn("THE SESSIONS MOVED: sessions kept elsewhere before are no longer accepted, and admin commands now need the new settings",
				"component", "deployment", "deployment", d.ID, "from", old.sessionStore.String(), "to", want.String(), "flags", want.flags())
		}
		return d, nil
	}
	return deployment{}, errors.New("the deployment record kept changing while this node recorded its session store: are nodes starting with different settings?")
}

// conflicts reports whether session stores a and b can't be one store
// reached by two URLs: they differ in kind, Redis prefix or namespace, or
// are SQLite files (which have one name).
func conflicts(a, b sessionStore) bool {
	return a.Kind != b.Kind || a.RedisPrefix != b.RedisPrefix || a.Kind == "sqlite" || namespace(a.Location) != namespace(b.Location)
}

// namespace is what names a store within its server in a store URL: the
// path (Redis's database or Sentinel's master, PostgreSQL's database) and
// PostgreSQL's search_path.
func namespace(location string) string {
	u, err := url.Parse(location)
	if err != nil {
		return location
	}
	return u.Path + "?" + u.Query().Get("search_path")
}

// checkDeployment returns nil if the record says the sessions live where
// c keeps them, else an error naming the settings the server uses. An
// admin command calls it before it touches a session or credential
// (ADM-01).
func checkDeployment(ctx context.Context, acc accounts, c config) error {
	d, _, err := readDeployment(ctx, acc)
	if errors.Is(err, account.ErrNoSetting) {
		return fmt.Errorf("%s has no record of where this deployment keeps its sessions (no tether serve or tether init of this version has run on it): "+
			"start tether serve once, or run tether init with the server's settings, then run this command again", accountsPlace(c))
	}
	if err != nil {
		return err
	}
	if want := sessionStoreOf(c); d.sessionStore != want {
		return fmt.Errorf("this deployment keeps sessions in %s (recorded by %s at %s), but this command was given %s: "+
			"run it with %s, or with the same TETHER_* environment as the server",
			d.sessionStore, d.By, d.Recorded.Format(time.RFC3339), want, d.flags())
	}
	return nil
}

// accountsPlace names the account store c uses, for an operator.
func accountsPlace(c config) string {
	if c.Accounts != "" {
		return redactURL(c.Accounts)
	}
	return showPath(c.Data)
}

// recordServe is serve's part of the record: it claims the record for c's
// session store within openTimeout, refusing to start when a running node
// uses another, then keeps it marked served (keepServed) until stop.
func recordServe(ctx context.Context, acc accounts, c config, log *slog.Logger) (stop func(), err error) {
	by := recorder("serve")
	cctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	if _, err := claimDeployment(cctx, acc, c, recording{by: by, serving: true, mayMove: true}, time.Now(), log); err != nil {
		return nil, err
	}
	return keepServed(ctx, acc, c, by, recordHeartbeat, log), nil
}

// keepServed marks the record served every interval until the returned
// stop is called, so that a node started with other settings meanwhile
// refuses to start. A mark that fails, or finds the record moved to other
// settings, is logged as an error each time.
func keepServed(ctx context.Context, acc accounts, c config, by string, every time.Duration, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				mctx, done := context.WithTimeout(ctx, every/2)
				_, err := claimDeployment(mctx, acc, c, recording{by: by, serving: true}, now, log)
				done()
				if err != nil && ctx.Err() == nil {
					log.Error("deployment record not marked served", "component", "deployment", "err", err)
				}
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// recorder names who records: the command and the host it runs on.
func recorder(command string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "an unnamed host"
	}
	return command + " on " + host
}

// stderrLog is a logger for what a command that doesn't serve says about
// the record: on a terminal, without the time.
func stderrLog(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
}
