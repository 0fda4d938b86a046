package smtpd

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// startServerTracked is startServer with the operational log recorded and
// a tracking log; events returns the tracking events recorded so far.
func startServerTracked(t testing.TB, yaml string) (port int, log *logRecorder, events func() []tracking.Event) {
	t.Helper()
	port = freePort(t)
	cfg, err := configParse(strings.ReplaceAll(yaml, "PORT", fmt.Sprint(port)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "tracking")
	tl, err := tracking.Open(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	log = &logRecorder{t: t}
	srv := New(Options{Spool: &memSpool{}, Tracking: tl,
		Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err := srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown(t.Context())
		tl.Close()
	})
	events = func() []tracking.Event {
		tl.Flush()
		evs, err := tracking.Search(dir, tracking.Query{})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	return port, log, events
}

// logged counts the log lines with this message.
func logged(log *logRecorder, msg string) int {
	return strings.Count(log.String(), `msg="`+msg+`"`)
}

// A client that pipelines recipients far past max_recipients is not one
// that will send the rest in another message: after rcptOvershoot of them
// it is closed, and only the first refusal is logged and tracked, so that
// one connection cannot fill the disk.
func TestSessionRecipientOvershootCloses(t *testing.T) {
	port, log, events := startServerTracked(t, anonConfig) // max_recipients: 3
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	var cmds strings.Builder
	cmds.WriteString("MAIL FROM:<a@fabrikam.example>\r\n")
	for i := range 3 + rcptOvershoot + 3000 {
		fmt.Fprintf(&cmds, "RCPT TO:<u%d@contoso.com>\r\n", i)
	}
	// Written while the replies are read; the write fails once the
	// server has closed, which is what is expected.
	go c.conn.Write([]byte(cmds.String()))
	c.expect("", "250 2.1.0")
	for range 3 {
		c.expect("", "250 2.1.5")
	}
	for range rcptOvershoot {
		c.expect("", "452 4.5.3 Too many recipients; at most 3 per message")
	}
	c.expect("", "421 4.5.3 Too many recipients: 1000 past the limit of 3 per message, closing; send at most 3 per message")
	if got := c.reply(); got[0] >= '0' && got[0] <= '9' {
		t.Errorf("after the 421: %q, want the connection closed", got)
	}
	waitFor(t, "the session to end", func() bool { return logged(log, "too many recipients past the limit, closing") == 1 })
	if n := logged(log, "recipient refused"); n != 1 {
		t.Errorf(`%d "recipient refused" lines, want 1`, n)
	}
	if n := len(events()); n != 1 {
		t.Errorf("%d tracking events, want 1 (the first refused recipient)", n)
	}
}

// A transaction that ends after recipients refused past the limit logs
// how many there were in one line, whichever way it ends.
func TestSessionRecipientOvershootCounted(t *testing.T) {
	port, log, events := startServerTracked(t, anonConfig) // max_recipients: 3
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	rcpts := func(n int) {
		c.expect("MAIL FROM:<a@fabrikam.example>", "250")
		for i := range n {
			want := "250"
			if i >= 3 {
				want = "452 4.5.3"
			}
			c.expect(fmt.Sprintf("RCPT TO:<u%d@contoso.com>", i), want)
		}
	}
	rcpts(10) // 7 refused
	c.expect("DATA", "354")
	c.expect("Subject: x\r\n\r\nx\r\n.", "250 2.6.0")
	rcpts(5) // 2 refused
	c.expect("RSET", "250")
	rcpts(4) // 1 refused: its own line is enough
	c.expect("RSET", "250")
	rcpts(6) // 3 refused, counted when the session ends
	c.expect("QUIT", "221")
	waitFor(t, "the session to end", func() bool { return logged(log, "more recipients refused past the limit") == 3 })
	for _, want := range []string{"refused=6 ", "refused=1 ", "refused=2 "} {
		if !strings.Contains(log.String(), `from=a@fabrikam.example user="" `+want+`reply="452 4.5.3`) {
			t.Errorf("no count line with %s", want)
		}
	}
	if n := logged(log, "recipient refused"); n != 4 {
		t.Errorf(`%d "recipient refused" lines, want 4, one a transaction`, n)
	}
	var fails int
	for _, e := range events() {
		if e.Event == tracking.EventFail {
			fails++
		}
	}
	if fails != 4 {
		t.Errorf("%d FAIL events, want 4, one a transaction", fails)
	}
}

// twoUsersConfig is authConfig with max_auth_failures 5 and a second
// user, printer, with the same password.
func twoUsersConfig(t *testing.T) (string, *certtest.Cert) {
	cfg, cert := authConfig(t, "implicit")
	cfg = strings.Replace(cfg, "max_auth_failures: 3", "max_auth_failures: 5", 1)
	cfg += "  - name: printer@contoso.com\n    password_hash: \"" + hashOnce() + "\"\n"
	return cfg, cert
}

// authAs opens a session from 127.0.0.7 and tries one login.
func authAs(t *testing.T, port int, cert *certtest.Cert, user, pass, want string) {
	t.Helper()
	c := dialFrom(t, "127.0.0.7", port)
	c.startTLS(cert.ClientConfig("relay.test"))
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("AUTH PLAIN "+b64("\x00"+user+"\x00"+pass), want)
	c.conn.Close()
}

// A login that succeeds forgets the client's failures against that login
// only: knowing one password must not buy more guesses at another.
func TestAuthSuccessForgetsOnlyItsOwnFailures(t *testing.T) {
	cfg, cert := twoUsersConfig(t)
	_, _, port := startServer(t, cfg)
	for range 4 {
		authAs(t, port, cert, "app@contoso.com", "guess", "535 5.7.8")
	}
	authAs(t, port, cert, "printer@contoso.com", "s3cret", "235")
	authAs(t, port, cert, "app@contoso.com", "guess", "421 4.7.0 Too many failed authentication attempts")
	authAs(t, port, cert, "printer@contoso.com", "s3cret", "421 4.7.0 Too many failed authentication attempts")
}

// A user who mistypes and then gets it right is not held to the typos
// (the office behind one NAT address is not locked out by them).
func TestAuthSuccessForgetsItsOwnFailures(t *testing.T) {
	cfg, cert := twoUsersConfig(t)
	_, _, port := startServer(t, cfg)
	for range 4 {
		authAs(t, port, cert, "app@contoso.com", "typo", "535 5.7.8")
	}
	authAs(t, port, cert, "APP@contoso.com", "s3cret", "235")
	for range 4 {
		authAs(t, port, cert, "app@contoso.com", "typo", "535 5.7.8")
	}
	authAs(t, port, cert, "app@contoso.com", "s3cret", "235")
}

// Sessions that try passwords at the same time from one IP get no more
// checks between them than max_auth_failures: the slow password check
// does not let them all pass the limit before the first failure counts.
func TestAuthParallelFailuresHoldToTheLimit(t *testing.T) {
	cfg, cert := twoUsersConfig(t) // max_auth_failures: 5
	port, log, _ := startServerLogged(t, cfg)
	const n = 12
	clients := tlsClients(t, "127.0.0.8", port, cert, n)
	// Every session has its AUTH line before the first is answered.
	for _, c := range clients {
		c.send("AUTH PLAIN " + b64("\x00app@contoso.com\x00guess") + "\r\n")
	}
	got := map[string]int{}
	for _, c := range clients {
		r := c.reply()
		got[r[:min(len(r), 9)]]++
	}
	if got["535 5.7.8"] != 4 || got["421 4.7.0"] != n-4 {
		t.Errorf("replies %v, want 4 × 535 5.7.8 and %d × 421 4.7.0", got, n-4)
	}
	if k := logged(log, "AUTH failed"); k != 5 {
		t.Errorf("%d passwords checked, want 5 (max_auth_failures)", k)
	}
}

// Sessions logging in at once with the right password all get in, more
// of them than max_auth_failures: the checks under way only make them
// wait their turn.
func TestAuthParallelSuccesses(t *testing.T) {
	cfg, cert := twoUsersConfig(t) // max_auth_failures: 5
	_, _, port := startServer(t, cfg)
	const n = 12
	clients := tlsClients(t, "127.0.0.9", port, cert, n)
	for i, c := range clients {
		pass := "s3cret"
		if i%4 == 0 {
			pass = "typo" // 3 failures among them: under the limit
		}
		c.send("AUTH PLAIN " + b64("\x00app@contoso.com\x00"+pass) + "\r\n")
	}
	for i, c := range clients {
		want := "235 2.7.0"
		if i%4 == 0 {
			want = "535 5.7.8"
		}
		c.expect("", want)
	}
}

// max_commands_before_mail counts the commands that bring no message
// closer, inside a transaction too, and MAILs whose message is never
// accepted: a client looping on them is closed like one sending NOOPs.
func TestSessionJunkLimitInTransactions(t *testing.T) {
	cfg := strings.Replace(anonConfig, "max_errors: 8", "max_commands_before_mail: 10", 1)
	_, _, port := startServer(t, cfg)
	loops := map[string][]string{
		"MAIL RSET":       {"MAIL FROM:<a@fabrikam.example>", "RSET"},
		"MAIL NOOP RSET":  {"MAIL FROM:<a@fabrikam.example>", "NOOP", "RSET"},
		"MAIL RCPT RSET":  {"MAIL FROM:<a@fabrikam.example>", "RCPT TO:<b@contoso.com>", "RSET"},
		"VRFY EXPN HELP":  {"VRFY b", "EXPN b", "HELP"},
		"EHLO after MAIL": {"MAIL FROM:<a@fabrikam.example>", "EHLO x"},
	}
	for name, loop := range loops {
		t.Run(name, func(t *testing.T) {
			c := dial(t, port)
			c.expect("", "220")
			c.expect("EHLO x", "250")
			for i := 0; ; i++ {
				cmd := loop[i%len(loop)]
				c.send(cmd + "\r\n")
				got := c.reply()
				if strings.HasPrefix(got, "421 4.7.0 Too many commands without a message") {
					break
				}
				if got[0] != '2' && got[0] != '3' {
					t.Fatalf("after %q: %q", cmd, got)
				}
				if i > 40 {
					t.Fatal("no 421 after 40 commands without a message")
				}
			}
			if got := c.reply(); got != "EOF" {
				t.Errorf("after the 421: %q, want the connection closed", got)
			}
		})
	}
}

// A client that sends many messages on one connection, with RSET and
// NOOP between them, is never closed for it: each message accepted starts
// the count again.
func TestSessionJunkLimitSparesMessages(t *testing.T) {
	cfg := strings.Replace(anonConfig, "max_errors: 8", "max_commands_before_mail: 5", 1)
	_, spool, port := startServer(t, cfg)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	for range 30 {
		c.expect("RSET", "250")
		c.expect("NOOP", "250")
		c.expect("MAIL FROM:<a@fabrikam.example>", "250")
		c.expect("RCPT TO:<b@contoso.com>", "250")
		c.expect("DATA", "354")
		c.expect("Subject: x\r\n\r\nx\r\n.", "250 2.6.0")
	}
	c.expect("QUIT", "221")
	if n := len(spool.all()); n != 30 {
		t.Errorf("%d messages stored, want 30", n)
	}
}

// A recipient given over and over is a client holding the session open
// without mail, as one sending recipients past the limit is: closed alike.
func TestSessionRepeatedRecipientCloses(t *testing.T) {
	port, log, _ := startServerTracked(t, anonConfig) // max_recipients: 3
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	var cmds strings.Builder
	cmds.WriteString("MAIL FROM:<a@fabrikam.example>\r\n")
	for range 1 + rcptOvershoot + 3000 {
		cmds.WriteString("RCPT TO:<b@contoso.com>\r\n")
	}
	go c.conn.Write([]byte(cmds.String())) // fails once the server has closed
	c.expect("", "250 2.1.0")
	for range 1 + rcptOvershoot {
		c.expect("", "250 2.1.5")
	}
	c.expect("", "421 4.5.3 Too many recipients")
	waitFor(t, "the session to end", func() bool { return logged(log, "too many recipients past the limit, closing") == 1 })
}

// Where no recipient limit applies (externally-secured), tens of
// thousands of recipients, some given twice, make one message with each
// recipient once.
func TestSessionManyRecipientsWithoutLimit(t *testing.T) {
	cfg := strings.Replace(anonConfig, "permissions: [anonymous]", "permissions: [externally-secured]", 1)
	_, spool, port := startServer(t, cfg)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	const n = 30000
	var cmds strings.Builder
	cmds.WriteString("MAIL FROM:<a@fabrikam.example>\r\n")
	for i := range n {
		fmt.Fprintf(&cmds, "RCPT TO:<u%d@contoso.com>\r\n", i)
		if i%10 == 0 {
			fmt.Fprintf(&cmds, "RCPT TO:<u%d@contoso.com>\r\n", i/2)
		}
	}
	cmds.WriteString("DATA\r\n")
	go c.conn.Write([]byte(cmds.String()))
	c.expect("", "250 2.1.0")
	for range n + n/10 {
		c.expect("", "250 2.1.5")
	}
	c.expect("", "354")
	c.expect("Subject: x\r\n\r\nx\r\n.", "250 2.6.0")
	msgs := spool.all()
	if len(msgs) != 1 || len(msgs[0].env.Rcpts) != n {
		t.Fatalf("%d messages; want one with %d recipients", len(msgs), n)
	}
}

// tlsClients opens n implicit-TLS sessions from src, each past its EHLO.
func tlsClients(t *testing.T, src string, port int, cert *certtest.Cert, n int) []*client {
	t.Helper()
	clients := make([]*client, n)
	for i := range clients {
		c := dialFrom(t, src, port)
		c.startTLS(cert.ClientConfig("relay.test"))
		c.expect("", "220")
		c.expect("EHLO x", "250")
		clients[i] = c
	}
	return clients
}
