package probe_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/probe"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

const secret = "Sup3r-secret-pw"

func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

func transcript(r *probe.Report) string {
	var b strings.Builder
	for _, l := range r.Transcript {
		b.WriteString(l.Dir + " " + l.Text + "\n")
	}
	return b.String()
}

func TestStartTLSAndLogin(t *testing.T) {
	cert := certtest.New(t, "localhost")
	srv := smtptest.NewServer(t, smtptest.Options{TLS: cert, Auth: []string{"LOGIN", "PLAIN"}, RequireTLS: true,
		Users: map[string]string{"sp-farm@contoso.com": secret}})
	for _, mech := range []string{"LOGIN", "PLAIN"} {
		r := probe.Run(context.Background(), probe.Options{Addr: "localhost:" + portOf(srv.Addr()), StartTLS: true, CAFile: cert.CAFile,
			User: "sp-farm@contoso.com", Password: secret, Mechanism: mech, Timeout: 10 * time.Second})
		if !r.OK() || r.Auth == nil || !r.Auth.OK || !strings.HasPrefix(r.Auth.Reply, "235") {
			t.Fatalf("%s: report %+v", mech, r)
		}
		if r.TLS == nil || !r.TLS.Verified || len(r.TLS.Chain) == 0 || r.TLS.Chain[0].SANs[0] != "localhost" {
			t.Errorf("%s: TLS %+v", mech, r.TLS)
		}
		if !r.StartTLSOffer || len(r.EHLOAfterTLS) == 0 || strings.Join(r.AuthOffered, " ") != "LOGIN PLAIN" {
			t.Errorf("%s: capabilities before %v after %v auth %v", mech, r.EHLO, r.EHLOAfterTLS, r.AuthOffered)
		}
		tr := transcript(r)
		if strings.Contains(tr, secret) || !strings.Contains(tr, "***") {
			t.Errorf("%s: the transcript must mask the password:\n%s", mech, tr)
		}
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), secret) {
			t.Errorf("%s: the JSON report contains the password", mech)
		}
	}
}

func TestWrongPasswordAndMicrosoftAdvice(t *testing.T) {
	cert := certtest.New(t, "localhost")
	srv := smtptest.NewServer(t, smtptest.Options{TLS: cert, Auth: []string{"LOGIN"}, Users: map[string]string{"a@contoso.com": secret}})
	r := probe.Run(context.Background(), probe.Options{Addr: srv.Addr(), StartTLS: true, User: "a@contoso.com", Password: "wrong", Timeout: 10 * time.Second})
	if r.OK() || r.Auth == nil || r.Auth.OK || !strings.HasPrefix(r.Auth.Reply, "535") {
		t.Fatalf("wrong password: %+v", r.Auth)
	}

	ms := smtptest.NewServer(t, smtptest.Options{TLS: cert, Auth: []string{"LOGIN", "XOAUTH2"}, Users: map[string]string{"a@contoso.com": secret},
		AuthReply: "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [DB8PR04CA0001.eurprd04.prod.outlook.com]"})
	r = probe.Run(context.Background(), probe.Options{Addr: ms.Addr(), StartTLS: true, User: "a@contoso.com", Password: secret, Mechanism: "LOGIN", Timeout: 10 * time.Second})
	if r.OK() || !strings.Contains(strings.Join(r.Advice, "\n"), "OAuth2") {
		t.Fatalf("Microsoft's basic-auth refusal: auth %+v advice %v", r.Auth, r.Advice)
	}
}

func TestCertificateProblemsAreReportedNotFatal(t *testing.T) {
	wrong := certtest.New(t, "mail.other.test")
	srv := smtptest.NewServer(t, smtptest.Options{TLS: wrong, Auth: []string{"PLAIN"}})
	r := probe.Run(context.Background(), probe.Options{Addr: "localhost:" + portOf(srv.Addr()), StartTLS: true, CAFile: wrong.CAFile, Timeout: 10 * time.Second})
	if !r.OK() || r.TLS == nil || r.TLS.Verified || !strings.Contains(r.TLS.VerifyError, "localhost") {
		t.Fatalf("wrong name: %+v", r.TLS)
	}
	if len(r.AuthOffered) != 1 || !strings.Contains(strings.Join(r.Advice, "\n"), "does not verify") {
		t.Errorf("the probe should go on after a bad certificate and advise: auth %v advice %v", r.AuthOffered, r.Advice)
	}
	// Unknown CA (no --ca-file).
	r = probe.Run(context.Background(), probe.Options{Addr: "localhost:" + portOf(srv.Addr()), StartTLS: true, ServerName: "mail.other.test", Timeout: 10 * time.Second})
	if r.TLS == nil || r.TLS.Verified || !strings.Contains(r.TLS.VerifyError, "unknown authority") {
		t.Fatalf("unknown CA: %+v", r.TLS)
	}
}

