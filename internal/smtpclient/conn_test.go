package smtpclient

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/smtptest"
)

// A server that goes away mid-transaction gives an error that is not an
// *Error: the connection is gone, and the message must be retried.
func TestSendDropped(t *testing.T) {
	for _, at := range []string{"MAIL", "RCPT", "DATA", "DOT"} {
		for _, pipelining := range []bool{true, false} {
			name := at
			if !pipelining {
				name += " without pipelining"
			}
			t.Run(name, func(t *testing.T) {
				srv := smtptest.NewServer(t, smtptest.Options{DropAt: at, NoPipelining: !pipelining})
				c, _ := dial(t, srv.Addr())
				res, err := c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(testBody))
				var se *Error
				if err == nil || errors.As(err, &se) {
					t.Fatalf("Send = %v, want a connection error", err)
				}
				if res.Data.Code != 0 {
					t.Errorf("Data = %v, want zero", res.Data)
				}
				if err := c.Noop(context.Background()); err == nil {
					t.Error("connection still usable")
				}
				if len(srv.Messages()) != 0 {
					t.Error("server accepted the message")
				}
			})
		}
	}
}

func TestDialDroppedAtConnect(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{DropAt: "connect"})
	o, _ := testOptions(t)
	_, err := Dial(context.Background(), srv.Addr(), o)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Dial = %v, want EOF", err)
	}
}

// A server that resets the connection before its greeting has hung up
// on the client, as one that closes it has: Closed, on every system
// (Windows reports the reset with its own WSAECONNRESET), whether the
// reset came before the dialer returned or after.
func TestDialResetAtConnect(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{DropAt: "connect", Reset: true})
	o, _ := testOptions(t)
	_, err := Dial(context.Background(), srv.Addr(), o)
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Command != "greeting" || !ce.Closed() {
		t.Fatalf("Dial = %v; want a ConnError at the greeting that is Closed", err)
	}
}

func TestDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o, _ := testOptions(t)
	_, err = Dial(context.Background(), addr, o)
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		t.Fatalf("Dial = %v, want a dial error", err)
	}
}

func TestGreetingRefused(t *testing.T) {
	tests := []struct{ greeting, want string }{
		{"554 5.7.1 Client host rejected: access denied", "greeting: 554 5.7.1 Client host rejected: access denied"},
		{"421 4.3.2 Service shutting down", "greeting: 421 4.3.2 Service shutting down"},
	}
	for _, tt := range tests {
		t.Run(tt.greeting[:3], func(t *testing.T) {
			srv := smtptest.NewServer(t, smtptest.Options{Greeting: tt.greeting})
			o, _ := testOptions(t)
			c, err := Dial(context.Background(), srv.Addr(), o)
			var se *Error
			if c != nil || !errors.As(err, &se) || err.Error() != tt.want {
				t.Fatalf("Dial = %v, %v; want *Error %q", c, err, tt.want)
			}
		})
	}
}

// A 421 means the server is closing: an *Error, and the Client is done.
func TestSend421(t *testing.T) {
	tests := []struct {
		name      string
		o         smtptest.Options
		wantErr   string
		wantRcpts []string
	}{
		{name: "at MAIL", o: smtptest.Options{MailReply: "421 4.7.0 Too many connections, try again later"},
			wantErr: "MAIL FROM: 421 4.7.0 Too many connections, try again later"},
		{name: "at the second RCPT", o: smtptest.Options{Replies: map[string]string{"c@fabrikam.example": "421 4.4.2 Connection timed out"}},
			wantErr: "RCPT TO: 421 4.4.2 Connection timed out", wantRcpts: []string{"250 2.1.5 Recipient OK", "421 4.4.2 Connection timed out", ""}},
	}
	for _, tt := range tests {
		for _, pipelining := range []bool{true, false} {
			name := tt.name
			if !pipelining {
				name += " without pipelining"
			}
			t.Run(name, func(t *testing.T) {
				tt.o.NoPipelining = !pipelining
				srv := smtptest.NewServer(t, tt.o)
				c, _ := dial(t, srv.Addr())
				res, err := c.Send(context.Background(), envelope("b@fabrikam.example", "c@fabrikam.example", "d@fabrikam.example"), strings.NewReader(testBody))
				var se *Error
				if !errors.As(err, &se) || err.Error() != tt.wantErr || !se.Temporary() {
					t.Fatalf("Send = %v, want *Error %q", err, tt.wantErr)
				}
				if got := replyLines(res.Rcpts...); strings.Join(got, "|") != strings.Join(tt.wantRcpts, "|") {
					t.Errorf("Rcpts = %q, want %q", got, tt.wantRcpts)
				}
				err = c.Noop(context.Background())
				if err == nil || !errors.As(err, &se) || se.Reply.Code != 421 {
					t.Errorf("NOOP after 421 = %v, want the 421 again", err)
				}
				if err := c.Quit(); err != nil {
					t.Errorf("Quit after 421 = %v", err)
				}
			})
		}
	}
}

