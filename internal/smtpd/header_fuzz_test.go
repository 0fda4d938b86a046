package smtpd

import (
	"bytes"
	"errors"
	"io"
	"net/mail"
	"net/netip"
	"testing"
	"testing/iotest"
	"time"

	smail "github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/reply"
)

// chunkReader returns at most n octets per Read, as the data reader does
// with what the network gives it.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// FuzzHeader: the header section is the client's. As the data reader
// gives it (lines ending in CRLF, no bare CR or LF), readHeader must find
// where it ends, in reads of any size, lose nothing, and refuse only a
// header over the limit; and the message Sluice stores (its trace fields
// in front) must, when net/mail reads it, have one Message-ID and one
// Date of Sluice's whenever the client gave none that a reader sees.
func FuzzHeader(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n", "\r\nbody\r\n", "no header\r\n\r\n",
		" folded\r\nDate: x\r\n\r\n", "Date: Mon\r\n\r\n", "message-id:<x@y>\r\nDATE: z\r\n",
		"Bad Name: x\r\nMessage-ID: <a@b>\r\n\r\n", "X: y\r\n", "",
	} {
		f.Add([]byte(s), uint8(7), uint16(0))
	}
	at := time.Date(2026, 11, 24, 9, 15, 7, 0, time.UTC)
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8, extra uint16) {
		if bytes.Count(in, []byte("\r")) != bytes.Count(in, []byte("\r\n")) ||
			bytes.Count(in, []byte("\n")) != bytes.Count(in, []byte("\r\n")) ||
			len(in) > 0 && !bytes.HasSuffix(in, []byte("\r\n")) {
			return // the data reader gives no such content
		}
		max := 64 + int(extra%2048)
		end := len(in)
		if bytes.HasPrefix(in, crlf) {
			end = 2
		} else if i := bytes.Index(in, []byte("\r\n\r\n")); i >= 0 {
			end = i + 4
		}
		src := bytes.NewReader(in)
		var r io.Reader = chunkReader{src, 1 + int(chunk)}
		if chunk%5 == 0 {
			r = iotest.DataErrReader(r)
		}
		h, err := readHeader(r, max)
		if end > max {
			var rp reply.Reply
			if !errors.As(err, &rp) || rp.Code != reply.HeaderTooBig.Code {
				t.Fatalf("%q: header of %d octets over %d: %v", in, end, max, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: header of %d octets (max %d): %v", in, end, max, err)
		}
		left, _ := io.ReadAll(r) // through r: DataErrReader reads ahead
		if !bytes.Equal(h.raw, in[:end]) || !bytes.Equal(append(append([]byte{}, h.rest...), left...), in[end:]) {
			t.Fatalf("%q: header %q, then %q and %q", in, h.raw, h.rest, left)
		}

		env := &smail.Envelope{ID: "06h0s7sbfk004of0", Received: at,
			Origin: smail.Origin{Connector: "Default", ClientIP: netip.MustParseAddr("192.0.2.7"), ClientHelo: "x"}}
		msg := append(traceFields(env, "relay.contoso.com", "ESMTP", h), in...)
		m, err := mail.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			return
		}
		for _, c := range []struct {
			name  string
			added bool
		}{{"Message-Id", !h.hasMessageID}, {"Date", !h.hasDate}} {
			n := len(m.Header[c.name])
			if n == 0 || c.added && n != 1 {
				t.Fatalf("%q: %d %s fields in\n%q", in, n, c.name, msg)
			}
		}
	})
}
