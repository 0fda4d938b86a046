package queue

import (
	"strconv"
	"time"

	"github.com/sluice-relay/sluice/internal/jsonw"
	"github.com/sluice-relay/sluice/internal/mail"
)

// appendRecord appends r as encoding/json writes it with HTML escaping
// off, field for field; decode reads it with decodeRecord, which expects
// this shape, and anything else (a record it does not fully understand)
// with json.Unmarshal. Written by hand because reflection was 4% of the
// relay's CPU at 10 KB messages; TestAppendRecordMatchesJSON and
// FuzzAppendRecord hold the two together. ok is false for a time
// encoding/json refuses (a year outside 0..9999, an offset of a day).
func appendRecord(dst []byte, r *record) (_ []byte, ok bool) {
	e := &r.Env
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(r.V), 10)
	dst = append(dst, `,"env":{"ID":`...)
	dst = jsonw.String(dst, string(e.ID))
	dst = append(dst, `,"From":`...)
	dst = jsonw.String(dst, string(e.From))
	dst = append(dst, `,"Rcpts":`...)
	if e.Rcpts == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range e.Rcpts {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendRecipient(dst, &e.Rcpts[i])
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"Ret":`...)
	dst = jsonw.String(dst, string(e.Ret))
	dst = append(dst, `,"EnvID":`...)
	dst = jsonw.String(dst, e.EnvID)
	dst = append(dst, `,"SMTPUTF8":`...)
	dst = strconv.AppendBool(dst, e.SMTPUTF8)
	if e.SMTPUTF8Asked {
		dst = append(dst, `,"SMTPUTF8Asked":true`...)
	}
	dst = append(dst, `,"Body":`...)
	dst = jsonw.String(dst, string(e.Body))
	dst = append(dst, `,"Size":`...)
	dst = strconv.AppendInt(dst, e.Size, 10)
	dst = append(dst, `,"Received":`...)
	if dst, ok = appendTime(dst, e.Received); !ok {
		return dst, false
	}
	o := &e.Origin
	dst = append(dst, `,"Origin":{"Connector":`...)
	dst = jsonw.String(dst, o.Connector)
	dst = append(dst, `,"ClientIP":`...)
	switch {
	case !o.ClientIP.IsValid():
		dst = append(dst, `""`...)
	case o.ClientIP.Zone() != "":
		dst = jsonw.String(dst, o.ClientIP.String()) // a zone is any interface name
	default:
		dst = append(dst, '"')
		dst = o.ClientIP.AppendTo(dst)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"ClientHelo":`...)
	dst = jsonw.String(dst, o.ClientHelo)
	dst = append(dst, `,"AuthUser":`...)
	dst = jsonw.String(dst, o.AuthUser)
	dst = append(dst, `,"TLS":`...)
	dst = jsonw.String(dst, o.TLS)
	dst = append(dst, `,"Session":`...)
	dst = jsonw.String(dst, o.Session)
	dst = append(dst, `},"MessageID":`...)
	dst = jsonw.String(dst, e.MessageID)
	if e.Via != "" {
		dst = append(dst, `,"Via":`...)
		dst = jsonw.String(dst, e.Via)
	}
	if e.About != "" {
		dst = append(dst, `,"About":`...)
		dst = jsonw.String(dst, string(e.About))
	}
	dst = append(dst, `},"rcpts":`...)
	if r.Rcpts == nil {
		return append(dst, "null}"...), true
	}
	dst = append(dst, '[')
	for i := range r.Rcpts {
		rc := &r.Rcpts[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendRecipient(dst, &rc.Recipient)
		dst = append(dst, `,"status":`...)
		dst = jsonw.String(dst, string(rc.Status))
		if rc.Attempts != 0 {
			dst = append(dst, `,"attempts":`...)
			dst = strconv.AppendInt(dst, int64(rc.Attempts), 10)
		}
		if rc.LastError != "" {
			dst = append(dst, `,"last_error":`...)
			dst = jsonw.String(dst, rc.LastError)
		}
		for _, t := range []struct {
			key string
			at  time.Time
		}{{`,"last_attempt":`, rc.LastAttempt}, {`,"next_attempt":`, rc.NextAttempt}} {
			if t.at.IsZero() {
				continue
			}
			dst = append(dst, t.key...)
			if dst, ok = appendTime(dst, t.at); !ok {
				return dst, false
			}
		}
		if rc.DelayNotified {
			dst = append(dst, `,"delay_notified":true`...)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...), true
}

// appendRecipient appends a recipient's fields after an opening brace,
// leaving the object open for the fields that follow.
func appendRecipient(dst []byte, r *mail.Recipient) []byte {
	dst = append(dst, `{"Addr":`...)
	dst = jsonw.String(dst, string(r.Addr))
	dst = append(dst, `,"Notify":`...)
	dst = strconv.AppendUint(dst, uint64(r.Notify), 10)
	dst = append(dst, `,"ORcpt":`...)
	return jsonw.String(dst, r.ORcpt)
}

// appendTime appends t as time.Time's MarshalJSON does.
func appendTime(dst []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, false
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return dst, false
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), true
}
