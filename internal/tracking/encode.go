package tracking

import (
	"strconv"
	"time"

	"github.com/sluice-relay/sluice/internal/jsonw"
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
	dst = jsonw.String(dst, string(e.Event))
	dst = append(dst, `,"source":`...)
	dst = jsonw.String(dst, e.Source)
	dst = appendField(dst, "msg", string(e.ID))
	dst = appendField(dst, "message_id", e.MessageID)
	dst = appendField(dst, "sender", e.Sender)
	if len(e.Recipients) > 0 {
		dst = append(dst, `,"recipients":[`...)
		for i, r := range e.Recipients {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonw.String(dst, r)
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
	return jsonw.String(dst, value)
}
