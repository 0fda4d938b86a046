package smtpd

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/password"
	"github.com/sluice-relay/sluice/internal/reply"
)

const anonConfig = `
node: {hostname: relay.test}
accepted_domains: [{domain: contoso.com}]
receive_connectors:
  - name: Default
    bindings: [127.0.0.1:PORT]
    remote_ip_ranges: [127.0.0.1]
    permissions: [anonymous]
    limits: {tarpit: 0s, max_message_size: 64KB, max_recipients: 3, max_errors: 8}
`

func TestSessionBasic(t *testing.T) {
	_, spool, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220 relay.test ESMTP Sluice ready")
	ehlo := c.expect("EHLO client.test", "250-relay.test Hello [127.0.0.1]")
	for _, ext := range []string{"PIPELINING", "SIZE 65536", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN"} {
		if !strings.Contains(ehlo, "250-"+ext+"\n") && !strings.HasSuffix(ehlo, "250 "+ext) {
			t.Errorf("EHLO lacks %s:\n%s", ext, ehlo)
		}
	}
	for _, ext := range []string{"STARTTLS", "AUTH"} {
		if strings.Contains(ehlo, ext) {
			t.Errorf("EHLO offers %s on a connector without it:\n%s", ext, ehlo)
		}
	}
	c.expect("MAIL FROM:<alerts@fabrikam.example> BODY=8BITMIME", "250 2.1.0")
	c.expect("RCPT TO:<bob@contoso.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@contoso.com", "250 2.1.5")
	c.expect("DATA", "354 ")
	got := c.expect("Subject: hi\r\n\r\nbody\r\n..dot\r\n.", "250 2.6.0 Queued as ")
	c.expect("QUIT", "221 2.0.0")
	msgs := spool.all()
	if len(msgs) != 1 {
		t.Fatalf("spool has %d messages", len(msgs))
	}
	m := msgs[0]
	if !strings.HasSuffix(got, string(m.env.ID)) {
		t.Errorf("reply %q does not name the id %s", got, m.env.ID)
	}
	if !strings.HasSuffix(m.body, "Subject: hi\r\n\r\nbody\r\n.dot\r\n") {
		t.Errorf("body not kept as sent:\n%q", m.body)
	}
	for _, want := range []string{
		"Received: from client.test ([127.0.0.1])\r\n\tby relay.test (Sluice) with ESMTP id " + string(m.env.ID) + "\r\n\t(connector \"Default\")\r\n\tfor <bob@contoso.com>; ",
		"\r\nMessage-ID: <" + string(m.env.ID) + "@relay.test>\r\n",
		"\r\nDate: ",
	} {
		if !strings.Contains(m.body, want) {
			t.Errorf("stored message lacks %q:\n%s", want, m.body)
		}
	}
	if m.env.Body != "8BITMIME" || m.env.Rcpts[0].Notify == 0 || m.env.Rcpts[0].ORcpt != "rfc822;bob@contoso.com" {
		t.Errorf("envelope parameters lost: %+v", m.env)
	}
	if m.env.Size != int64(len(m.body)) {
		t.Errorf("size %d, body %d", m.env.Size, len(m.body))
	}
}

func TestSessionKeepsMessageIDAndDate(t *testing.T) {
	_, spool, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("HELO x", "250 relay.test")
	c.expect("MAIL FROM:<a@fabrikam.example>", "250")
	c.expect("RCPT TO:<b@contoso.com>", "250")
	c.expect("DATA", "354")
	c.expect("message-id: <1@x>\r\nDATE: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nx\r\n.", "250")
	body := spool.all()[0].body
	if strings.Count(body, "essage-") != 1 || strings.Contains(body, "\r\nDate: ") || !strings.Contains(body, "with SMTP id") {
		t.Errorf("fields added though present, or wrong protocol:\n%s", body)
	}
}

func TestSessionNoHeader(t *testing.T) {
	_, spool, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a@fabrikam.example>", "250")
	c.expect("RCPT TO:<b@contoso.com>", "250")
	c.expect("DATA", "354")
	c.expect("just text, no header\r\n.", "250")
	body := spool.all()[0].body
	if !strings.HasSuffix(body, "\r\n\r\njust text, no header\r\n") {
		t.Errorf("the first line became a header:\n%q", body)
	}
}

