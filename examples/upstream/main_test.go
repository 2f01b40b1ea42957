package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestEcho: the method, host, URI and every X-Tether-* header with all its
// values, and no other header.
func TestEcho(t *testing.T) {
	tests := []struct {
		name   string
		method string
		target string
		header http.Header
		want   Echo
	}{
		{"none", "GET", "/", nil, Echo{Method: "GET", Host: "example.com", URI: "/", Tether: map[string][]string{}}},
		{
			"identity", "POST", "/a/b?c=d",
			http.Header{"X-Tether-User": {"alice"}, "X-Tether-Subject-Type": {"user"}, "Cookie": {"x=y"}, "Authorization": {"Bearer t"}},
			Echo{Method: "POST", Host: "example.com", URI: "/a/b?c=d", Tether: map[string][]string{
				"X-Tether-User": {"alice"}, "X-Tether-Subject-Type": {"user"}}},
		},
		{
			"underscores", "GET", "/", http.Header{"X_tether_user": {"mallory"}, "X_other": {"x"}},
			Echo{Method: "GET", Host: "example.com", URI: "/", Tether: map[string][]string{"X_tether_user": {"mallory"}}},
		},
		{
			"every value", "GET", "/", http.Header{"X-Tether-User": {"alice", "mallory"}},
			Echo{Method: "GET", Host: "example.com", URI: "/", Tether: map[string][]string{"X-Tether-User": {"alice", "mallory"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			for k, v := range tt.header {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			echo(w, r)
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %q, want 200 application/json", w.Code, w.Header().Get("Content-Type"))
			}
			var got Echo
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestRun: bad command lines fail; a good one listens, answers, and stops
// when its context ends.
func TestRun(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"extra"}, {"-addr", "no-port"}} {
		if err := run(t.Context(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("run %q: got no error", args)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	log := &logLines{ch: make(chan []byte, 16)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, log) }()
	url := log.waitListening(t)
	// A timeout, so that a server that accepts and never answers fails
	// the test instead of hanging it.
	client := &http.Client{Timeout: 5 * time.Second}
	r, err := client.Get(url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("GET /x: got %d, want 200", r.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after its context ended: %v", err)
	}
}

// logLines is the log of run, read while run writes it: one record per
// Write (slog's JSON handler), dropped if the test doesn't read it.
type logLines struct {
	ch chan []byte
}

func (b *logLines) Write(p []byte) (int, error) {
	select {
	case b.ch <- bytes.Clone(p):
	default:
	}
	return len(p), nil
}

// waitListening returns the URL of run's "listening on URL".
func (b *logLines) waitListening(t *testing.T) string {
	t.Helper()
	// One deadline for the whole wait: a timer made in each iteration
	// would start again with every other record run logs.
	deadline := time.After(30 * time.Second)
	for {
		select {
		case p := <-b.ch:
			var rec struct{ Msg string }
			if json.Unmarshal(p, &rec) == nil && strings.HasPrefix(rec.Msg, "listening on ") {
				return strings.TrimPrefix(rec.Msg, "listening on ")
			}
		case <-deadline:
			t.Fatal("run did not say where it listens")
		}
	}
}