// A server that does not know EHLO gets HELO (RFC 5321 §3.2), and then
// one command at a time with no parameters.
func TestHeloFallback(t *testing.T) {
	addr := rawServer(t, "220 old.example SMTP ready", func(line string) string {
		verb, _, _ := strings.Cut(line, " ")
		switch verb {
		case "EHLO":
			return "500 Command unrecognized"
		case "HELO":
			return "250 old.example"
		case "MAIL", "RCPT", "RSET", "NOOP":
			if strings.Contains(line, "=") {
				return "501 no parameters here"
			}
			return "250 OK"
		case "DATA":
			return "354 go ahead"
		case ".":
			return "250 accepted"
		case "QUIT":
			return "221 bye"
		}
		return "500 Command unrecognized"
	})
	c, tr := dial(t, addr)
	if len(c.Extensions()) != 0 || c.Supports("PIPELINING") {
		t.Fatalf("extensions after HELO = %v", c.Extensions())
	}
	env := envelope("b@fabrikam.example")
	env.Size, env.Body8Bit = 100, true
	res, err := c.Send(context.Background(), env, strings.NewReader(testBody))
	if err != nil || res.Data.Error() != "250 accepted" {
		t.Fatalf("Send = %v, %v", res, err)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("Quit = %v", err)
	}
	if !strings.Contains(tr.String(), "> EHLO relay.contoso.example\n< 500 Command unrecognized\n> HELO relay.contoso.example\n< 250 old.example") {
		t.Errorf("transcript:\n%s", tr)
	}
}

