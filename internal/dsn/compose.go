package dsn

import (
	"bufio"
	"bytes"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/sluice-relay/sluice/internal/mail"
)

// MessageID is the Message-ID field Compose gives a notice made with id
// and reportingMTA, for the queue to track the notice by it.
func MessageID(id, reportingMTA string) string {
	return "<" + clean(id, false) + "@" + clean(strings.TrimSpace(reportingMTA), false) + ">"
}

// Compose writes r as a complete RFC 5322 message with CRLF line endings,
// ready to be queued from <> to r.From: a multipart/report (RFC 6522) with
// the explanation, the message/delivery-status fields (RFC 3464) and the
// original or its header section. now is the Date; newID names the notice
// (Message-ID <newID()@ReportingMTA>, and the MIME boundary), so tests get
// the same bytes every time.
func Compose(r *Report, now time.Time, newID func() string) ([]byte, error) {
	switch {
	case r == nil || len(r.Recipients) == 0:
		return nil, ErrNoRcpts
	case r.From.IsNull():
		return nil, ErrNullSender
	case strings.TrimSpace(r.ReportingMTA) == "":
		return nil, ErrNoReporter
	}
	orig := crlf(r.Original)
	head := headerSection(orig)
	// The RFC 6533 types only for a sender whose address is not ASCII,
	// who can be reached over SMTPUTF8 alone: a notice in them needs
	// SMTPUTF8 itself (RFC 6533 §6), and would bounce at a next hop
	// without it, unseen, being from <>. Many clients (and Python's email
	// package) do not know them either. An ASCII sender gets the plain
	// form, which can say everything the global one says (RFC 6533 §3,
	// §6.3): UTF-8 addresses as utf-8-addr-xtext, the original's header
	// with its UTF-8 values as RFC 2047 words.
	global := !r.From.IsASCII()
	info := readOriginal(head, global)
	attach := head
	if !global && !mail.ASCII(head) {
		attach = plainHeaders(head)
	}
	if r.ReturnsFull() {
		attach = orig
	}

	text := explanation(r, info, now)
	status, err := deliveryStatus(r, global)
	if err != nil {
		return nil, err
	}
	id := newID()
	boundary := chooseBoundary(id, []byte(text), status, attach)

	top := [][2]string{
		{"From", "Mail Delivery System <MAILER-DAEMON@" + clean(strings.TrimSpace(r.ReportingMTA), false) + ">"},
		{"To", "<" + clean(string(r.From), global) + ">"},
		{"Subject", encodeWord(subject(r.kind(), info.subject))},
		{"Date", formatDate(now)},
		{"Message-ID", MessageID(id, r.ReportingMTA)},
	}
	if info.messageID != "" {
		// RFC 5322 §3.6.4, so mail clients thread the notice with the original.
		top = append(top, [2]string{"In-Reply-To", info.messageID}, [2]string{"References", info.messageID})
	}
	top = append(top,
		[2]string{"Auto-Submitted", "auto-replied"}, // RFC 3834 §5: no vacation replies to this
		[2]string{"MIME-Version", "1.0"},
		[2]string{"Content-Type", `multipart/report; report-type=delivery-status; boundary="` + boundary + `"`},
	)

	var buf bytes.Buffer
	h, err := header(top)
	if err != nil {
		return nil, err
	}
	w, err := message.CreateWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	if err := writePart(w, [][2]string{
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", textEncoding(text, global)},
		{"Content-Description", "Notification"},
	}, []byte(text)); err != nil {
		return nil, err
	}
	dsType := "message/delivery-status"
	if global {
		dsType = "message/global-delivery-status" // RFC 6533 §6.1
	}
	if err := writePart(w, [][2]string{
		{"Content-Type", dsType},
		{"Content-Transfer-Encoding", bitness(status)},
		{"Content-Description", "Delivery report"},
	}, status); err != nil {
		return nil, err
	}
	if len(attach) > 0 {
		typ, desc := originalType(r.ReturnsFull(), global)
		if err := writePart(w, [][2]string{
			{"Content-Type", typ},
			{"Content-Transfer-Encoding", bitness(attach)},
			{"Content-Description", desc},
		}, attach); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	return buf.Bytes(), nil
}

// subject follows Exchange's "Undeliverable: <subject>", which users and
// their mail rules know; a success notice is "Relayed:" when the message
// only went on to systems that send no notices, as Exchange says too.
func subject(k kind, orig string) string {
	orig = orSomething(orig, "(no subject)")
	switch k {
	case kindFailure:
		return "Undeliverable: " + orig
	case kindDelay:
		return "Delivery delayed: " + orig
	case kindRelayed:
		return "Relayed: " + orig
	}
	return "Delivered: " + orig
}

// originalType is the third part's type and description (RFC 6522 §3,
// RFC 6533 §6.3 and §6.4 for UTF-8 originals).
func originalType(full, global bool) (string, string) {
	switch {
	case full && global:
		return "message/global", "Original message"
	case full:
		return "message/rfc822", "Original message"
	case global:
		return "message/global-headers", "Original message header"
	}
	return "text/rfc822-headers", "Original message header"
}

// plainHeaders makes a UTF-8 header section (RFC 6532) fit
// text/rfc822-headers, which is ASCII: each field with octets outside
// ASCII has its value written as RFC 2047 words, the form every reader
// decodes for display, folded between words. The part is there for a
// person to recognise the message; an address inside such a value is
// encoded whole, which RFC 2047 §5 does not let a parser take for an
// address, and nothing parses it as one. ASCII fields stay as they are.
func plainHeaders(head []byte) []byte {
	var fields []string
	for line := range bytes.Lines(head) {
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1] += string(line)
			continue
		}
		fields = append(fields, string(line))
	}
	var b strings.Builder
	for _, f := range fields {
		if mail.ASCII([]byte(f)) {
			b.WriteString(f)
			continue
		}
		name, value, ok := strings.Cut(f, ":")
		if !ok || strings.ContainsAny(name, " \t") {
			b.WriteString(clean(strings.TrimRight(f, "\r\n"), false) + "\r\n")
			continue
		}
		line := name + ":"
		for i, w := range strings.Fields(encodeWord(value)) {
			if i > 0 && len(line)+1+len(w) > 78 {
				b.WriteString(line + "\r\n")
				line = ""
			}
			line += " " + w
		}
		b.WriteString(line + "\r\n")
	}
	return []byte(b.String())
}

