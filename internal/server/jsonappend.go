package server

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// jsonAppender is an answer that writes its own JSON: byte for byte what
// encoding/json writes for it, which FuzzAppendJSON holds it to. The
// answers of signed-in requests are, since an app asks for GET /api/v1/me
// on every page load and encoding/json's reflection was the largest part of
// that request's cost. encode uses appendJSON where there is one.
type jsonAppender interface {
	appendJSON(b []byte) []byte
}

func (r signedInResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"user":`...)
	b = r.User.appendJSON(b)
	if r.Session != nil {
		b = append(b, `,"session":`...)
		b = r.Session.appendJSON(b)
	}
	b = append(b, `,"csrf_token":`...)
	b = appendJSONString(b, r.CSRFToken)
	if r.ReturnTo != "" {
		b = append(b, `,"return_to":`...)
		b = appendJSONString(b, r.ReturnTo)
	}
	return append(b, '}')
}

func (u userView) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, u.ID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, u.Name)
	b = append(b, `,"admin":`...)
	b = strconv.AppendBool(b, u.Admin)
	b = append(b, `,"created":`...)
	b = appendJSONTime(b, u.Created)
	return append(b, '}')
}

func (s sessionView) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, s.ID)
	b = append(b, `,"created":`...)
	b = appendJSONTime(b, s.Created)
	b = append(b, `,"last_seen":`...)
	b = appendJSONTime(b, s.LastSeen)
	b = append(b, `,"idle_expiry":`...)
	b = appendJSONTime(b, s.IdleExpiry)
	b = append(b, `,"absolute_expiry":`...)
	b = appendJSONTime(b, s.AbsoluteExpiry)
	b = append(b, `,"device":`...)
	b = appendJSONString(b, s.Device)
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, s.UserAgent)
	b = append(b, `,"ip":`...)
	b = appendJSONString(b, s.IP)
	b = append(b, `,"current":`...)
	b = strconv.AppendBool(b, s.Current)
	return append(b, '}')
}

// appendJSONTime appends t as time.Time's MarshalJSON does: RFC 3339 with
// as many fractional digits as needed, in quotes. (MarshalJSON refuses a
// year outside 0–9999, which no session or account time has.)
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONString appends s as a JSON string the way encoding/json
// writes one: ", \ and control characters escaped (\b, \f, \n, \r and \t
// by name, the others as \u00XX); <, > and & as \u003c, \u003e and \u0026,
// so that the JSON is safe inside HTML; U+2028 and U+2029 escaped, for
// JavaScript; each byte of invalid UTF-8 replaced by \ufffd.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0 // s[start:i] is still to be copied
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, `\b`...)
			case '\f':
				b = append(b, `\f`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