func TestImplicitTLSAndAdviceBeforeTLS(t *testing.T) {
	cert := certtest.New(t, "localhost")
	tlsSrv := smtptest.NewServer(t, smtptest.Options{TLS: cert, ImplicitTLS: true})
	r := probe.Run(context.Background(), probe.Options{Addr: "localhost:" + portOf(tlsSrv.Addr()), ImplicitTLS: true, CAFile: cert.CAFile, Timeout: 10 * time.Second})
	if !r.OK() || r.TLS == nil || !r.TLS.Verified || r.Banner == "" {
		t.Fatalf("implicit TLS: %+v", r)
	}

	// (AUTH hidden until STARTTLS, and the advice about it, is tested
	// against Sluice's own connector in test/e2e: smtptest always shows AUTH.)

	// Nothing listening.
	r = probe.Run(context.Background(), probe.Options{Addr: "127.0.0.1:1", Timeout: 2 * time.Second})
	if r.OK() || !strings.Contains(r.Error, "cannot connect") {
		t.Fatalf("closed port: %+v", r)
	}
}

// Microsoft 365 answers 5.7.139 for three different problems; each needs
// its own advice. SMTP AUTH turned off must not send the admin to OAuth2
// (which needs SMTP AUTH on too), and wrong credentials are not a
// basic-auth shutdown.
func TestMicrosoft5_7_139Advice(t *testing.T) {
	cert := certtest.New(t, "localhost")
	for _, c := range []struct{ reply, want, not string }{
		{reply: "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [AM0PR10CA0001.EURPRD10.PROD.OUTLOOK.COM]",
			want: "SmtpClientAuthenticationDisabled", not: "use OAuth2"},
		{reply: "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect. [AM0PR10CA0001.EURPRD10.PROD.OUTLOOK.COM]",
			want: "refused the user name or password", not: "basic authentication turned off"},
		{reply: "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [DB8PR04CA0001.eurprd04.prod.outlook.com]",
			want: "OAuth2"},
	} {
		ms := smtptest.NewServer(t, smtptest.Options{TLS: cert, Auth: []string{"LOGIN"}, Users: map[string]string{"a@contoso.com": secret}, AuthReply: c.reply})
		r := probe.Run(context.Background(), probe.Options{Addr: ms.Addr(), StartTLS: true, User: "a@contoso.com", Password: secret, Mechanism: "LOGIN", Timeout: 10 * time.Second})
		advice := strings.Join(r.Advice, "\n")
		if r.OK() || !strings.Contains(advice, c.want) || c.not != "" && strings.Contains(advice, c.not) {
			t.Errorf("reply %q: advice %q, want it to say %q and not %q", c.reply, advice, c.want, c.not)
		}
	}
}

// rawServer answers one connection with script's lines in turn, one
// reply per line the client sends, after the greeting (script[0]).
func rawServer(t *testing.T, script ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		rd := bufio.NewReader(c)
		for i, s := range script {
			if i > 0 {
				if _, err := rd.ReadString('\n'); err != nil {
					return
				}
			}
			if _, err := io.WriteString(c, s); err != nil {
				return
			}
		}
		io.Copy(io.Discard, rd)
	}()
	return ln.Addr().String()
}

// A device whose EHLO reply has an empty capability line is probed like
// any other; the probe must not crash on it.
func TestEmptyCapabilityLine(t *testing.T) {
	addr := rawServer(t, "220 printer ESMTP\r\n", "250-printer\r\n250-\r\n250 AUTH LOGIN\r\n", "221 bye\r\n")
	r := probe.Run(context.Background(), probe.Options{Addr: addr, Timeout: 10 * time.Second})
	if !r.OK() || strings.Join(r.AuthOffered, " ") != "LOGIN" {
		t.Fatalf("report %+v", r)
	}
}

// A certificate that expired an hour ago has expired; it does not
// "expire in 0 days".
func TestJustExpiredCertificate(t *testing.T) {
	cert := certtest.NewWith(t, certtest.Options{NotAfter: time.Now().Add(-30 * time.Minute)}, "localhost")
	srv := smtptest.NewServer(t, smtptest.Options{TLS: cert})
	r := probe.Run(context.Background(), probe.Options{Addr: "localhost:" + portOf(srv.Addr()), StartTLS: true, CAFile: cert.CAFile, Timeout: 10 * time.Second})
	advice := strings.Join(r.Advice, "\n")
	if r.TLS == nil || r.TLS.Chain[0].DaysLeft >= 0 || !strings.Contains(advice, "the certificate has expired") || strings.Contains(advice, "expires in") {
		t.Fatalf("expired 30 minutes ago: TLS %+v advice %q", r.TLS, advice)
	}
}

