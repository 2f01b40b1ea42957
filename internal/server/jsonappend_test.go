package server

import (
	"encoding/json"
	"testing"
	"time"
)

// checkAppendJSON fails t unless v's appendJSON writes what encoding/json
// writes for v.
func checkAppendJSON(t *testing.T, v jsonAppender) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal(%#v): %v", v, err)
	}
	if got := v.appendJSON(nil); string(got) != string(want) {
		t.Errorf("appendJSON(%#v):\n got %s\nwant %s", v, got, want)
	}
}

// appendJSONCases are answers with what is hard to write in JSON: escapes,
// invalid UTF-8, fractions of a second and time zones. They also seed
// FuzzAppendJSON.
func appendJSONCases() []struct {
	name string
	v    jsonAppender
} {
	created := time.Date(2026, 11, 29, 21, 15, 0, 123456000, time.UTC)
	user := userView{ID: "u_1", Name: "alice", Admin: true, Created: created}
	return []struct {
		name string
		v    jsonAppender
	}{
		{"sign-in", signedInResponse{User: user, CSRFToken: "tok-_en"}},
		{"sign-in with a return address", signedInResponse{User: user, CSRFToken: "t", ReturnTo: "https://app.example/a?b=<c>&d"}},
		{"me", signedInResponse{User: user, CSRFToken: "t", Session: &sessionView{
			ID: "s1", Created: created, LastSeen: created.Add(time.Second), IdleExpiry: created.Add(30 * time.Minute), AbsoluteExpiry: created.Add(12 * time.Hour),
			Device: "A browser on Linux", UserAgent: "Mozilla/5.0 (X11)", IP: "2001:db8::1", Current: true,
		}}},
		{"zero", signedInResponse{}},
		{"whole seconds", userView{Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{"time zone", userView{Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", -(3*3600+30*60)))}},
		{"escapes", sessionView{UserAgent: "\"\\/\b\f\n\r\t\x00\x1f\x7f<script>&amp;"}},
		{"unicode", sessionView{UserAgent: "héllo, 世界 😀 \u2028\u2029 \ufffd"}},
		{"invalid UTF-8", sessionView{UserAgent: "a\xffb\xc3(\xe2\x28\xa1\xf0\x9f\x98"}},
	}
}

func TestAppendJSON(t *testing.T) {
	for _, tc := range appendJSONCases() {
		t.Run(tc.name, func(t *testing.T) { checkAppendJSON(t, tc.v) })
	}
}

// FuzzAppendJSON: for any strings, flags and times (years 0–9999, as
// encoding/json allows), appendJSON writes what encoding/json writes.
func FuzzAppendJSON(f *testing.F) {
	for _, tc := range appendJSONCases() {
		a := appendJSONArgsOf(tc.v)
		f.Add(a.id, a.name, a.agent, a.ip, a.token, a.flag, a.sec, a.nsec, a.sec2, a.offset)
	}
	f.Add("u_1", "alice", "Mozilla/5.0 <b>&\u2028", "127.0.0.1", "tok", true, int64(1e9), int64(0), int64(7), int64(3600))
	// The last and the first second of the years encoding/json writes.
	f.Add("\x00", "\xff", "\"\\", "", "", false, int64(-62135596800), int64(999999999), int64(253402300799), int64(-50400))
	f.Add("", "", "", "", "", true, int64(-62135596800), int64(0), int64(-62167219200), int64(0))
	f.Fuzz(func(t *testing.T, id, name, agent, ip, token string, flag bool, sec, nsec, sec2, offset int64) {
		const minSec, maxSec = -62167219200, 253402300799 // 0000-01-01, 9999-12-31 UTC
		// t1 is in a zone up to a day off UTC, so a day inside the
		// years; t2 is in UTC, so anywhere in them.
		if sec < minSec+86400 || sec > maxSec-86400 || sec2 < minSec || sec2 > maxSec {
			t.Skip("a year encoding/json refuses")
		}
		zone := time.FixedZone("", int(offset%86400/60*60)) // whole minutes: RFC 3339 has no seconds of offset
		t1 := time.Unix(sec, nsec%1e9).In(zone)
		t2 := time.Unix(sec2, 0).UTC()
		checkAppendJSON(t, signedInResponse{
			User: userView{ID: id, Name: name, Admin: flag, Created: t1},
			Session: &sessionView{ID: token, Created: t2, LastSeen: t1, IdleExpiry: t2, AbsoluteExpiry: t1,
				Device: name, UserAgent: agent, IP: ip, Current: !flag},
			CSRFToken: token,
			ReturnTo:  agent,
		})
	})
}

// appendJSONArgs are the arguments of FuzzAppendJSON.
type appendJSONArgs struct {
	id, name, agent, ip, token string
	flag                       bool
	sec, nsec, sec2, offset    int64
}

// appendJSONArgsOf returns the arguments of FuzzAppendJSON that build an
// answer with v's strings, flag and times.
func appendJSONArgsOf(v jsonAppender) appendJSONArgs {
	var u userView
	var s sessionView
	var token string
	switch v := v.(type) {
	case signedInResponse:
		u, token = v.User, v.CSRFToken
		if v.Session != nil {
			s = *v.Session
		}
	case userView:
		u = v
	case sessionView:
		s, token = v, v.ID
		u.Created = v.LastSeen
	}
	_, off := u.Created.Zone()
	return appendJSONArgs{u.ID, u.Name, s.UserAgent, s.IP, token, u.Admin, u.Created.Unix(), int64(u.Created.Nanosecond()), s.Created.Unix(), int64(off)}
}
