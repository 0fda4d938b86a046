package smtpclient

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// stallServer answers like a plain ESMTP server with PIPELINING until the
// command (or, for "data", the message data after 354) where it stops:
// it keeps the connection open and neither answers nor reads.
func stallServer(t *testing.T, at string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		stall := func() { <-stop }
		if at == "greeting" {
			stall()
			return
		}
		c.Write([]byte("220 stall.example ESMTP\r\n"))
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			verb, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			if verb == at {
				stall()
				return
			}
			switch verb {
			case "EHLO":
				c.Write([]byte("250-stall.example\r\n250 PIPELINING\r\n"))
			case "DATA":
				c.Write([]byte("354 go ahead\r\n"))
				if at == "data" {
					stall()
					return
				}
				for line != ".\r\n" {
					if line, err = r.ReadString('\n'); err != nil {
						return
					}
				}
				if at == "." {
					stall()
					return
				}
				c.Write([]byte("250 2.0.0 queued\r\n"))
			default:
				c.Write([]byte("250 2.0.0 OK\r\n"))
			}
		}
	}()
	return ln.Addr().String()
}

// RFC 5321 §4.5.3.2: each wait has its own limit, and a server silent
// past it ends the session with an error that says so; nothing hangs.
// (The RFC's minutes are the defaults; here they are milliseconds.)
func TestTimeouts(t *testing.T) {
	const limit = 100 * time.Millisecond
	big := strings.Repeat(strings.Repeat("x", 998)+"\r\n", 64<<10) // more than the socket buffers hold
	tests := []struct {
		at   string // where the server stalls
		set  func(*Timeouts)
		body string
		want string
	}{
		{"greeting", func(t *Timeouts) { t.Greeting = limit }, "", "smtpclient: greeting: no reply within 100ms"},
		{"EHLO", func(t *Timeouts) { t.Command = limit }, "", "smtpclient: EHLO: no reply within 100ms"},
		{"MAIL", func(t *Timeouts) { t.Mail = limit }, "", "smtpclient: MAIL FROM: no reply within 100ms"},
		{"RCPT", func(t *Timeouts) { t.Rcpt = limit }, "", "smtpclient: RCPT TO: no reply within 100ms"},
		{"DATA", func(t *Timeouts) { t.DataInit = limit }, "", "smtpclient: DATA: no reply within 100ms"},
		{"data", func(t *Timeouts) { t.DataBlock = limit }, big, "smtpclient: DATA: could not send within 100ms"},
		{".", func(t *Timeouts) { t.DataEnd = limit }, "", "smtpclient: DATA: no reply within 100ms"},
	}
	for _, tt := range tests {
		t.Run(tt.at, func(t *testing.T) {
			o, _ := testOptions(t)
			tt.set(&o.Timeouts)
			// MAIL, RCPT and DATA go in one write with PIPELINING: each
			// reply still has its own wait.
			c, err := Dial(context.Background(), stallServer(t, tt.at), o)
			if err == nil {
				if err = c.Hello(context.Background()); err == nil {
					body := tt.body
					if body == "" {
						body = testBody
					}
					_, err = c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(body))
				}
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error = %v; want a timeout starting %q", err, tt.want)
			}
			if c != nil && c.Err() == nil {
				t.Error("connection usable after a timeout")
			}
		})
	}
}
