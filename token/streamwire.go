package token

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-json-experiment/json"
)

// The revocation stream's wire format (documented with the server, in
// tether's internal/revocation): Server-Sent Events of three kinds,
// revoke, snapshot and heartbeat. The parser below is strict: what
// tether's server doesn't send is an error, and the follower reconnects.

// maxEventLine bounds a line of the stream: a revoke event's data is a jti
// or a subject, an expiry and a generation.
const maxEventLine = 4 << 10

// maxEventID bounds an event id, which the follower sends back as
// Last-Event-ID.
const maxEventID = 64

var errStream = errors.New("token: malformed revocation stream")

// sseEvent is one event of the stream.
type sseEvent struct {
	kind, id, data string
}

// eventReader reads the events of a text/event-stream.
type eventReader struct {
	r *bufio.Reader
}

func newEventReader(r io.Reader) *eventReader {
	return &eventReader{r: bufio.NewReaderSize(r, maxEventLine)}
}

// next returns the next event: lines of fields "event", "id", "data" (at
// most one of each; "retry" and comments ignored), ended by an empty line.
// Lines end with LF or CRLF. It returns io.EOF at the end of the stream
// between events, and an error wrapping errStream for anything else
// tether's server doesn't send.
func (p *eventReader) next() (sseEvent, error) {
	var e sseEvent
	var seen [3]bool // event, id, data
	for {
		line, err := p.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return e, fmt.Errorf("%w: a line longer than %d bytes", errStream, maxEventLine)
		}
		if err != nil {
			if err == io.EOF && len(line) == 0 && !seen[0] && !seen[1] && !seen[2] {
				return e, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return e, err
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		if bytes.IndexByte(line, '\r') >= 0 {
			return e, fmt.Errorf("%w: a carriage return inside a line", errStream)
		}
		if len(line) == 0 {
			if !seen[0] && !seen[1] && !seen[2] {
				continue // blank lines between events
			}
			if !seen[0] {
				return e, fmt.Errorf("%w: an event without a type", errStream)
			}
			return e, nil
		}
		if line[0] == ':' {
			continue // a comment: a proxy's keep-alive
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		var field int
		switch string(name) {
		case "event":
			field, e.kind = 0, string(value)
		case "id":
			if len(value) == 0 || len(value) > maxEventID || !printable(value) {
				return e, fmt.Errorf("%w: an id that is not 1 to %d printable ASCII characters", errStream, maxEventID)
			}
			field, e.id = 1, string(value)
		case "data":
			field, e.data = 2, string(value)
		case "retry":
			continue
		default:
			return e, fmt.Errorf("%w: unknown field %q", errStream, truncate(name))
		}
		if seen[field] {
			return e, fmt.Errorf("%w: field %q twice in an event", errStream, name)
		}
		seen[field] = true
	}
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// truncate keeps an error message about a hostile stream short.
func truncate(b []byte) []byte { return b[:min(len(b), 32)] }

// wireRevocation is a revoke event's data: a jti, or a subject and a
// generation; and the expiry of the tokens it concerns, in Unix seconds.
type wireRevocation struct {
	JTI string `json:"jti"`
	Sub string `json:"sub"`
	Gen uint64 `json:"gen"`
	Exp int64  `json:"exp"`
}

// parseRevocation reads a revoke event's data: a JSON object with jti
// and exp, or sub, gen (at least 1) and exp; no other member, none twice.
func parseRevocation(data string) (wireRevocation, error) {
	var w wireRevocation
	if err := json.Unmarshal([]byte(data), &w, json.RejectUnknownMembers(true)); err != nil {
		return w, fmt.Errorf("%w: revoke data: %v", errStream, err)
	}
	switch {
	case w.Exp <= 0:
		return w, fmt.Errorf("%w: revoke data without a positive exp", errStream)
	case w.JTI != "" && (w.Sub != "" || w.Gen != 0):
		return w, fmt.Errorf("%w: revoke data with a jti and a subject", errStream)
	case w.JTI == "" && (w.Sub == "" || w.Gen == 0):
		return w, fmt.Errorf("%w: revoke data with neither a jti nor a subject and a generation", errStream)
	}
	return w, nil
}

// apply puts w in m.
func (w wireRevocation) apply(m *MemoryRevocations) {
	if w.JTI != "" {
		m.RevokeID(w.JTI, time.Unix(w.Exp, 0))
	} else {
		m.SetGeneration(w.Sub, w.Gen)
	}
}

// parseCount reads a snapshot event's data: a count, in decimal digits.
func parseCount(data string) (int, error) {
	bad := data == "" || len(data) > 9 || (len(data) > 1 && data[0] == '0')
	for i := 0; i < len(data) && !bad; i++ {
		bad = data[i] < '0' || data[i] > '9'
	}
	if bad {
		return 0, fmt.Errorf("%w: snapshot data is not a count", errStream)
	}
	return strconv.Atoi(data)
}
