package smtpd

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
)

// withSubmission adds a STARTTLS connector on a port of its own to
// authConfig's config, and returns the config and that port.
func withSubmission(t *testing.T, cfg string) (string, int) {
	t.Helper()
	i := strings.Index(cfg, "    tls: {mode: implicit, ")
	if i < 0 {
		t.Fatal("not an implicit TLS config")
	}
	tlsLine, _, _ := strings.Cut(cfg[i:], "\n")
	p := freePort(t)
	sub := fmt.Sprintf("  - name: Submission\n    bindings: [127.0.0.1:%d]\n    remote_ip_ranges: [127.0.0.0/8]\n    auth_mechanisms: [LOGIN]\n%s\n",
		p, strings.Replace(tlsLine, "mode: implicit", "mode: starttls", 1))
	return strings.Replace(cfg, "users:\n", sub+"users:\n", 1), p
}

// A client speaking plain SMTP to an implicit TLS port gets a plain-text
// reply that says what to change, and the log says it too; it used to see
// the connection close with nothing sent.
func TestImplicitTLSPlainTextClient(t *testing.T) {
	cfg, _ := authConfig(t, "implicit")
	cfg, sub := withSubmission(t, cfg)
	port, log, _ := startServerLogged(t, cfg)
	c := dial(t, port)
	c.expect("EHLO x", fmt.Sprintf("421 4.7.0 This port expects TLS from the first byte (implicit TLS, as on port 465); "+
		"connect with TLS, or use STARTTLS on a port that offers it; STARTTLS is offered on port %d", sub))
	if got := c.reply(); got != "EOF" && !strings.Contains(got, "reset") {
		t.Errorf("connection not closed: %q", got)
	}
	waitFor(t, "the advice logged", func() bool {
		return strings.Contains(log.String(), `msg="TLS handshake failed"`) &&
			strings.Contains(log.String(), fmt.Sprintf(`fix="the client sent plain text to a port that expects TLS from the first byte (implicit TLS, as on port 465): set it to use SSL/TLS, or point it at port %d"`, sub))
	})
}

// A client that waits for a plain-text banner on an implicit TLS port
// sends nothing: it gets the same reply once the wait is over, and the
// log says what it probably expects.
func TestImplicitTLSSilentClient(t *testing.T) {
	cfg, _ := authConfig(t, "implicit")
	cfg = strings.Replace(cfg, "max_auth_failures: 3}", "max_auth_failures: 3, idle_timeout: 1s}", 1)
	port, log, _ := startServerLogged(t, cfg)
	c := dial(t, port)
	want := "421 4.7.0 This port expects TLS from the first byte (implicit TLS, as on port 465); connect with TLS, or use STARTTLS on a port that offers it"
	if got := c.reply(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	waitFor(t, "the advice logged", func() bool {
		return strings.Contains(log.String(), `fix="the client sent nothing in 1s: it probably waits for a plain-text banner (STARTTLS or no TLS)`)
	})
}

// A device that speaks only TLS 1.0 or 1.1 fails the handshake; the log
// names the connector's minimum and what such devices need.
func TestTLSVersionBelowMinimumIsExplained(t *testing.T) {
	for _, mode := range []string{"implicit", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			cfg, cert := authConfig(t, mode)
			port, log, _ := startServerLogged(t, cfg)
			c := dial(t, port)
			if mode == "starttls" {
				c.expect("", "220")
				c.expect("STARTTLS", "220 2.0.0")
			}
			old := cert.ClientConfig("relay.test")
			old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			if err := tls.Client(c.conn, old).Handshake(); err == nil {
				t.Fatal("a TLS 1.1 handshake succeeded on a connector with min_version 1.2")
			}
			waitFor(t, "the advice logged", func() bool {
				return strings.Contains(log.String(), `fix="the client offers only TLS versions below this connector's tls.min_version 1.2; `+
					`old devices that speak only TLS 1.0 or 1.1 need a receive connector of their own, scoped to their IP, with tls.min_version: \"1.0\""`)
			})
		})
	}
}
