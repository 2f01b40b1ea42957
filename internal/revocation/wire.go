package revocation

import (
	"net/http"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/tetherauth/tether/session"
)

// flushSize is about how many bytes a subscriber is sent per write.
const flushSize = 32 << 10

// sse writes events to one subscriber, each write under a deadline.
type sse struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte // events not written yet
}

// wireRevocation is a revocation event's data (see the package doc).
type wireRevocation struct {
	JTI string `json:"jti,omitzero"`
	Sub string `json:"sub,omitzero"`
	Gen uint64 `json:"gen,omitzero"`
	Exp int64  `json:"exp"`
}

// event appends an event of kind with id (none when "") and data.
func (s *sse) event(kind, id, data string) {
	s.buf = append(s.buf, "event: "...)
	s.buf = append(s.buf, kind...)
	if id != "" {
		s.buf = append(s.buf, "\nid: "...)
		s.buf = append(s.buf, id...)
	}
	s.buf = append(s.buf, "\ndata: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, "\n\n"...)
}

// revocation appends r as a revoke event with id (none when ""). Its
// exp is rounded up to a whole second: an entry may outlive its tokens,
// never the reverse.
func (s *sse) revocation(id string, r session.Revocation) {
	exp := r.Exp.Unix()
	if r.Exp.Nanosecond() > 0 {
		exp++
	}
	// It can't fail: a jti or subject of invalid UTF-8 is sent with
	// U+FFFD in its place, which names no token a verifier accepts (the
	// claims of one are valid UTF-8) and so revokes nothing.
	data, _ := json.Marshal(wireRevocation{JTI: r.JTI, Sub: r.Subject, Gen: r.Gen, Exp: exp}, jsontext.AllowInvalidUTF8(true))
	s.event("revoke", id, string(data))
}

// item appends a queued or missed revocation with its id.
func (s *sse) item(it item) { s.revocation(formatID(it.epoch, it.seq), it.r) }

// flush writes the events appended so far.
func (s *sse) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil {
		return err
	}
	if _, err := s.w.Write(s.buf); err != nil {
		return err
	}
	s.buf = s.buf[:0]
	return s.rc.Flush()
}
