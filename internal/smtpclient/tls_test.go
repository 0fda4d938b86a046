package smtpclient

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/smtptest"
	"github.com/sluice-relay/sluice/internal/testport"
)

func TestStartTLS(t *testing.T) {
	cert := certtest.New(t, "localhost")
	srv := smtptest.NewServer(t, smtptest.Options{TLS: cert, RequireTLS: true})
	c, _ := dial(t, srv.Addr())
	if !c.Supports("STARTTLS") || c.TLSState() != nil {
		t.Fatalf("before STARTTLS: Supports = %v, TLSState = %v", c.Supports("STARTTLS"), c.TLSState())
	}
	if err := c.StartTLS(context.Background(), cert.ClientConfig("localhost")); err != nil {
		t.Fatal(err)
	}
	if st := c.TLSState(); st == nil || !st.HandshakeComplete || st.PeerCertificates[0].DNSNames[0] != "localhost" {
		t.Fatalf("TLSState = %+v", st)
	}
	// RFC 3207 §4.2: EHLO again; the server no longer offers STARTTLS.
	if c.Supports("STARTTLS") || !c.Supports("PIPELINING") {
		t.Errorf("extensions after STARTTLS = %v", c.Extensions())
	}
	if _, err := c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(testBody)); err != nil {
		t.Fatal(err)
	}
	if m := srv.WaitMessages(t, 1)[0]; !m.TLS || m.Helo != "relay.contoso.example" {
		t.Errorf("message TLS = %v, helo %q", m.TLS, m.Helo)
	}
	if err := c.StartTLS(context.Background(), cert.ClientConfig("localhost")); err == nil {
		t.Error("second STARTTLS succeeded")
	}
}

// Without a ServerName the name dialled is verified, as tls.Dial does.
func TestStartTLSVerifiesDialledName(t *testing.T) {
	cert := certtest.New(t, "localhost")
	srv := smtptest.NewServer(t, smtptest.Options{TLS: cert})
	addr := strings.Replace(srv.Addr(), "127.0.0.1", "localhost", 1)
	c, _ := dial(t, addr)
	if err := c.StartTLS(context.Background(), &tls.Config{RootCAs: cert.Pool}); err != nil {
		t.Fatal(err)
	}
}

// A certificate from an unknown CA fails the handshake with the tls error
// wrapped, and closes the connection.
func TestStartTLSUntrusted(t *testing.T) {
	cert := certtest.New(t, "localhost")
	srv := smtptest.NewServer(t, smtptest.Options{TLS: cert})
	c, _ := dial(t, srv.Addr())
	err := c.StartTLS(context.Background(), &tls.Config{ServerName: "localhost"})
	var cv *tls.CertificateVerificationError
	if !errors.As(err, &cv) {
		t.Fatalf("StartTLS = %v, want a *tls.CertificateVerificationError", err)
	}
	if err := c.Noop(context.Background()); err == nil {
		t.Error("connection usable after a failed handshake")
	}
}

func TestStartTLSNotOffered(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	c, _ := dial(t, srv.Addr())
	err := c.StartTLS(context.Background(), &tls.Config{ServerName: "localhost"})
	var se *Error
	if !errors.As(err, &se) || err.Error() != "STARTTLS: 502 5.5.1 Command not implemented" {
		t.Fatalf("StartTLS = %v", err)
	}
	if err := c.Noop(context.Background()); err != nil {
		t.Errorf("connection not usable after STARTTLS was refused: %v", err)
	}
}

// A reply pipelined behind the 220 to STARTTLS came in the clear; the
// client refuses to go on rather than read it after the handshake.
func TestStartTLSInjection(t *testing.T) {
	addr := rawServer(t, "220 mitm ESMTP", func(line string) string {
		switch line {
		case "EHLO relay.contoso.example":
			return "250-mitm\n250 STARTTLS"
		case "STARTTLS":
			return "220 2.0.0 go ahead\n250 2.0.0 injected"
		}
		return "500 5.5.2 what?"
	})
	c, _ := dial(t, addr)
	err := c.StartTLS(context.Background(), &tls.Config{ServerName: "localhost"})
	if err == nil || !strings.Contains(err.Error(), "sent data before the TLS handshake") {
		t.Fatalf("StartTLS = %v", err)
	}
}

// Port 465: TLS first, then the greeting.
func TestDialTLS(t *testing.T) {
	cert := certtest.New(t, "localhost")
	srv := smtptest.NewServer(t, smtptest.Options{TLS: cert, ImplicitTLS: true})
	o, _ := testOptions(t)
	addr := strings.Replace(srv.Addr(), "127.0.0.1", "localhost", 1)
	c, err := DialTLS(context.Background(), addr, &tls.Config{RootCAs: cert.Pool}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.TLSState() == nil || c.Greeting().Code != 220 {
		t.Fatalf("TLSState = %v, greeting %v", c.TLSState(), c.Greeting())
	}
	if err := c.Hello(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.Supports("STARTTLS") {
		t.Error("STARTTLS offered on an implicit TLS connection")
	}
	if _, err := c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(testBody)); err != nil {
		t.Fatal(err)
	}
	if m := srv.WaitMessages(t, 1)[0]; !m.TLS {
		t.Error("message not received over TLS")
	}
}

// The transcript starts with the connection and its local address, for
// the protocol log's local column: also before an implicit TLS handshake
// that fails, as the connection was made. A connection that could not be
// made has no transcript.
func TestTranscriptStartsWithConnection(t *testing.T) {
	cert := certtest.New(t, "localhost")
	plain := smtptest.NewServer(t, smtptest.Options{})
	implicit := smtptest.NewServer(t, smtptest.Options{TLS: cert, ImplicitTLS: true})
	for _, tc := range []struct {
		name string
		dial func(o Options) (*Client, error)
		ok   bool
	}{
		{"plain", func(o Options) (*Client, error) { return Dial(context.Background(), plain.Addr(), o) }, true},
		{"implicit TLS", func(o Options) (*Client, error) {
			return DialTLS(context.Background(), implicit.Addr(), cert.ClientConfig("localhost"), o)
		}, true},
		{"implicit TLS, untrusted", func(o Options) (*Client, error) {
			return DialTLS(context.Background(), implicit.Addr(), &tls.Config{ServerName: "localhost"}, o)
		}, false},
		{"refused", func(o Options) (*Client, error) { return Dial(context.Background(), testport.Addr(t), o) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, tr := testOptions(t)
			c, err := tc.dial(o)
			if (err == nil) != tc.ok {
				t.Fatalf("dial: %v", err)
			}
			first, _, _ := strings.Cut(tr.String(), "\n")
			switch {
			case c != nil:
				defer c.Close()
				if want := "+ " + c.LocalAddr().String(); first != want {
					t.Errorf("transcript starts %q; want %q", first, want)
				}
			case tc.name == "refused":
				if first != "" {
					t.Errorf("transcript of a connection never made: %q", tr.String())
				}
			default:
				if local, ok := strings.CutPrefix(first, "+ "); !ok || !strings.HasPrefix(local, "127.0.0.1:") {
					t.Errorf("transcript starts %q; want + and the local address", first)
				}
			}
		})
	}
}
