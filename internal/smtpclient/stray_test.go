package smtpclient

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A server that says more than it was asked — a second reply to the end
// of the data, a banner of several "220 " lines — is one reply ahead:
// with PIPELINING every later reply would be taken for the next
// command's, one recipient's refusal for another's, and a deliverable
// recipient bounced. What arrives before a command is sent is a protocol
// error: the connection is dropped before anything of the next
// transaction goes out.
func TestStrayReply(t *testing.T) {
	addr := rawServer(t, "220 x ESMTP", func(line string) string {
		verb, arg, _ := strings.Cut(line, " ")
		switch {
		case verb == "EHLO":
			return "250-x\n250 PIPELINING"
		case verb == "RCPT" && strings.Contains(arg, "gone@"):
			return "550 5.1.1 gone@fabrikam.example: no such user"
		case verb == "DATA":
			return "354 go ahead"
		case line == ".":
			return "250 2.0.0 queued\n250 2.0.0 queued"
		}
		return "250 2.0.0 OK"
	})
	c, _ := dial(t, addr)
	if _, err := c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(testBody)); err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(context.Background(), envelope("b@fabrikam.example", "gone@fabrikam.example"), strings.NewReader(testBody))
	var se *Error
	if !errors.Is(err, errUnasked) || errors.As(err, &se) || !strings.HasSuffix(err.Error(), `: "250 2.0.0 queued"`) {
		t.Fatalf("second Send = %v (%+v); want a protocol error naming the stray reply", err, res)
	}
	if len(res.Rcpts) != 0 || res.Data.Code != 0 {
		t.Errorf("Result = %+v; want nothing answered", res)
	}
}

// A banner of two "220 " lines (a multi-line banner written without
// "220-"): the second line is not the reply to EHLO.
func TestStrayGreetingLine(t *testing.T) {
	addr := rawServer(t, "220 mail.fabrikam.example ESMTP\n220 Unauthorised access prohibited", func(string) string { return "250 OK" })
	o, _ := testOptions(t)
	c, err := Dial(context.Background(), addr, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Hello(context.Background())
	if want := `smtpclient: EHLO: the server sent a reply to no command: "220 Unauthorised access prohibited"`; !errors.Is(err, errUnasked) || err.Error() != want {
		t.Fatalf("Hello = %v; want %q", err, want)
	}
}
