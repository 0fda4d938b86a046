package dsn

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/sluice-relay/sluice/internal/mail"
)

// Parse reads a delivery status notification, Sluice's or another MTA's,
// into a Report: per message ReportingMTA, EnvID, ArrivalDate and our
// X-Sluice-Original-Id; per recipient Final, Original, Action, Status,
// RemoteMTA, Diagnostic and the dates; From from the To field; the third
// part as Original with Return set by its type. The text part is not read.
//
// It is lenient the way bounce handling must be: a missing or malformed
// field leaves its value zero, and the first message/delivery-status (or
// RFC 6533 global) part is used wherever it sits in the MIME tree. It fails
// only when the message does not parse as MIME at all or has no such part
// (ErrNotDSN).
func Parse(msg []byte) (*Report, error) {
	e, err := message.Read(bytes.NewReader(msg))
	if e == nil {
		return nil, fmt.Errorf("dsn: reading the notice's header: %w", err)
	}
	rep := &Report{From: toAddress(e.Header)}
	found := false
	walkErr := e.Walk(func(_ []int, part *message.Entity, _ error) error {
		// Unknown charsets and transfer encodings arrive as the error
		// argument; the part stays readable as it is, which is enough.
		t, _, _ := part.Header.ContentType()
		switch strings.ToLower(t) {
		case "message/delivery-status", "message/global-delivery-status":
			if found {
				return nil
			}
			body, err := io.ReadAll(part.Body)
			if err != nil && len(body) == 0 {
				return nil
			}
			found = true
			rep.UTF8 = strings.EqualFold(t, "message/global-delivery-status")
			readStatus(rep, body)
		case "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers":
			if !found || rep.Original != nil {
				return nil
			}
			body, _ := io.ReadAll(part.Body)
			rep.Original = body
			rep.Return = mail.RetHeaders
			if strings.EqualFold(t, "message/rfc822") || strings.EqualFold(t, "message/global") {
				rep.Return = mail.RetFull
			}
		}
		return nil
	})
	if !found {
		if walkErr != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotDSN, walkErr)
		}
		return nil, ErrNotDSN
	}
	return rep, nil
}

// toAddress is the notice's addressee, the original's envelope sender.
func toAddress(h message.Header) mail.Address {
	mh := gomail.Header{Header: h}
	var addr string
	if list, err := mh.AddressList("To"); err == nil && len(list) == 1 {
		addr = list[0].Address
	} else if v := h.Get("To"); v != "" {
		// The parser refuses some addresses we write (quoted local parts
		// with UTF-8); take what is between the brackets.
		addr = v
		if i := strings.IndexByte(v, '<'); i >= 0 {
			if j := strings.IndexByte(v[i:], '>'); j > 0 {
				addr = v[i+1 : i+j]
			}
		}
		addr = strings.TrimSpace(addr)
	}
	if a, err := mail.ParseMailbox(addr, true); err == nil {
		return a
	}
	return mail.Address(addr)
}

// readStatus reads the blocks of a delivery-status body (RFC 3464 §2.1).
// The first block holds the per-message fields and every later one a
// recipient's; blocks from MTAs that mix them are read for both.
func readStatus(rep *Report, body []byte) {
	src := bytes.NewReader(append(crlf(body), "\r\n\r\n"...))
	br := bufio.NewReader(src)
	left := src.Len() + 1
	for {
		if _, err := br.Peek(1); err != nil {
			return
		}
		// Each round must consume input: ReadHeader stops at a blank line or
		// at a line it cannot read, having read that line.
		if now := src.Len() + br.Buffered(); now >= left {
			return
		} else {
			left = now
		}
		h, _ := textproto.ReadHeader(br)
		if h.Len() == 0 {
			continue
		}
		readPerMessage(rep, &h)
		if h.Has("Final-Recipient") || h.Has("Original-Recipient") || h.Has("Action") {
			rep.Recipients = append(rep.Recipients, readRecipient(&h))
		}
	}
}

func readPerMessage(rep *Report, h *textproto.Header) {
	if v := h.Get("Reporting-MTA"); v != "" && rep.ReportingMTA == "" {
		rep.ReportingMTA = parseMTA(v)
	}
	if v := h.Get("Original-Envelope-Id"); v != "" && rep.EnvID == "" {
		rep.EnvID = strings.TrimSpace(v)
	}
	if v := h.Get("Arrival-Date"); v != "" && rep.ArrivalDate.IsZero() {
		rep.ArrivalDate = parseDate(v)
	}
	if v := h.Get("X-Sluice-Original-Id"); v != "" && rep.MessageID == "" {
		if id, err := mail.ParseID(strings.TrimSpace(v)); err == nil {
			rep.MessageID = id
		}
	}
}

func readRecipient(h *textproto.Header) Recipient {
	var rc Recipient
	if v := h.Get("Original-Recipient"); v != "" {
		typ, addr := parseAddress(v)
		rc.Original = typ + ";" + addr
	}
	if v := h.Get("Final-Recipient"); v != "" {
		rc.Final = parseFinal(v)
	}
	rc.Action = Action(strings.ToLower(strings.TrimSpace(removeComments(h.Get("Action")))))
	rc.Status = parseStatus(h.Get("Status"))
	if v := h.Get("Remote-MTA"); v != "" {
		rc.RemoteMTA = parseMTA(v)
	}
	if v := h.Get("Diagnostic-Code"); v != "" {
		rc.Diagnostic = parseDiagnostic(v)
	}
	if v := h.Get("Last-Attempt-Date"); v != "" {
		rc.LastAttempt = parseDate(v)
	}
	if v := h.Get("Will-Retry-Until"); v != "" {
		rc.WillRetryUntil = parseDate(v)
	}
	return rc
}
