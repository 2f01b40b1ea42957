package postgres

import (
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tetherauth/tether/internal/testkit/pgtest"
	"github.com/tetherauth/tether/session"
)

var (
	hashHex     = strings.Repeat("0f", 32)
	messageHash = session.Hash([]byte(strings.Repeat("\x0f", 32)))
)

var messageTests = []struct {
	name string
	in   string
	want session.Event // zero: an error
}{
	{"changed", "c0000000000000007" + hashHex, session.Event{Kind: session.Changed, Hash: messageHash}},
	{"revoked", "u0000000000000007alice", session.Event{Kind: session.UserRevoked, UserID: "alice"}},
	{"revoked, user id of any text", "u0000000000000007ü:{ }", session.Event{Kind: session.UserRevoked, UserID: "ü:{ }"}},
	{"revoked, empty user id", "u0000000000000007", session.Event{Kind: session.UserRevoked}},
	{"token revoked", "t0000000000000007j0 1893760245123456 jti:1", session.Event{Kind: session.TokenRevoked,
		Revocation: session.Revocation{JTI: "jti:1", Exp: time.UnixMicro(1893760245123456).UTC()}}},
	{"subject revoked", "t0000000000000007s3 1893760245123456 client:billing", session.Event{Kind: session.TokenRevoked,
		Revocation: session.Revocation{Subject: "client:billing", Gen: 3, Exp: time.UnixMicro(1893760245123456).UTC()}}},
	{"token revoked, corrupt entry", "t0000000000000007j1 1893760245123456 jti:1", session.Event{}},
	{"token revoked, no entry", "t0000000000000007", session.Event{}},
	{"empty", "", session.Event{}},
	{"not a message", "hello", session.Event{}},
	{"header cut short", "c000000000000007", session.Event{}},
	{"unknown kind", "x0000000000000007" + hashHex, session.Event{}},
	{"origin not hex", "c000000000000000g" + hashHex, session.Event{}},
	{"origin with a sign", "u+000000000000007alice", session.Event{}},
	{"origin in upper case", "c000000000000000A" + hashHex, session.Event{}},
	{"hash cut short", "c0000000000000007" + hashHex[2:], session.Event{}},
	{"hash too long", "c0000000000000007" + hashHex + "00", session.Event{}},
	{"hash of odd length", "c0000000000000007" + hashHex + "0", session.Event{}},
	{"hash not hex", "c0000000000000007" + hashHex[2:] + "zz", session.Event{}},
	{"hash in upper case", "c0000000000000007" + strings.ToUpper(hashHex), session.Event{}},
}

func TestParseMessage(t *testing.T) {
	for _, tc := range messageTests {
		t.Run(tc.name, func(t *testing.T) {
			origin, got, err := parseMessage(tc.in)
			if tc.want == (session.Event{}) {
				if !errors.Is(err, errCorrupt) {
					t.Errorf("parseMessage(%q): got %+v, error %v; want error %v", tc.in, got, err, errCorrupt)
				}
				return
			}
			if err != nil || got != tc.want || origin != 7 {
				t.Errorf("parseMessage(%q): got %d, %+v, %v; want 7, %+v, nil", tc.in, origin, got, err, tc.want)
			}
			if back := message(origin, got); back != tc.in {
				t.Errorf("message(parseMessage(%q)): got %q", tc.in, back)
			}
		})
	}
}

// Anyone who can connect to the database can notify on the channel,
// anything: parseMessage accepts exactly what message returns.
func FuzzParseMessage(f *testing.F) {
	for _, tc := range messageTests {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		origin, ev, err := parseMessage(in)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Errorf("parseMessage(%q): got error %v, want %v", in, err, errCorrupt)
			}
			return
		}
		if ev.Kind != session.Changed && ev.Kind != session.UserRevoked && ev.Kind != session.TokenRevoked {
			t.Errorf("parseMessage(%q): got %+v and no error", in, ev)
		}
		if back := message(origin, ev); back != in {
			t.Errorf("message(parseMessage(%q)): got %q", in, back)
		}
	})
}

func TestChannelName(t *testing.T) {
	longest := strings.Repeat("s", maxIdentifier-len(channelPrefix))
	tests := []struct {
		name, schema string
		want         string // "": hashedChannelPrefix and 32 hex digits of the schema's own
	}{
		{"short", "t_0123", "tether_sessions:t_0123"},
		{"any character", `My "Schema"; ü`, `tether_sessions:My "Schema"; ü`},
		{"the longest kept", longest, "tether_sessions:" + longest},
		{"one byte too long", longest + "s", ""},
		{"the longest schema", strings.Repeat("x", maxIdentifier), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := channelName(tc.schema)
			if tc.want != "" {
				if got != tc.want {
					t.Errorf("channelName(%q): got %q, want %q", tc.schema, got, tc.want)
				}
				return
			}
			digits, ok := strings.CutPrefix(got, hashedChannelPrefix)
			if _, err := hex.DecodeString(digits); !ok || err != nil || len(digits) != 32 || got == channelName(tc.schema[1:]) {
				t.Errorf("channelName(%q): got %q, want %s and 32 hex digits of its own", tc.schema, got, hashedChannelPrefix)
			}
		})
	}
}

// The name LISTEN is given, quoted, is exactly the one pg_notify is given.
func TestChannelNameQuoted(t *testing.T) {
	conn, err := openPool(t, pgtest.Schema(t)).Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, schema := range []string{`My "Schema"; ü`, "tab\tand'quote", strings.Repeat("ü", 31)} {
		name := channelName(schema)
		if _, err := conn.Exec(t.Context(), "LISTEN "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Fatalf("LISTEN %q: %v", name, err)
		}
		rows, _ := conn.Query(t.Context(), `SELECT pg_listening_channels()`)
		listening, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(listening, name) {
			t.Errorf("listening on %q, got channels %q", name, listening)
		}
		if _, err := conn.Exec(t.Context(), `UNLISTEN *`); err != nil {
			t.Fatal(err)
		}
	}
}
