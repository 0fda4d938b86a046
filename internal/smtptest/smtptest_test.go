package smtptest_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// The server is checked with the standard library's client, so that its
// tests do not depend on the client it is there to test.

func TestServerRecordsMessage(t *testing.T) {
	cert := certtest.New(t, "localhost")
	srv := smtptest.NewServer(t, smtptest.Options{
		TLS: cert, RequireTLS: true, RequireAuth: true,
		Auth: []string{"PLAIN", "LOGIN"}, Users: map[string]string{"app@contoso.example": "s3cret"},
	})
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if got, want := errText(c.Mail("a@contoso.example")), "530 5.7.0 Must issue a STARTTLS command first"; got != want {
		t.Fatalf("MAIL before STARTTLS: %q, want %q", got, want)
	}
	if err := c.StartTLS(cert.ClientConfig("localhost")); err != nil {
		t.Fatal(err)
	}
	if got, want := errText(c.Mail("a@contoso.example")), "530 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM"; got != want {
		t.Fatalf("MAIL before AUTH: %q, want %q", got, want)
	}
	if err := c.Auth(smtp.PlainAuth("", "app@contoso.example", "s3cret", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@contoso.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@fabrikam.example"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: hi\r\n\r\n.leading dot\r\n..two\r\nend\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	m := srv.WaitMessages(t, 1)[0]
	if m.From != "a@contoso.example" || len(m.Rcpts) != 1 || m.Rcpts[0] != "b@fabrikam.example" {
		t.Errorf("envelope = %q → %q", m.From, m.Rcpts)
	}
	if want := "Subject: hi\r\n\r\n.leading dot\r\n..two\r\nend\r\n"; string(m.Data) != want {
		t.Errorf("data = %q, want %q", m.Data, want)
	}
	if !m.TLS || m.AuthUser != "app@contoso.example" || m.Helo != "client.example" || m.Session != 1 {
		t.Errorf("message = TLS %v, user %q, helo %q, session %d", m.TLS, m.AuthUser, m.Helo, m.Session)
	}
	if _, ok := m.Params["BODY"]; !ok {
		t.Errorf("MAIL params = %v, want BODY (net/smtp sends BODY=8BITMIME)", m.Params)
	}
}

func TestServerReplies(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{
		Replies: map[string]string{"gone@x.example": "550 5.1.1 no such user", "later@x.example": "451 4.2.1 try later"},
	})
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@x.example"); err != nil {
		t.Fatal(err)
	}
	for rcpt, want := range map[string]string{"gone@x.example": "550 5.1.1 no such user", "later@x.example": "451 4.2.1 try later", "ok@x.example": ""} {
		err := c.Rcpt(rcpt)
		if got := errText(err); got != want {
			t.Errorf("RCPT %s: %q, want %q", rcpt, got, want)
		}
	}
	// Set turns the 451 into success for the next session.
	srv.Set(func(o *smtptest.Options) { delete(o.Replies, "later@x.example") })
	if err := c.Rcpt("later@x.example"); err != nil {
		t.Errorf("RCPT after Set: %v", err)
	}
}

// errText is the reply line in an error from net/smtp.
func errText(err error) string {
	var te *textproto.Error
	if errors.As(err, &te) {
		return fmt.Sprintf("%d %s", te.Code, te.Msg)
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// A client may send MAIL, RCPT and DATA in one write (RFC 2920); the server
// answers all three.
func TestServerPipelining(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	expect := func(prefix string) {
		t.Helper()
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("want %q: %v", prefix, err)
			}
			if !strings.HasPrefix(l, prefix) {
				t.Fatalf("got %q, want %q", l, prefix)
			}
			if l[3] == ' ' {
				return
			}
		}
	}
	expect("220")
	conn.Write([]byte("EHLO x\r\n"))
	expect("250")
	conn.Write([]byte("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n"))
	expect("250 2.1.0")
	expect("250 2.1.5")
	expect("354")
	conn.Write([]byte("hello\r\n.\r\nQUIT\r\n"))
	expect("250 2.0.0")
	expect("221")
	if m := srv.WaitMessages(t, 1); string(m[0].Data) != "hello\r\n" {
		t.Errorf("data = %q", m[0].Data)
	}
}

// A test can stop an upstream and start it again on the same address.
func TestServerRestart(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	addr := srv.Addr()
	srv.Close()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("closed server still accepts connections")
	}
	srv = smtptest.NewServer(t, smtptest.Options{Addr: addr})
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if srv.Addr() != addr || srv.Sessions() != 1 {
		t.Errorf("restarted server at %s with %d sessions, want %s and 1", srv.Addr(), srv.Sessions(), addr)
	}
}

// Over MaxConnections a connection is greeted with Microsoft's 421 and
// closed; once a session ends there is room again.
func TestServerMaxConnections(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{MaxConnections: 1})
	first, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_, err = smtp.Dial(srv.Addr())
	if got, want := errText(err), "421 4.3.2 The maximum number of concurrent connections has exceeded a limit, closing transmission channel"; got != want {
		t.Fatalf("second connection: %q, want %q", got, want)
	}
	if n := srv.Busy(); n != 1 {
		t.Errorf("Busy() = %d, want 1", n)
	}
	first.Quit()
	// The server counts the first session as open until it has closed
	// it, a moment after the 221: poll (the deadline only guards a hang).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := smtp.Dial(srv.Addr())
		if err == nil {
			c.Quit()
			break
		}
		if time.Now().After(deadline) || !strings.HasPrefix(errText(err), "421") {
			t.Fatalf("connection after the first session ended: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With BusyAtMail a connection over MaxConnections gets through EHLO and
// is turned away at MAIL, and the connection closes after the 421.
func TestServerMaxConnectionsAtMail(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{MaxConnections: 1, BusyAtMail: true})
	first, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Quit()
	second, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatalf("second connection not greeted: %v", err)
	}
	defer second.Close()
	if err := second.Hello("client.example"); err != nil {
		t.Fatalf("EHLO on the second connection: %v", err)
	}
	if got, want := errText(second.Mail("a@contoso.example")), "421 4.3.2 The maximum number of concurrent connections has exceeded a limit, closing transmission channel"; got != want {
		t.Fatalf("MAIL on the second connection: %q, want %q", got, want)
	}
	if err := second.Noop(); err == nil {
		t.Error("the connection is still open after the 421")
	}
	if n := srv.Busy(); n != 1 {
		t.Errorf("Busy() = %d, want 1", n)
	}
	if err := first.Mail("a@contoso.example"); err != nil {
		t.Errorf("MAIL on the first connection: %v", err)
	}
}

// CloseReply answers the command after CloseAfter messages, and the
// connection closes.
func TestServerCloseReply(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{CloseAfter: 1, CloseReply: "421 4.4.2 smtptest idle timeout, closing"})
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@contoso.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@fabrikam.example"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: one\r\n\r\nbody\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := errText(c.Mail("a@contoso.example")), "421 4.4.2 smtptest idle timeout, closing"; got != want {
		t.Fatalf("MAIL after the first message: %q, want %q", got, want)
	}
	if err := c.Noop(); err == nil {
		t.Error("the connection is still open after the 421")
	}
}
