package smtpclient

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/smtptest"
)

// A server that refuses the sender and hangs up without a 421 (no RSET
// reaches it) has said no all the same: Send returns its refusal, not the
// lost connection, so that the message bounces with the server's words
// instead of being retried for days. The connection is gone (Err).
func TestSendMailRefusedThenHangUp(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		name := "pipelining"
		if !pipelining {
			name = "one at a time"
		}
		t.Run(name, func(t *testing.T) {
			srv := smtptest.NewServer(t, smtptest.Options{NoPipelining: !pipelining,
				MailReply: "550 5.7.1 Service unavailable, Client host blocked using Spamhaus", HangUpAfter: "MAIL"})
			c, _ := dial(t, srv.Addr())
			_, err := c.Send(context.Background(), envelope("b@fabrikam.example", "c@fabrikam.example"), strings.NewReader(testBody))
			var se *Error
			if want := "MAIL FROM: 550 5.7.1 Service unavailable, Client host blocked using Spamhaus"; !errors.As(err, &se) || err.Error() != want {
				t.Fatalf("Send = %v, want *Error %q", err, want)
			}
			if c.Err() == nil {
				t.Error("Err = nil after the server hung up")
			}
		})
	}
}

// A server that enforces its size limit while the data arrives refuses
// the message before its end and hangs up on the rest: the client's
// write fails. The refusal it sent is the answer to the message (RFC 5321
// §4.2.5 lets it be final), not "connection lost".
func TestSendRefusedBeforeEndOfData(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{DataReplyAfter: 4096,
		DataReply: "552 5.3.4 Message size exceeds fixed maximum message size"})
	c, _ := dial(t, srv.Addr())
	// Larger than the socket buffers on both ends can hold, so that the
	// write fails rather than the whole message fitting into them.
	body := strings.Repeat(strings.Repeat("x", 998)+"\r\n", 16<<10)
	res, err := c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(body))
	if err == nil {
		t.Fatal("Send = nil; want the lost connection")
	}
	if got, want := res.Data.Error(), "552 5.3.4 Message size exceeds fixed maximum message size"; got != want {
		t.Errorf("Data = %q (err %v), want %q", got, err, want)
	}
	if c.Err() == nil {
		t.Error("Err = nil after the server hung up")
	}
}