// header builds a go-message header with the fields in the order given
// (go-message keeps fields last-added-first).
func header(fields [][2]string) (message.Header, error) {
	var h message.Header
	for i := len(fields) - 1; i >= 0; i-- {
		f, err := field(fields[i][0], fields[i][1])
		if err != nil {
			return h, err
		}
		h.AddRaw(f)
	}
	return h, nil
}

func writePart(w *message.Writer, fields [][2]string, body []byte) error {
	h, err := header(fields)
	if err != nil {
		return err
	}
	pw, err := w.CreatePart(h)
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	if _, err := pw.Write(body); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	return nil
}

// textEncoding: 7bit when the explanation is ASCII, 8bit when the notice
// is UTF-8 anyway (SMTPUTF8 implies 8BITMIME, RFC 6531 §3.1), else
// quoted-printable so a 7-bit path carries it. UTF-8 with a line over 998
// octets (a long reply, or a subject in a script without spaces) is
// quoted-printable too: go-message cuts longer 8bit lines at an octet
// count (RFC 5322 §2.1.1), inside a character.
func textEncoding(s string, global bool) string {
	long := false
	for l := range strings.SplitSeq(s, "\r\n") {
		long = long || len(l) > 998
	}
	switch {
	case mail.ASCII([]byte(s)):
		return "7bit"
	case global && utf8.ValidString(s) && !long:
		return "8bit"
	}
	return "quoted-printable"
}

