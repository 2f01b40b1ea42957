package audit

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"
)

// PW-07: an event is one record, with the message and leading attributes
// every writer shares, then the writer's own.
func TestLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	Log(t.Context(), log, "user-delete", "alice", "outcome", "success", "user_id", "u_1")
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("record %q: %v", buf.String(), err)
	}
	delete(got, "time")
	want := map[string]any{"level": "INFO", "msg": "audit", "event": "user-delete", "user": "alice", "outcome": "success", "user_id": "u_1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
