package queue

import (
	"bytes"
	"strconv"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sluice-relay/sluice/internal/mail"
)

// decodeRecord reads a record in the shape appendRecord writes it: its
// fields in that order, any of them absent (records older than a field,
// omitempty), no white space, integers without fraction or exponent. It
// reports false for anything else, and r is then partly filled: decode
// reads such a record with json.Unmarshal into a fresh one. What it reads,
// it reads as json.Unmarshal does (FuzzDecodeRecord): strings unescaped
// and invalid UTF-8 replaced alike, times by time.Time's UnmarshalJSON,
// the address by netip.Addr's UnmarshalText. Written by hand because
// json.Unmarshal of 200,000 records was a second of a restart, and more
// in garbage collection.
func decodeRecord(b []byte, r *record) bool {
	d := recordDecoder{b: b}
	d.open()
	if d.key("v") {
		r.V = int(d.int(strconv.IntSize))
	}
	if d.key("env") {
		d.envelope(&r.Env)
	}
	if d.key("rcpts") {
		r.Rcpts = d.rcpts()
	}
	d.close()
	return !d.bad && d.i == len(b)
}

// recordDecoder reads b from i. After a failure, bad is set and nothing
// more is read.
type recordDecoder struct {
	b     []byte
	i     int
	bad   bool
	first bool   // no field read yet in the current object: no comma before the next
	buf   []byte // unescaped strings
}

func (d *recordDecoder) fail() {
	d.bad, d.i = true, len(d.b)
}

// lit consumes s if it comes next.
func (d *recordDecoder) lit(s string) bool {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return false
	}
	d.i += len(s)
	return true
}

func (d *recordDecoder) open() {
	if !d.lit("{") {
		d.fail()
	}
	d.first = true
}

// close ends an object. Whatever is left in it (a field unknown, out of
// order or repeated) fails here.
func (d *recordDecoder) close() {
	if !d.lit("}") {
		d.fail()
	}
	d.first = false
}

// key consumes the field name k (and the comma before it) if that field
// comes next.
func (d *recordDecoder) key(k string) bool {
	b, j := d.b, d.i
	if !d.first {
		if j >= len(b) || b[j] != ',' {
			return false
		}
		j++
	}
	if len(b)-j < len(k)+3 || b[j] != '"' || string(b[j+1:j+1+len(k)]) != k || b[j+1+len(k)] != '"' || b[j+2+len(k)] != ':' {
		return false
	}
	d.i, d.first = j+len(k)+3, false
	return true
}

func (d *recordDecoder) envelope(e *mail.Envelope) {
	d.open()
	if d.key("ID") {
		e.ID = mail.ID(d.str())
	}
	if d.key("From") {
		e.From = mail.Address(d.str())
	}
	if d.key("Rcpts") {
		e.Rcpts = d.recipients()
	}
	if d.key("Ret") {
		e.Ret = oneOf(d.strBytes(), mail.RetFull, mail.RetHeaders)
	}
	if d.key("EnvID") {
		e.EnvID = d.str()
	}
	if d.key("SMTPUTF8") {
		e.SMTPUTF8 = d.bool()
	}
	if d.key("SMTPUTF8Asked") {
		e.SMTPUTF8Asked = d.bool()
	}
	if d.key("Body") {
		e.Body = oneOf(d.strBytes(), mail.Body7Bit, mail.Body8BitMIME)
	}
	if d.key("Size") {
		e.Size = d.int(64)
	}
	if d.key("Received") {
		e.Received = d.time()
	}
	if d.key("Origin") {
		o := &e.Origin
		d.open()
		if d.key("Connector") {
			o.Connector = d.str()
		}
		if d.key("ClientIP") {
			if s := d.strBytes(); !d.bad && o.ClientIP.UnmarshalText(s) != nil {
				d.fail()
			}
		}
		if d.key("ClientHelo") {
			o.ClientHelo = d.str()
		}
		if d.key("AuthUser") {
			o.AuthUser = d.str()
		}
		if d.key("TLS") {
			o.TLS = d.str()
		}
		if d.key("Session") {
			o.Session = d.str()
		}
		d.close()
	}
	if d.key("MessageID") {
		e.MessageID = d.str()
	}
	if d.key("Via") {
		e.Via = d.str()
	}
	if d.key("About") {
		e.About = mail.ID(d.str())
	}
	d.close()
}

// recipient reads the fields of a mail.Recipient, leaving the object open.
func (d *recordDecoder) recipient(r *mail.Recipient) {
	d.open()
	if d.key("Addr") {
		r.Addr = mail.Address(d.str())
	}
	if d.key("Notify") {
		r.Notify = mail.Notify(d.uint8())
	}
	if d.key("ORcpt") {
		r.ORcpt = d.str()
	}
}

func (d *recordDecoder) recipients() []mail.Recipient {
	if d.lit("null") {
		return nil
	}
	rs := []mail.Recipient{} // [] is an empty slice, not nil, as json.Unmarshal has it
	for d.element(len(rs) == 0) {
		rs = append(rs, mail.Recipient{})
		d.recipient(&rs[len(rs)-1])
		d.close()
	}
	return rs
}