// bitness is the identity encoding that describes b (RFC 2045 §6.2):
// message/* parts may not be encoded further (RFC 2046 §5.2.1).
func bitness(b []byte) string {
	if mail.ASCII(b) {
		return "7bit"
	}
	return "8bit"
}

// encodeWord encodes a non-ASCII Subject as RFC 2047 words, which every
// reader understands, even on a notice that could carry raw UTF-8. The
// words are short enough that the first fits after "Subject: ": RFC 2047
// §2 allows a line with encoded words 76 characters, and the header
// writer folds only between words, so mime's 75-character words put
// the whole subject on one line of up to 998.
func encodeWord(s string) string {
	s = strings.Join(strings.Fields(clean(s, true)), " ")
	if mime.QEncoding.Encode("utf-8", s) == s {
		return s // nothing to encode
	}
	const prefix, suffix, maxWord = "=?utf-8?q?", "?=", 64
	var words []string
	var w strings.Builder
	for _, r := range s {
		var enc strings.Builder
		for _, c := range []byte(string(r)) {
			switch {
			case c == ' ':
				enc.WriteByte('_')
			case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!*+-/", c) >= 0:
				enc.WriteByte(c) // RFC 2047 §5 (3): safe in a phrase
			default:
				fmt.Fprintf(&enc, "=%02X", c)
			}
		}
		if w.Len() > 0 && len(prefix)+w.Len()+enc.Len()+len(suffix) > maxWord {
			words = append(words, prefix+w.String()+suffix)
			w.Reset()
		}
		w.WriteString(enc.String())
	}
	return strings.Join(append(words, prefix+w.String()+suffix), " ")
}

// chooseBoundary derives the boundary from the notice's id, so output is
// stable, and lengthens it until no part contains it (RFC 2046 §5.1.1).
func chooseBoundary(id string, parts ...[]byte) string {
	var b strings.Builder
	b.WriteString("sluice-dsn-")
	for _, c := range []byte(id) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' {
			b.WriteByte(c)
		}
		if b.Len() >= 60 {
			break
		}
	}
	base := b.String()
	for n := 0; ; n++ {
		cand := base
		if n > 0 {
			cand = fmt.Sprintf("%s-%d", base, n)
		}
		clash := false
		for _, p := range parts {
			if bytes.Contains(p, []byte("--"+cand)) {
				clash = true
				break
			}
		}
		if !clash {
			return cand
		}
	}
}

// crlf returns b with every line ending CRLF: bare LF and bare CR become
// CRLF, as the DATA reader does for what it accepts.
func crlf(b []byte) []byte {
	if !bytes.ContainsAny(b, "\r\n") {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/32)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case c == '\r' || c == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// headerSection returns the header fields of msg (CRLF line endings), up
// to and without the blank line that ends them. A message that is all
// header gets a final CRLF if it lacks one.
func headerSection(msg []byte) []byte {
	if len(msg) == 0 || bytes.HasPrefix(msg, []byte("\r\n")) {
		return nil
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+2]
	}
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		return append(msg[:len(msg):len(msg)], '\r', '\n')
	}
	return msg
}

// readOriginal reads the Subject and Message-ID of the original, as far as
// its header section parses.
func readOriginal(head []byte, global bool) original {
	var o original
	if len(head) == 0 {
		return o
	}
	th, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(append(head[:len(head):len(head)], '\r', '\n'))))
	h := gomail.Header{Header: message.Header{Header: th}}
	if s, err := h.Text("Subject"); err == nil {
		o.subject = strings.Join(strings.Fields(clean(s, true)), " ")
	} else {
		o.subject = strings.Join(strings.Fields(clean(h.Get("Subject"), true)), " ")
	}
	// A UTF-8 Message-ID (RFC 6532 §3.2) may only go into a UTF-8 notice.
	if id, err := h.MessageID(); err == nil && id != "" && (global || mail.ASCII([]byte(id))) &&
		utf8.ValidString(id) && !strings.ContainsAny(id, "<> \t") {
		o.messageID = "<" + clean(id, true) + ">"
	}
	return o
}