// A server that knows EHLO and refuses this client does not get HELO.
func TestEhloRefused(t *testing.T) {
	addr := rawServer(t, "220 mx.example ESMTP", func(line string) string {
		if strings.HasPrefix(line, "EHLO") {
			return "550 5.7.1 Your HELO name is not allowed"
		}
		return "250 OK"
	})
	o, _ := testOptions(t)
	c, err := Dial(context.Background(), addr, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Hello(context.Background())
	if err == nil || err.Error() != "EHLO: 550 5.7.1 Your HELO name is not allowed" {
		t.Fatalf("Hello = %v", err)
	}
}

func TestHelloDefaultName(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	o, _ := testOptions(t)
	o.LocalName = ""
	c, err := Dial(context.Background(), srv.Addr(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cmds := srv.Commands(); cmds[0] != "EHLO [127.0.0.1]" {
		t.Errorf("first command = %q, want the address literal", cmds[0])
	}
}

// silentServer greets and then never answers.
func silentServer(t *testing.T) string {
	return rawServer(t, "220 silent ESMTP", func(string) string { return "" })
}

// A context that ends during a call closes the connection; the error says
// why.
func TestContextCancel(t *testing.T) {
	o, _ := testOptions(t)
	c, err := Dial(context.Background(), silentServer(t), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Hello(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Hello = %v, want context.Canceled", err)
	}
	if err := c.Noop(context.Background()); !errors.Is(err, context.Canceled) {
		t.Errorf("NOOP after cancel = %v, want the connection unusable", err)
	}
}

func TestContextDeadlineInSend(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	c, _ := dial(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// The body never ends: only the context can stop Send.
	_, err := c.Send(ctx, envelope("b@fabrikam.example"), endless{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("the server accepted a message that was cut off")
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
		if i%100 == 99 {
			p[i-1], p[i] = '\r', '\n'
		}
	}
	return len(p), nil
}

func TestDialContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o, _ := testOptions(t)
	if _, err := Dial(ctx, silentServer(t), o); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial = %v, want context.Canceled", err)
	}
}

// Each wait has its own deadline from Timeouts.
func TestCommandTimeout(t *testing.T) {
	o, _ := testOptions(t)
	o.Timeouts.Command = 100 * time.Millisecond
	c, err := Dial(context.Background(), silentServer(t), o)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Hello(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Hello = %v, want a timeout", err)
	}
	// Quit on a dead connection returns at once.
	if err := c.Quit(); err != nil {
		t.Errorf("Quit = %v", err)
	}
}

// Quit does not wait long for a server that never says goodbye.
func TestQuitSilentServer(t *testing.T) {
	addr := rawServer(t, "220 x ESMTP", func(line string) string {
		if line == "QUIT" {
			return ""
		}
		return "250 x"
	})
	o, _ := testOptions(t)
	o.Timeouts.Command = 100 * time.Millisecond
	c, err := Dial(context.Background(), addr, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err == nil {
		t.Error("Quit = nil, want the timeout")
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after Quit = %v", err)
	}
}

func TestMalformedReply(t *testing.T) {
	tests := []struct{ name, reply string }{
		{"not a code", "hello there"},
		{"codes differ", "250-first\n251 second"},
		{"bad separator", "250_ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawServer(t, "220 x ESMTP", func(string) string { return tt.reply })
			o, _ := testOptions(t)
			c, err := Dial(context.Background(), addr, o)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Hello(context.Background())
			var se *Error
			if err == nil || errors.As(err, &se) {
				t.Fatalf("Hello = %v, want a protocol error", err)
			}
			if err := c.Noop(context.Background()); err == nil {
				t.Error("connection usable after a malformed reply")
			}
		})
	}
}

// A reply arrives as it comes: one octet per segment here, after a
// postscreen-style "220-" line that a client talking before the final
// "220 " would answer too early (postscreen's pregreet test).
func TestReplySplitAcrossSegments(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	early := make(chan bool, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		c.Write([]byte("220-mx.fabrikam.example ESMTP\r\n"))
		// The client must wait for the last line: anything it sent
		// now would be here within the pause.
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err = r.ReadByte()
		early <- err == nil
		c.SetReadDeadline(time.Time{})
		slow := func(s string) {
			for i := range len(s) {
				c.Write([]byte{s[i]})
			}
		}
		slow("220 mx.fabrikam.example ESMTP\r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "EHLO") {
				slow("250-mx.fabrikam.example\r\n250-SIZE 36700160\r\n250 8BITMIME\r\n")
			} else {
				slow("250 2.0.0 OK\r\n")
			}
		}
	}()
	c, _ := dial(t, ln.Addr().String())
	if <-early {
		t.Error("the client talked before the greeting's last line")
	}
	if c.MaxSize() != 36700160 || !c.Supports("8BITMIME") {
		t.Errorf("extensions %v", c.Extensions())
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Error(err)
	}
}

// A greeting that is no SMTP reply is another protocol on the port (an
// HTTP server, a TLS-only port): the error says so and quotes it, for
// delivery to tell the admin to check the port, instead of a bare
// "malformed reply" that read like a broken SMTP server.
func TestGreetingNotSMTP(t *testing.T) {
	addr := rawServer(t, "HTTP/1.1 400 Bad Request", func(string) string { return "" })
	o, _ := testOptions(t)
	_, err := Dial(context.Background(), addr, o)
	var ns *NotSMTPError
	if !errors.As(err, &ns) || ns.Addr != addr || ns.Line != "HTTP/1.1 400 Bad Request" {
		t.Fatalf("Dial = %v; want a NotSMTPError for %s quoting the line", err, addr)
	}
	if want := addr + ` is not an SMTP server (it answered "HTTP/1.1 400 Bad Request")`; err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
}
