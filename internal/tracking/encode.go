package tracking

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e as the log stores it: one JSON line, without the
// newline. sluice track --json prints this.
func (e *Event) AppendJSON(dst []byte) []byte { return appendRecord(dst, e) }

// appendRecord appends e's JSON line, without the newline: what
// encoding/json writes with SetEscapeHTML(false), field for field, so
// addresses and Message-IDs stay greppable as written (no \u003c for
// "<"). Written by hand because reflection made it one of the costlier
// steps of a message at load; TestAppendRecordMatchesJSON holds the two
// together.
func appendRecord(dst []byte, e *Event) []byte {
	dst = append(dst, `{"time":"`...)
	dst = e.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","event":`...)
	dst = appendString(dst, string(e.Event))
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, e.Source)
	dst = appendField(dst, "msg", string(e.ID))
	dst = appendField(dst, "message_id", e.MessageID)
	dst = appendField(dst, "sender", e.Sender)
	if len(e.Recipients) > 0 {
		dst = append(dst, `,"recipients":[`...)
		for i, r := range e.Recipients {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, r)
		}
		dst = append(dst, ']')
	}
	dst = appendField(dst, "connector", e.Connector)
	dst = appendField(dst, "client_ip", e.ClientIP)
	dst = appendField(dst, "client_hostname", e.ClientName)
	dst = appendField(dst, "auth_user", e.AuthUser)
	dst = appendField(dst, "next_hop", e.NextHop)
	dst = appendField(dst, "host", e.Host)
	dst = appendField(dst, "reply", e.Reply)
	if e.Size != 0 {
		dst = append(dst, `,"size":`...)
		dst = strconv.AppendInt(dst, e.Size, 10)
	}
	dst = appendField(dst, "related", string(e.Related))
	dst = appendField(dst, "session", e.Session)
	return append(dst, '}')
}

// appendField appends ,"key":value unless value is empty (omitempty).
func appendField(dst []byte, key, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendString(dst, value)
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string as encoding/json does without
// HTML escaping: quote, backslash and control characters escaped,
// invalid UTF-8 as U+FFFD, and U+2028 and U+2029 escaped (JavaScript
// takes them for line ends).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
