package smtpd

import (
	"bytes"
	"io"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/reply"
)

// header is the start of a message: its header section (with the empty
// line that ends it, if there is one) and what of the body was read with it.
type header struct {
	raw          []byte // header section as sent
	rest         []byte // body octets read along with it
	hasMessageID bool
	hasDate      bool
	messageID    string // the Message-ID field's value
	none         bool   // the message starts without any header field
	// utf8: a header field has octets outside ASCII, which only SMTPUTF8
	// carries (RFC 6532 §3, RFC 6531 §3.4).
	utf8 bool
}

// readHeader reads the header section from d, at most max octets of it
// (Exchange's MaxHeaderSize). The message itself is not changed: Sluice
// only adds fields in front of it.
func readHeader(d io.Reader, max int) (*header, error) {
	buf := make([]byte, 0, 4096)
	end := -1
	for end < 0 {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := d.Read(buf[len(buf):cap(buf)])
		from := max0(len(buf) - 3)
		buf = buf[:len(buf)+n]
		if bytes.HasPrefix(buf, crlf) {
			end = 2 // no header at all, just the separator
		} else if i := bytes.Index(buf[from:], []byte("\r\n\r\n")); i >= 0 {
			end = from + i + 4
		}
		if end < 0 && len(buf) > max || end > max {
			return nil, reply.HeaderTooBig.Withf("Header size exceeds fixed maximum size of %d bytes", max)
		}
		if err == io.EOF {
			if end < 0 {
				end = len(buf) // a message that is all header
			}
			break
		}
		if err != nil {
			return nil, err
		}
	}
	h := &header{raw: buf[:end], rest: buf[end:]}
	h.scan()
	return h, nil
}

func max0(i int) int {
	if i < 0 {
		return 0
	}
	return i
}

// scan notes which fields the header has. A first line that is not a
// field ("name: value"), folded continuation included, means the client
// sent no header section.
func (h *header) scan() {
	// All of raw, as stored and relayed, malformed lines included.
	defer func() { h.utf8 = !h.none && !mail.ASCII(h.raw) }()
	first := true
	for line := range bytes.Lines(h.raw) {
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			if first {
				// RFC 5322 §2.2.3: a folded line continues the field
				// before it, and there is none: in front of this line
				// would be the fields Sluice adds.
				h.none = true
				return
			}
			continue
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok || !validFieldName(name) {
			if first && !bytes.Equal(line, crlf) {
				h.none = true
			}
			return
		}
		first = false
		switch {
		case bytes.EqualFold(name, []byte("Message-ID")):
			if !h.hasMessageID { // the first, as readers of the message take it
				h.messageID = string(bytes.TrimSpace(line[len(name)+1:]))
			}
			h.hasMessageID = true
		case bytes.EqualFold(name, []byte("Date")):
			h.hasDate = true
		}
	}
}

// validFieldName is RFC 5322 §3.6.8 ftext: printable ASCII except ':'.
func validFieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}
