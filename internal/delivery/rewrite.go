package delivery

import (
	"bufio"
	"bytes"
	"io"

	"github.com/sluice-relay/sluice/internal/mail"
)

// rewriteSender makes mailbox the envelope sender and the From field, and
// keeps the original From as Reply-To (unless there is one) so replies
// still reach the person: for upstreams that refuse to send as anyone but
// the authenticated mailbox.
func rewriteSender(mailbox string, body io.Reader) (mail.Address, io.Reader) {
	br := bufio.NewReader(body)
	var header bytes.Buffer
	var from []byte
	hasReplyTo := false
	field := func(line []byte) []byte { // the field a line starts, lower case
		if i := bytes.IndexByte(line, ':'); i > 0 && line[0] != ' ' && line[0] != '\t' {
			// RFC 5322 §4.5.3: blanks may precede the colon; nothing
			// else may surround the name ("\vFrom:" is no From field).
			return bytes.ToLower(bytes.TrimRight(line[:i], " \t"))
		}
		return nil
	}
	inFrom := false
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			if from != nil && !hasReplyTo {
				header.WriteString("Reply-To:")
				header.Write(from)
			}
			header.Write(line)
			break
		}
		switch name := field(line); {
		case name != nil && string(name) == "from":
			inFrom = true
			from = append(from, line[bytes.IndexByte(line, ':')+1:]...)
			header.WriteString("From: <" + mailbox + ">\r\n")
		case name != nil:
			inFrom = false
			if string(name) == "reply-to" {
				hasReplyTo = true
			}
			header.Write(line)
		case inFrom: // continuation of From
			from = append(from, line...)
		default:
			header.Write(line)
		}
		if err != nil {
			break
		}
	}
	return mail.Address(mailbox), io.MultiReader(&header, br)
}