func TestSessionPipelining(t *testing.T) {
	_, spool, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220")
	c.send("EHLO x\r\nMAIL FROM:<a@fabrikam.example>\r\nRCPT TO:<b@contoso.com>\r\nRCPT TO:<nobody@fabrikam.example>\r\nRCPT TO:<c@contoso.com>\r\nDATA\r\n")
	for _, want := range []string{"250-relay.test", "250 2.1.0", "250 2.1.5", "550 5.7.54", "250 2.1.5", "354"} {
		if got := c.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	c.send("x\r\n.\r\nMAIL FROM:<a@fabrikam.example>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\ny\r\n.\r\nQUIT\r\n")
	for _, want := range []string{"250 2.6.0", "250 2.1.0", "250 2.1.5", "354", "250 2.6.0", "221"} {
		if got := c.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if n := len(spool.all()); n != 2 {
		t.Fatalf("%d messages stored, want 2", n)
	}
	if r := spool.all()[0].env.Rcpts; len(r) != 2 {
		t.Errorf("first message has recipients %v, want the two accepted ones", r)
	}
}

func TestSessionSequenceAndSyntax(t *testing.T) {
	_, _, port := startServer(t, strings.Replace(anonConfig, "max_errors: 8", "max_errors: 50", 1))
	c := dial(t, port)
	c.expect("", "220")
	steps := []struct{ cmd, want string }{
		{"MAIL FROM:<a@fabrikam.example>", "503 5.5.1 Send EHLO or HELO first"},
		{"EHLO", "501 5.5.4 EHLO requires a domain name or address literal"},
		{"HELO x", "250 relay.test"},
		{"RCPT TO:<b@contoso.com>", "503 5.5.1 Send MAIL FROM first"},
		{"DATA", "503 5.5.1 Send MAIL FROM first"},
		{"MAIL TO:<a@fabrikam.example>", "501 5.5.4 Syntax error in parameters or arguments; write MAIL FROM:<address>"},
		{"MAIL FROM:<a@fabrikam.example", "501 5.1.3 Invalid sender address: address must be in angle brackets"},
		{"MAIL FROM:<a@fabrikam.example> FOO=BAR", "555 5.5.4 MAIL FROM parameter FOO is not supported"},
		{"MAIL FROM:<jörg@fabrikam.example>", "553 5.6.7"},
		{"MAIL FROM:<a@fabrikam.example> SIZE=70000", "552 5.3.4 Message size exceeds fixed maximum message size of 65536 bytes"},
		{"MAIL FROM: <a@fabrikam.example>", "250 2.1.0"},
		{"MAIL FROM:<a@fabrikam.example>", "503 5.5.1 Sender already specified"},
		{"DATA", "554 5.5.1 No valid recipients"},
		{"RCPT TO:<>", "501 5.1.3 Invalid recipient address: the null address <> is only allowed as a sender"},
		{"RCPT TO:<b@contoso.com> NOTIFY=NEVER,SUCCESS", "501 5.5.4"},
		{"VRFY bob", "252 2.0.0"},
		{"NOOP", "250 2.0.0"},
		{"RSET", "250 2.0.0"},
		{"RCPT TO:<b@contoso.com>", "503 5.5.1 Send MAIL FROM first"},
		{"BOGUS", "500 5.5.2 Syntax error, command unrecognized"},
		{"STARTTLS", "502 5.5.1 Command not implemented; STARTTLS is not offered on this connector"},
		{"QUIT", "221"},
	}
	for _, s := range steps {
		c.expect(s.cmd, s.want)
	}
}

func TestSessionLimits(t *testing.T) {
	_, spool, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a@fabrikam.example>", "250")
	for i := 0; i < 3; i++ {
		c.expect(fmt.Sprintf("RCPT TO:<u%d@contoso.com>", i), "250")
	}
	c.expect("RCPT TO:<u9@contoso.com>", "452 4.5.3 Too many recipients")
	c.expect("DATA", "354")
	big := strings.Repeat(strings.Repeat("x", 78)+"\r\n", 1000) // 80 kB > 64 KB
	c.expect("Subject: big\r\n\r\n"+big+".", "552 5.3.4 Message size exceeds fixed maximum message size of 65536 bytes")
	// The session goes on after the refused message: the data was drained.
	c.expect("MAIL FROM:<a@fabrikam.example>", "250")
	c.expect("RCPT TO:<u@contoso.com>", "250")
	c.expect("DATA", "354")
	c.expect(strings.Repeat("X-Big: "+strings.Repeat("y", 4000)+"\r\n", 20)+"\r\nx\r\n.", "552 5.3.4")
	c.expect("MAIL FROM:<a@fabrikam.example>", "250")
	c.expect("RCPT TO:<u@contoso.com>", "250")
	c.expect("DATA", "354")
	c.expect("X-Long: "+strings.Repeat("y", 66000)+"\r\n\r\nx\r\n.", "500 5.5.2 Message has a line longer than this server accepts (65536 octets, CRLF excluded); wrap long lines, or send the body as quoted-printable or base64")
	c.expect("NOOP", "250")
	c.expect("RSET", "250")
	c.send(strings.Repeat("N", 3000) + "\r\n")
	c.expect("", "500 5.5.2 Line too long")
	c.expect("NOOP", "250")
	if n := len(spool.all()); n != 0 {
		t.Errorf("%d oversize messages stored", n)
	}
}

func TestSessionHeaderLimit(t *testing.T) {
	_, _, port := startServer(t, strings.Replace(anonConfig, "max_message_size: 64KB", "max_message_size: 1MB, max_header_size: 2KB", 1))
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a@fabrikam.example>", "250")
	c.expect("RCPT TO:<u@contoso.com>", "250")
	c.expect("DATA", "354")
	c.expect(strings.Repeat("X-Long: "+strings.Repeat("y", 70)+"\r\n", 40)+"\r\nbody\r\n.", "552 5.3.4 Header size exceeds fixed maximum size of 2048 bytes")
	c.expect("NOOP", "250")
}

func TestSessionSmuggling(t *testing.T) {
	for _, mode := range []string{"reject", "normalize"} {
		t.Run(mode, func(t *testing.T) {
			_, spool, port := startServer(t, anonConfig+"    bare_line_endings: "+mode+"\n")
			c := dial(t, port)
			c.expect("", "220")
			c.expect("EHLO x", "250")
			c.expect("MAIL FROM:<a@fabrikam.example>", "250")
			c.expect("RCPT TO:<b@contoso.com>", "250")
			c.expect("DATA", "354")
			c.send("Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@fabrikam.example>\nRCPT TO:<victim@contoso.com>\nDATA\nSubject: smuggled\n\n")
			want := "550 5.6.11 Bare line feeds"
			if mode == "normalize" {
				want = "250 2.6.0"
			}
			c.expect("\r\n.", want)
			c.expect("NOOP", "250")
			msgs := spool.all()
			if mode == "reject" && len(msgs) != 0 || mode == "normalize" && len(msgs) != 1 {
				t.Fatalf("%d messages stored; the smuggled one must never be separate", len(msgs))
			}
			if mode == "normalize" {
				b := msgs[0].body
				if strings.Contains(strings.ReplaceAll(b, "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(b, "\r\n", ""), "\r") {
					t.Errorf("bare line endings kept:\n%q", b)
				}
				if !strings.Contains(b, "first\r\n\r\nMAIL FROM:<evil@fabrikam.example>\r\n") {
					t.Errorf("smuggled text not kept inside the one message:\n%q", b)
				}
			}
		})
	}
}

func TestSessionNoConnector(t *testing.T) {
	_, _, port := startServer(t, anonConfig)
	c := dialFrom(t, "127.0.0.3", port)
	c.expect("", "554 5.7.1 Client host 127.0.0.3 is not allowed to connect to this server")
	if got := c.reply(); got != "EOF" {
		t.Errorf("connection not closed: %q", got)
	}
}

func TestSessionConnectionLimit(t *testing.T) {
	_, _, port := startServer(t, strings.Replace(anonConfig, "tarpit: 0s", "tarpit: 0s, max_connections_per_ip: 2", 1))
	a, b := dial(t, port), dial(t, port)
	a.expect("", "220")
	b.expect("", "220")
	c := dial(t, port)
	c.expect("", "421 4.7.0 Too many connections from your host")
	a.expect("QUIT", "221")
	if got := a.reply(); got != "EOF" {
		t.Fatalf("after QUIT: %q", got)
	}
	waitFor(t, "a slot to free up", func() bool {
		d := dial(t, port)
		return strings.HasPrefix(d.reply(), "220")
	})
}

func TestSessionErrorLimit(t *testing.T) {
	_, _, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220")
	for i := 0; i < 7; i++ {
		c.expect("BOGUS", "500")
	}
	c.expect("BOGUS", "500 5.5.2 Syntax error, command unrecognized")
	c.expect("", "421 4.7.0 Too many errors")
}

func TestSessionJunkLimit(t *testing.T) {
	_, _, port := startServer(t, strings.Replace(anonConfig, "max_errors: 8", "max_commands_before_mail: 3", 1))
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("NOOP", "250")
	c.expect("NOOP", "250")
	c.expect("NOOP", "421 4.7.0 Too many commands without a message")
}

func TestSessionIdleTimeout(t *testing.T) {
	_, _, port := startServer(t, strings.Replace(anonConfig, "tarpit: 0s", "tarpit: 0s, idle_timeout: 1s", 1))
	c := dial(t, port)
	c.expect("", "220")
	c.expect("", "421 4.4.2 Idle timeout")
}

func TestSessionDataTimeout(t *testing.T) {
	_, spool, port := startServer(t, strings.Replace(anonConfig, "tarpit: 0s", "tarpit: 0s, data_timeout: 1s", 1))
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a@fabrikam.example>", "250")
	c.expect("RCPT TO:<b@contoso.com>", "250")
	c.expect("DATA", "354")
	c.send("Subject: slow\r\n\r\npart of a message\r\n")
	c.expect("", "421 4.4.2 Timeout waiting for message data")
	// What the client sends next is the rest of its message, never a command.
	c.conn.Write([]byte("\r\n.\r\nMAIL FROM:<a@fabrikam.example>\r\n"))
	if got := c.reply(); got != "EOF" && !strings.Contains(got, "reset") {
		t.Errorf("after the DATA timeout the server read on: %q", got)
	}
	if n := len(spool.all()); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

func TestSessionSpoolErrors(t *testing.T) {
	_, spool, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{reply.StoreFull, "452 4.3.1 Insufficient system storage"},
		{errors.New("disk on fire: /var/lib/sluice"), "451 4.3.0 Temporary server error, try again later (session "},
	} {
		spool.mu.Lock()
		spool.err = tc.err
		spool.mu.Unlock()
		c.expect("MAIL FROM:<a@fabrikam.example>", "250")
		c.expect("RCPT TO:<b@contoso.com>", "250")
		c.expect("DATA", "354")
		got := c.expect("x\r\n.", tc.want)
		if strings.Contains(got, "fire") {
			t.Errorf("internal error text reached the client: %q", got)
		}
	}
}

var hashOnce = sync.OnceValue(func() string {
	h, err := password.Hash("s3cret")
	if err != nil {
		panic(err)
	}
	return h
})

func authConfig(t *testing.T, mode string) (string, *certtest.Cert) {
	cert := certtest.New(t, "relay.test", "127.0.0.1")
	return fmt.Sprintf(`
node: {hostname: relay.test}
accepted_domains: [{domain: contoso.com}]
receive_connectors:
  - name: Client
    bindings: [127.0.0.1:PORT]
    remote_ip_ranges: [127.0.0.0/8]
    auth_mechanisms: [PLAIN, LOGIN]
    tls: {mode: %s, certificate: %s, key: %s}
    limits: {tarpit: 0s, max_auth_failures: 3}
users:
  - name: app@contoso.com
    password_hash: "%s"
`, mode, cert.CertFile, cert.KeyFile, hashOnce()), cert
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestSessionSTARTTLSAndAuth(t *testing.T) {
	cfg, cert := authConfig(t, "starttls")
	_, spool, port := startServer(t, cfg)
	c := dial(t, port)
	c.expect("", "220")
	ehlo := c.expect("EHLO x", "250")
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("before TLS the EHLO must offer STARTTLS and hide AUTH:\n%s", ehlo)
	}
	c.expect("AUTH PLAIN "+b64("\x00app@contoso.com\x00s3cret"), "538 5.7.11 Encryption required")
	c.expect("MAIL FROM:<app@contoso.com>", "530 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM")
	// Commands pipelined behind STARTTLS arrive in the clear: discarded.
	c.send("STARTTLS\r\nMAIL FROM:<evil@fabrikam.example>\r\n")
	c.expect("", "220 2.0.0 Ready to start TLS")
	st := c.startTLS(cert.ClientConfig("relay.test"))
	if st.Version != tls.VersionTLS13 {
		t.Errorf("TLS version %x", st.Version)
	}
	c.expect("MAIL FROM:<app@contoso.com>", "503 5.5.1 Send EHLO or HELO first") // not the discarded MAIL's reply
	ehlo = c.expect("EHLO x", "250")
	if strings.Contains(ehlo, "STARTTLS") || !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Errorf("after TLS the EHLO must offer AUTH and not STARTTLS:\n%s", ehlo)
	}
	c.expect("STARTTLS", "503 5.5.1 TLS already active")
	c.expect("AUTH CRAM-MD5", "504 5.5.4 Unrecognized authentication type; this connector offers PLAIN LOGIN")
	c.expect("AUTH PLAIN "+b64("\x00app@contoso.com\x00wrong"), "535 5.7.8 Authentication credentials invalid")
	c.expect("AUTH LOGIN", "334 "+b64("Username:"))
	c.expect("*", "501 5.0.0 Authentication cancelled")
	c.expect("AUTH LOGIN", "334 "+b64("Username:"))
	c.expect("not base64!", "501 5.5.2")
	// .NET SmtpClient: LOGIN, user name after the first challenge.
	c.expect("AUTH LOGIN", "334 "+b64("Username:"))
	c.expect(b64("APP@contoso.com"), "334 "+b64("Password:"))
	c.expect(b64("s3cret"), "235 2.7.0 Authentication successful")
	c.expect("AUTH LOGIN", "503 5.5.1 Already authenticated")
	c.expect("MAIL FROM:<ceo@contoso.com>", "550 5.7.60 Client does not have permissions to send as this sender")
	c.expect("MAIL FROM:<app@contoso.com>", "250")
	c.expect("RCPT TO:<someone@fabrikam.example>", "250") // users relay by default
	c.expect("DATA", "354")
	c.expect("Subject: x\r\n\r\nx\r\n.", "250 2.6.0")
	body := spool.all()[0].body
	if !strings.Contains(body, "with ESMTPSA id") || !strings.Contains(body, "TLS1.3 TLS_") || !strings.Contains(body, `authenticated as "app@contoso.com"`) {
		t.Errorf("Received header lacks TLS or user:\n%s", body)
	}
}

func TestSessionAuthVariants(t *testing.T) {
	cfg, cert := authConfig(t, "implicit")
	_, _, port := startServer(t, cfg)
	tests := []struct {
		name  string
		steps [][2]string
	}{
		{"PLAIN initial response", [][2]string{{"AUTH PLAIN " + b64("\x00app@contoso.com\x00s3cret"), "235"}}},
		{"PLAIN with authzid = authcid", [][2]string{{"AUTH PLAIN " + b64("app@contoso.com\x00app@contoso.com\x00s3cret"), "235"}}},
		{"PLAIN as another identity", [][2]string{{"AUTH PLAIN " + b64("ceo@contoso.com\x00app@contoso.com\x00s3cret"), "535 5.7.8"}}},
		{"PLAIN after empty challenge", [][2]string{{"AUTH PLAIN", "334 "}, {b64("\x00app@contoso.com\x00s3cret"), "235"}}},
		{"LOGIN initial response (smtplib)", [][2]string{{"AUTH LOGIN " + b64("app@contoso.com"), "334 " + b64("Password:")}, {b64("s3cret"), "235"}}},
		{"lower-case mechanism", [][2]string{{"auth plain " + b64("\x00app@contoso.com\x00s3cret"), "235"}}},
		{"unknown user", [][2]string{{"AUTH PLAIN " + b64("\x00nobody\x00s3cret"), "535 5.7.8"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, port)
			c.startTLS(cert.ClientConfig("relay.test"))
			c.expect("", "220")
			c.expect("EHLO x", "250")
			for _, s := range tc.steps {
				c.expect(s[0], s[1])
			}
		})
	}
}

func TestSessionAuthFailuresPerIP(t *testing.T) {
	cfg, cert := authConfig(t, "implicit")
	_, _, port := startServer(t, cfg)
	try := func(pass, want string) {
		c := dialFrom(t, "127.0.0.5", port)
		c.startTLS(cert.ClientConfig("relay.test"))
		c.expect("", "220")
		c.expect("EHLO x", "250")
		c.expect("AUTH PLAIN "+b64("\x00app@contoso.com\x00"+pass), want)
	}
	try("a", "535 5.7.8")
	try("b", "535 5.7.8")
	try("c", "421 4.7.0 Too many failed authentication attempts")
	// Counted per IP across connections: even the right password is refused now.
	try("s3cret", "421 4.7.0 Too many failed authentication attempts")
	// Another client IP is not affected.
	c := dialFrom(t, "127.0.0.6", port)
	c.startTLS(cert.ClientConfig("relay.test"))
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("AUTH PLAIN "+b64("\x00app@contoso.com\x00s3cret"), "235")
}

func TestSessionLegacyTLS(t *testing.T) {
	cert := certtest.NewWith(t, certtest.Options{RSA: true}, "relay.test")
	_, _, port := startServer(t, fmt.Sprintf(`
receive_connectors:
  - name: Old devices
    bindings: [127.0.0.1:PORT]
    remote_ip_ranges: [127.0.0.1]
    permissions: [anonymous]
    tls: {mode: starttls, certificate: %s, key: %s, min_version: "1.0"}
`, cert.CertFile, cert.KeyFile))
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("STARTTLS", "220")
	cfg := cert.ClientConfig("relay.test")
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
	cfg.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}
	if st := c.startTLS(cfg); st.Version != tls.VersionTLS10 {
		t.Errorf("negotiated %x, want TLS 1.0", st.Version)
	}
	c.expect("EHLO x", "250")
}

func TestSessionShutdown(t *testing.T) {
	srv, spool, port := startServer(t, anonConfig)
	idle := dial(t, port)
	idle.expect("", "220")
	busy := dial(t, port)
	busy.expect("", "220")
	busy.expect("EHLO x", "250")
	busy.expect("MAIL FROM:<a@fabrikam.example>", "250")
	busy.expect("RCPT TO:<b@contoso.com>", "250")
	busy.expect("DATA", "354")
	busy.send("Subject: in flight\r\n\r\nfirst half\r\n")
	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	idle.expect("", "421 4.3.2 Service shutting down")
	busy.expect("second half\r\n.", "250 2.6.0")
	busy.expect("", "421 4.3.2")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(spool.all()); n != 1 {
		t.Fatalf("%d messages stored, want the one in flight", n)
	}
}

func TestApplyReload(t *testing.T) {
	srv, _, port := startServer(t, anonConfig)
	port2 := freePort(t)
	cfg2 := strings.ReplaceAll(anonConfig, "PORT", fmt.Sprint(port2))
	cfg2 = strings.Replace(cfg2, "hostname: relay.test", "hostname: reloaded.test", 1)
	cfg, err := configParse(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	c := dial(t, port2)
	c.expect("", "220 reloaded.test")
	waitFor(t, "the old port to close", func() bool {
		_, err := netDial(port)
		return err != nil
	})
}

// RFC 4954 §4: AUTH during a transaction gets 503. Otherwise a client
// could give MAIL FROM anonymously (checked as anonymous, so any outside
// address) and then authenticate to relay with it, past its send-as list.
func TestSessionAuthInTransaction(t *testing.T) {
	cfg, cert := authConfig(t, "implicit")
	cfg = strings.Replace(cfg, "auth_mechanisms: [PLAIN, LOGIN]", "auth_mechanisms: [PLAIN, LOGIN]\n    permissions: [anonymous]", 1)
	_, spool, port := startServer(t, cfg)
	c := dial(t, port)
	c.startTLS(cert.ClientConfig("relay.test"))
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<spoofed@fabrikam.example>", "250 2.1.0")
	c.expect("AUTH PLAIN "+b64("\x00app@contoso.com\x00s3cret"), "503 5.5.1 AUTH is not allowed during a mail transaction")
	c.expect("RCPT TO:<someone@fabrikam.example>", "550 5.7.54")
	c.expect("RSET", "250")
	c.expect("AUTH PLAIN "+b64("\x00app@contoso.com\x00s3cret"), "235")
	c.expect("MAIL FROM:<spoofed@fabrikam.example>", "550 5.7.60")
	if n := len(spool.all()); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// RFC 3207 §4.2: after STARTTLS the session is back in its initial state;
// a login made in the clear (possibly by someone in the path) is gone.
func TestSessionSTARTTLSForgetsAuth(t *testing.T) {
	cfg, cert := authConfig(t, "starttls")
	cfg = strings.Replace(cfg, "auth_mechanisms: [PLAIN, LOGIN]", "auth_mechanisms: [PLAIN, LOGIN]\n    require_tls_for_auth: false", 1)
	_, _, port := startServer(t, cfg)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("AUTH PLAIN "+b64("\x00app@contoso.com\x00s3cret"), "235")
	c.expect("STARTTLS", "220 2.0.0")
	c.startTLS(cert.ClientConfig("relay.test"))
	if ehlo := c.expect("EHLO x", "250"); !strings.Contains(ehlo, "AUTH PLAIN LOGIN") {
		t.Errorf("after TLS the EHLO must offer AUTH again:\n%s", ehlo)
	}
	c.expect("MAIL FROM:<app@contoso.com>", "530 5.7.57")
	c.expect("AUTH PLAIN "+b64("\x00app@contoso.com\x00s3cret"), "235")
	c.expect("MAIL FROM:<app@contoso.com>", "250")
}

// A message whose first line starts with white space has no header field
// there to continue: taken as a header, it would fold into the trace
// fields Sluice puts in front and let the client write into our Received.
func TestSessionLeadingFoldedLine(t *testing.T) {
	_, spool, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<a@fabrikam.example>", "250")
	c.expect("RCPT TO:<b@contoso.com>", "250")
	c.expect("DATA", "354")
	c.expect(" from evil.example ([192.0.2.1])\r\nMessage-ID: <1@x>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nx\r\n.", "250")
	body := spool.all()[0].body
	header, _, _ := strings.Cut(body, "\r\n\r\n")
	if strings.Contains(header, "evil.example") {
		t.Errorf("the client's first line continued a field Sluice added:\n%q", body)
	}
	if !strings.Contains(body, "\r\n\r\n from evil.example ([192.0.2.1])\r\nMessage-ID: <1@x>\r\n") {
		t.Errorf("the client's text was not kept as it came:\n%q", body)
	}
}

// RFC 5321 §4.5.1: RCPT TO:<Postmaster> without a domain is accepted from
// anyone and goes to the postmaster of the default (first) accepted
// domain; a relay without accepted domains says where to write instead.
func TestSessionPostmaster(t *testing.T) {
	_, spool, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<someone@fabrikam.example>", "250")
	c.expect("RCPT TO:<Postmaster>", "250 2.1.5")
	c.expect("DATA", "354")
	c.expect("Subject: hello\r\n\r\nx\r\n.", "250")
	if msgs := spool.all(); len(msgs) != 1 || len(msgs[0].env.Rcpts) != 1 || msgs[0].env.Rcpts[0].Addr != "postmaster@contoso.com" {
		t.Fatalf("stored %+v, want one message to postmaster@contoso.com", msgs)
	}

	_, _, port = startServer(t, strings.Replace(anonConfig, "accepted_domains: [{domain: contoso.com}]", "", 1))
	c = dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<someone@fabrikam.example>", "250")
	c.expect("RCPT TO:<postmaster>", "550 5.1.1 This relay has no accepted domain to deliver postmaster to")
}

// A reload that moves a binding on its port (0.0.0.0:25 to one
// address, or back) cannot listen on the new one while the old one
// listens: Apply closes the old one first. When the new config cannot
// be listened on for another reason, the old binding is listened on
// again and the old config stays.
func TestApplyMovesBindingOnItsPort(t *testing.T) {
	port := freePort(t)
	wildcard := strings.ReplaceAll(strings.Replace(anonConfig, "127.0.0.1:PORT", "0.0.0.0:PORT", 1), "PORT", fmt.Sprint(port))
	one := strings.ReplaceAll(anonConfig, "PORT", fmt.Sprint(port))
	cfgW, err := configParse(wildcard)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Spool: &memSpool{}, Log: testLogger(t)})
	if err := srv.Apply(cfgW); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	moved, err := configParse(strings.Replace(one, "hostname: relay.test", "hostname: moved.test", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(moved); err != nil {
		t.Fatalf("moving 0.0.0.0:%d to 127.0.0.1:%d: %v", port, port, err)
	}
	c := dial(t, port)
	c.expect("", "220 moved.test")

	back, err := configParse(strings.Replace(wildcard, "hostname: relay.test", "hostname: back.test", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(back); err != nil {
		t.Fatalf("moving 127.0.0.1:%d back to 0.0.0.0:%d: %v", port, port, err)
	}
	c = dial(t, port)
	c.expect("", "220 back.test")

	// The move again, with a second binding another program holds: the
	// reload fails, and the wildcard listens as before with its config.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().(*net.TCPAddr).Port
	failing, err := configParse(strings.Replace(strings.Replace(one, "hostname: relay.test", "hostname: failing.test", 1),
		fmt.Sprintf("[127.0.0.1:%d]", port), fmt.Sprintf("[127.0.0.1:%d, 127.0.0.1:%d]", port, busy), 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(failing); err == nil || !strings.Contains(err.Error(), fmt.Sprint(busy)) {
		t.Fatalf("Apply with a binding in use = %v, want it to name 127.0.0.1:%d", err, busy)
	}
	c = dial(t, port)
	c.expect("", "220 back.test")
}

// When a move's new bindings cannot be opened and an old binding that
// made way for them cannot be listened on again either (something else
// took its port meanwhile), the others are listened on again all the
// same, and Apply's error says which one no longer listens: a reload
// that says only "refused, the running configuration is kept" would
// hide that port 25 went deaf.
func TestApplyMoveReopenFails(t *testing.T) {
	if ln, err := net.Listen("tcp4", "127.0.0.2:0"); err != nil {
		t.Skipf("cannot listen on 127.0.0.2 (%v); the test needs a second loopback address, as Linux has", err)
	} else {
		ln.Close()
	}
	port := freePort(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().(*net.TCPAddr).Port
	conf := func(bindings string) *config.Config {
		cfg, err := configParse(strings.Replace(anonConfig, "[127.0.0.1:PORT]", bindings, 1))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	srv := New(Options{Spool: &memSpool{}, Log: testLogger(t)})
	if err := srv.Apply(conf(fmt.Sprintf("[127.0.0.1:%d, 127.0.0.2:%d]", port, port))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	lost := fmt.Sprintf("127.0.0.2:%d", port)
	listen := srv.listen
	srv.listen = func(ctx context.Context, network, addr string) (net.Listener, error) {
		if addr == lost {
			return nil, &net.OpError{Op: "listen", Net: network, Err: syscall.EADDRINUSE}
		}
		return listen(ctx, network, addr)
	}
	err = srv.Apply(conf(fmt.Sprintf("[0.0.0.0:%d, 127.0.0.1:%d]", port, busy)))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(busy)) || !strings.Contains(err.Error(), lost) {
		t.Errorf("Apply = %v; want it to name 127.0.0.1:%d, which is in use, and %s, which no longer listens", err, busy, lost)
	}
	c := dial(t, port)
	c.expect("", "220 relay.test")
}

// A binding that cannot be opened (another program has the port) fails
// Apply with a message naming the receive connector and the binding, so
// an admin with several connectors knows which one to fix; nothing else
// is opened.
func TestApplyBindFailureNamesConnector(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().(*net.TCPAddr).Port
	free := freePort(t)
	cfg, err := configParse(fmt.Sprintf(`
node: {hostname: relay.test}
receive_connectors:
  - name: Apps
    bindings: [127.0.0.1:%d]
    remote_ip_ranges: [127.0.0.1]
    permissions: [anonymous]
  - name: Printers
    bindings: [127.0.0.1:%d]
    remote_ip_ranges: [127.0.0.1]
    permissions: [anonymous]
`, free, busy))
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Spool: &memSpool{}, Log: testLogger(t)})
	err = srv.Apply(cfg)
	if err == nil {
		srv.Shutdown(context.Background())
		t.Fatal("Apply with a binding in use succeeded")
	}
	for _, want := range []string{`receive connector "Printers"`, fmt.Sprintf("127.0.0.1:%d", busy)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Apply says %q, want it to name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "Apps") {
		t.Errorf("Apply says %q, naming a connector whose binding is fine", err)
	}
	if c, err := netDial(free); err == nil {
		c.Close()
		t.Errorf("127.0.0.1:%d of the other connector was left open after the failed Apply", free)
	}
}

// A client that sends more recipients than the limit gets 452 4.5.3 for
// the rest and sends them in a second transaction (RFC 5321 §4.5.3.1.10);
// those 452s are not errors that close the session (Postfix's
// smtpd_recipient_overshoot_limit), or the message could never go out.
func TestSessionTooManyRcptsIsNotAnError(t *testing.T) {
	_, spool, port := startServer(t, anonConfig) // max_recipients: 3, max_errors: 8
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	var cmds strings.Builder
	cmds.WriteString("MAIL FROM:<a@fabrikam.example>\r\n")
	for i := 0; i < 13; i++ {
		fmt.Fprintf(&cmds, "RCPT TO:<u%d@contoso.com>\r\n", i)
	}
	cmds.WriteString("DATA\r\n")
	c.send(cmds.String())
	c.expect("", "250 2.1.0")
	for i := 0; i < 13; i++ {
		want := "250 2.1.5"
		if i >= 3 {
			want = "452 4.5.3 Too many recipients"
		}
		c.expect("", want)
	}
	c.expect("", "354")
	c.expect("Subject: many\r\n\r\nx\r\n.", "250 2.6.0")
	c.expect("MAIL FROM:<a@fabrikam.example>", "250")
	c.expect("RCPT TO:<u3@contoso.com>", "250")
	c.expect("DATA", "354")
	c.expect("Subject: many\r\n\r\nx\r\n.", "250 2.6.0")
	if n := len(spool.all()); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}
}

// Sessions are counted per connector and client while they run; once all
// have ended nothing is left of the counts, whatever connectors reloads
// came and went (Sluice runs for months).
func TestConnectionCountsForgotten(t *testing.T) {
	srv, _, port := startServer(t, anonConfig)
	for _, name := range []string{"Default", "Renamed", "Renamed again"} {
		cfg, err := configParse(strings.Replace(strings.ReplaceAll(anonConfig, "PORT", fmt.Sprint(port)), "name: Default", "name: "+name, 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		c := dial(t, port)
		c.expect("", "220")
		c.expect("QUIT", "221")
	}
	waitFor(t, "the sessions' counts to go", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.conns) == 0 && len(srv.sessions) == 0
	})
}

// AUTH data that is not what the mechanism defines is a client bug, told
// as such and not counted as a password guess: after more of them than
// max_auth_failures (3) the right password still works.
func TestSessionAuthMalformed(t *testing.T) {
	cfg, cert := authConfig(t, "implicit")
	_, _, port := startServer(t, cfg)
	c := dial(t, port)
	c.startTLS(cert.ClientConfig("relay.test"))
	c.expect("", "220")
	c.expect("EHLO x", "250")
	for _, data := range []string{b64("foo"), b64("app@contoso.com\x00s3cret"), "="} {
		c.expect("AUTH PLAIN "+data, "501 5.5.2 AUTH PLAIN data must be the base64 of authorization identity (may be empty), NUL, user name, NUL, password")
	}
	c.expect("AUTH PLAIN", "334 ")
	c.expect(b64("foo"), "501 5.5.2 AUTH PLAIN data must be")
	c.expect("AUTH PLAIN "+b64("\x00app@contoso.com\x00s3cret")+" extra",
		"501 5.5.4 Syntax error in parameters or arguments; AUTH takes a mechanism and at most one initial response, in base64 without spaces")
	c.expect("AUTH PLAIN "+b64("\x00app@contoso.com\x00s3cret"), "235 2.7.0")
}

func TestSessionExpn(t *testing.T) {
	_, _, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("EXPN staff", "252 2.0.0 Cannot EXPN mailing list, but will accept message and attempt delivery")
	c.expect("VRFY bob", "252 2.0.0 Cannot VRFY user")
}

func TestSessionLocalPartTooLong(t *testing.T) {
	_, _, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("MAIL FROM:<"+strings.Repeat("a", 65)+"@fabrikam.example>",
		"501 5.1.3 Invalid sender address: local part (before @) is over 64 octets, the most RFC 5321 allows; shorten it")
}

// HELP lists STARTTLS and AUTH only when the session offers them, as EHLO
// does.
func TestSessionHelpListsWhatIsOffered(t *testing.T) {
	_, _, port := startServer(t, anonConfig)
	c := dial(t, port)
	c.expect("", "220")
	if got, want := c.expect("HELP", "214"), "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY EXPN HELP"; got != want {
		t.Errorf("HELP on a connector without STARTTLS and AUTH: got %q, want %q", got, want)
	}
	cfg, cert := authConfig(t, "starttls")
	_, _, port = startServer(t, cfg)
	c = dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	if got := c.expect("HELP", "214"); !strings.HasSuffix(got, " HELP STARTTLS") {
		t.Errorf("before TLS HELP must list STARTTLS and not AUTH (TLS is required for it): %q", got)
	}
	c.expect("STARTTLS", "220")
	c.startTLS(cert.ClientConfig("relay.test"))
	c.expect("EHLO x", "250")
	if got := c.expect("HELP", "214"); !strings.HasSuffix(got, " HELP AUTH") {
		t.Errorf("after TLS HELP must list AUTH and not STARTTLS: %q", got)
	}
}