func (d *recordDecoder) rcpts() []Rcpt {
	if d.lit("null") {
		return nil
	}
	// One allocation: the recipients are all that follows, and the key
	// cannot appear inside a string, where quotes are escaped.
	rs := make([]Rcpt, 0, bytes.Count(d.b[d.i:], []byte(`{"Addr":`)))
	for d.element(len(rs) == 0) {
		rs = append(rs, Rcpt{})
		rc := &rs[len(rs)-1]
		d.recipient(&rc.Recipient)
		if d.key("status") {
			rc.Status = oneOf(d.strBytes(), StatusQueued, StatusDelivered, StatusFailed, StatusExpired, StatusRemoved)
		}
		if d.key("attempts") {
			rc.Attempts = int(d.int(strconv.IntSize))
		}
		if d.key("last_error") {
			rc.LastError = d.str()
		}
		if d.key("last_attempt") {
			rc.LastAttempt = d.time()
		}
		if d.key("next_attempt") {
			rc.NextAttempt = d.time()
		}
		if d.key("delay_notified") {
			rc.DelayNotified = d.bool()
		}
		d.close()
	}
	return rs
}

// element reports whether an array element follows, consuming the
// opening bracket before the first and the comma before the others, or
// the closing bracket after the last.
func (d *recordDecoder) element(first bool) bool {
	if first && !d.lit("[") {
		d.fail()
		return false
	}
	if d.lit("]") {
		return false
	}
	if !first && !d.lit(",") {
		d.fail()
		return false
	}
	return !d.bad
}

func (d *recordDecoder) bool() bool {
	switch {
	case d.lit("true"):
		return true
	case !d.lit("false"):
		d.fail()
	}
	return false
}

// digits consumes a JSON integer's digits (no leading zero) and returns
// their value, failing past 19 digits; ok is false if there are none.
func (d *recordDecoder) digits() (n uint64, ok bool) {
	b, i := d.b, d.i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + uint64(b[i]-'0')
		i++
	}
	if i == d.i || i-d.i > 19 || b[d.i] == '0' && i-d.i > 1 {
		d.fail()
		return 0, false
	}
	d.i = i
	return n, true
}

// int reads an integer that fits in bits, as strconv.ParseInt does for
// json.Unmarshal.
func (d *recordDecoder) int(bits int) int64 {
	neg := d.lit("-")
	n, ok := d.digits()
	limit := uint64(1) << (bits - 1)
	switch {
	case !ok:
		return 0
	case neg && n <= limit:
		return -int64(n)
	case !neg && n < limit:
		return int64(n)
	}
	d.fail()
	return 0
}

// uint8 reads an integer from 0 to 255; json.Unmarshal refuses -0 too.
func (d *recordDecoder) uint8() uint8 {
	n, ok := d.digits()
	if ok && n > 255 {
		d.fail()
	}
	return uint8(n)
}

// time reads a time as json.Unmarshal does: the string, escapes and all,
// to time.Time's UnmarshalJSON, which has no use for escapes.
func (d *recordDecoder) time() time.Time {
	b, i := d.b, d.i
	if i >= len(b) || b[i] != '"' {
		d.fail()
		return time.Time{}
	}
	j := i + 1
	for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= ' ' {
		j++
	}
	var t time.Time
	if j == len(b) || b[j] != '"' || t.UnmarshalJSON(b[i:j+1]) != nil {
		d.fail()
		return time.Time{}
	}
	d.i = j + 1
	return t
}

func (d *recordDecoder) str() string {
	return string(d.strBytes())
}

// strBytes reads a string: a slice of b if it holds no escape and no
// invalid UTF-8, else unescaped into buf, which the next call reuses.
func (d *recordDecoder) strBytes() []byte {
	b, i := d.b, d.i
	if i >= len(b) || b[i] != '"' {
		d.fail()
		return nil
	}
	i++
	start := i
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			d.i = i + 1
			return b[start:i]
		case c == '\\' || c < ' ':
			return d.unescape(start)
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return d.unescape(start)
			}
			i += size
		}
	}
	d.fail()
	return nil
}

// unescape reads the string starting at i as encoding/json's unquote
// does: a lone or reversed UTF-16 surrogate and each byte of invalid
// UTF-8 become U+FFFD.
func (d *recordDecoder) unescape(i int) []byte {
	b, out := d.b, d.buf[:0]
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			d.i, d.buf = i+1, out
			return out
		case c < ' ':
			d.fail()
			return nil
		case c < utf8.RuneSelf && c != '\\':
			out = append(out, c)
			i++
			continue
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[i:])
			out = utf8.AppendRune(out, r)
			i += size
			continue
		}
		if i+1 == len(b) {
			break
		}
		switch b[i+1] {
		case '"', '\\', '/':
			out = append(out, b[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(b[i:])
			if r < 0 {
				d.fail()
				return nil
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if pair := utf16.DecodeRune(r, hex4(b[i:])); pair != unicode.ReplacementChar {
					r = pair
					i += 6
				} else {
					r = unicode.ReplacementChar
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			d.fail()
			return nil
		}
		i += 2
	}
	d.fail()
	return nil
}

// hex4 returns the value of the \uXXXX escape at the start of b, or -1.
func hex4(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// oneOf is s as the one of known it spells, which costs no new string
// (every queued message has a status, a body type, most a Ret), or else
// s itself.
func oneOf[T ~string](s []byte, known ...T) T {
	for _, k := range known {
		if string(s) == string(k) {
			return k
		}
	}
	return T(s)
}