// A 530 to AUTH inside TLS is not "send STARTTLS first", and a --ca-file
// that cannot be read is named as such, not as a certificate that does
// not verify.
func TestAdviceAfterTLSAndUnreadableCAFile(t *testing.T) {
	cert := certtest.New(t, "localhost")
	srv := smtptest.NewServer(t, smtptest.Options{TLS: cert, Auth: []string{"LOGIN"}, Users: map[string]string{"a@contoso.com": secret},
		AuthReply: "530 5.7.0 Client certificate required"})
	r := probe.Run(context.Background(), probe.Options{Addr: "localhost:" + portOf(srv.Addr()), StartTLS: true, CAFile: cert.CAFile,
		User: "a@contoso.com", Password: secret, Mechanism: "LOGIN", Timeout: 10 * time.Second})
	advice := strings.Join(r.Advice, "\n")
	if r.Auth == nil || r.Auth.OK || strings.Contains(advice, "--starttls") || !strings.Contains(advice, "although the session is encrypted") {
		t.Errorf("530 to AUTH after STARTTLS: auth %+v advice %q", r.Auth, advice)
	}

	r = probe.Run(context.Background(), probe.Options{Addr: "localhost:" + portOf(srv.Addr()), StartTLS: true, CAFile: "/nonexistent/ca.pem", Timeout: 10 * time.Second})
	if r.TLS == nil || !strings.Contains(r.TLS.VerifyError, "cannot read --ca-file") {
		t.Errorf("unreadable --ca-file: TLS %+v", r.TLS)
	}
}

// A server whose refusal quotes the credentials it got must not get them
// printed by sluice test connect (its output is pasted into tickets).
func TestRefusalQuotingCredentialsIsMasked(t *testing.T) {
	plain := base64.StdEncoding.EncodeToString([]byte("\x00a@contoso.com\x00" + secret))
	pass := base64.StdEncoding.EncodeToString([]byte(secret))
	for _, tc := range []struct {
		mech   string
		script []string
	}{
		{"PLAIN", []string{"250-echo\r\n250 AUTH PLAIN LOGIN\r\n", "535 5.7.8 authentication failed for " + plain + " (" + secret + ")\r\n"}},
		{"LOGIN", []string{"250-echo\r\n250 AUTH PLAIN LOGIN\r\n", "334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n", "535 5.7.8 bad password " + pass + "\r\n"}},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			addr := rawServer(t, append(append([]string{"220 echo ESMTP\r\n"}, tc.script...), "221 bye\r\n")...)
			r := probe.Run(context.Background(), probe.Options{Addr: addr, User: "a@contoso.com", Password: secret, Mechanism: tc.mech, Timeout: 10 * time.Second})
			if r.Auth == nil || !strings.HasPrefix(r.Auth.Reply, "535 5.7.8") {
				t.Fatalf("auth: %+v (%s)", r.Auth, r.Error)
			}
			b, _ := json.Marshal(r)
			for _, s := range []string{secret, plain, pass} {
				if strings.Contains(string(b), s) || strings.Contains(transcript(r), s) {
					t.Errorf("the report shows %q:\n%s\n%s", s, b, transcript(r))
				}
			}
		})
	}
}

// A TLS mistake or a name that does not resolve got no advice: --tls
// against a STARTTLS port said "first record does not look like a TLS
// handshake", no --tls against a port 465 waited the whole timeout for
// a greeting and said "EOF", and a DNS failure was bare.
func TestAdviceForConnectionMistakes(t *testing.T) {
	cert := certtest.New(t, "localhost")
	plain := smtptest.NewServer(t, smtptest.Options{TLS: cert})
	implicit := smtptest.NewServer(t, smtptest.Options{TLS: cert, ImplicitTLS: true})
	cases := []struct {
		name   string
		o      probe.Options
		advice string
	}{
		{"--tls against a STARTTLS port", probe.Options{Addr: plain.Addr(), ImplicitTLS: true}, `the server speaks plain SMTP first (it began "220 s…"), not TLS: run again with --starttls instead of --tls`},
		{"no --tls against an implicit TLS port", probe.Options{Addr: implicit.Addr()}, "the server waits for a TLS handshake before its greeting (port 465 style): run again with --tls"},
		{"a name that does not exist", probe.Options{Addr: "nosuch.invalid:25"}, "the name nosuch.invalid "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Timeout = 20 * time.Second
			r := probe.Run(context.Background(), tc.o)
			if r.OK() || !strings.Contains(strings.Join(r.Advice, "\n"), tc.advice) {
				t.Fatalf("error %q, advice %q; want advice with %q\n%s", r.Error, r.Advice, tc.advice, transcript(r))
			}
		})
	}
}
