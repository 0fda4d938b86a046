package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
)

// The user every AUTH test logs in as. Its password is testPassword, hashed
// once in TestMain.
const (
	testUser  = "app@contoso.com"
	testAlias = "noreply@contoso.com" // on the user's send_as list
)

// submissionConfig is seed 002's port 587: AUTH required (no permissions
// without it), PLAIN and LOGIN offered, TLS as mode says.
func submissionConfig(addr, mode string, cert *certtest.Cert) string {
	return fmt.Sprintf(`accepted_domains:
  - domain: contoso.com
receive_connectors:
  - name: Client submission
    bindings: [%s]
    remote_ip_ranges: [127.0.0.0/8]
    tls: {mode: %s, certificate: %s, key: %s}
    auth_mechanisms: [PLAIN, LOGIN]
    permissions: []
    limits: {tarpit: 0s}
users:
  - name: %s
    password_hash: "%s"
    send_as: [%s, %s]
`, addr, mode, cert.CertFile, cert.KeyFile, testUser, testHash, testUser, testAlias)
}

// wantAuthenticated checks the Received field Sluice put on a message that
// came in over TLS from the test user.
func wantAuthenticated(t *testing.T, m *dropped) {
	t.Helper()
	received, _ := splitTrace(t, m.msg)
	for _, want := range []string{"with ESMTPSA id", `authenticated as "` + testUser + `"`, "; TLS1."} {
		if !bytes.Contains(received, []byte(want)) {
			t.Errorf("Received field lacks %q:\n%s", want, received)
		}
	}
}

// authCase is one client run against an AUTH-requiring connector.
type authCase struct {
	name     string
	args     []string // swaks: arguments after the common ones; smtplib: mechanism, user, password
	want     []string // in the client's output, in any order
	rcpt     string   // the message must arrive for this recipient; "" = must not
	clientOK bool     // the client's exit status is 0
}

// TestAuthStartTLSSwaks: swaks logs in with LOGIN and PLAIN after
// STARTTLS on a connector that requires AUTH (seed 002's port 587).
func TestAuthStartTLSSwaks(t *testing.T) {
	t.Parallel()
	skipWithoutSwaksTLS(t)
	cert := certtest.New(t, "localhost", "127.0.0.1")
	addr := freeAddr(t)
	s := startSluice(t, submissionConfig(addr, "starttls", cert), listen(addr))

	tls := []string{"--tls", "--tls-verify", "--tls-ca-path", cert.CAFile}
	login := func(mech, user, pw string) []string {
		return []string{"--auth", mech, "--auth-user", user, "--auth-password", pw}
	}
	cases := []authCase{
		{name: "AUTH LOGIN", args: login("LOGIN", testUser, testPassword), rcpt: "login@fabrikam.example",
			want: []string{"334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 2.7.0 Authentication successful", "250 2.6.0"}, clientOK: true},
		{name: "AUTH PLAIN", args: login("PLAIN", testUser, testPassword), rcpt: "plain@fabrikam.example",
			want: []string{"235 2.7.0 Authentication successful", "250 2.6.0"}, clientOK: true},
		{name: "send as an address on send_as", args: append(login("LOGIN", testUser, testPassword), "--from", testAlias),
			rcpt: "alias@fabrikam.example", want: []string{"235 2.7.0", "250 2.1.0", "250 2.6.0"}, clientOK: true},
		{name: "no AUTH", args: nil,
			want: []string{"530 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM"}},
		{name: "wrong password", args: login("LOGIN", testUser, "not the password"),
			want: []string{"535 5.7.8 Authentication credentials invalid"}},
		{name: "unknown user", args: login("PLAIN", "nobody@contoso.com", testPassword),
			want: []string{"535 5.7.8 Authentication credentials invalid"}},
		{name: "send as someone else", args: append(login("PLAIN", testUser, testPassword), "--from", "ceo@contoso.com"),
			want: []string{"235 2.7.0", "550 5.7.60 Client does not have permissions to send as this sender"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rcpt := tc.rcpt
			if rcpt == "" {
				rcpt = strings.ReplaceAll(tc.name, " ", "-") + "@fabrikam.example"
			}
			args := append([]string{"--from", testUser, "--to", rcpt}, tls...)
			r := swaks(t, addr, append(args, tc.args...)...)
			r.wantExit(t, tc.clientOK)
			r.want(t, tc.want...)
			if tc.rcpt != "" && !t.Failed() {
				wantAuthenticated(t, waitMessage(t, s.dropDir, tc.rcpt))
			}
		})
	}
}

// smtplibAuth logs in with Python's smtplib over implicit TLS ("ssl") or
// STARTTLS, with the mechanism forced as the test says, and sends one
// message. Debug output (stderr) shows the exact AUTH commands smtplib sent.
//
//	argv: dir mode host port cafile mech user password from rcpt
const smtplibAuth = `
import smtplib, ssl, sys
_, _, mode, host, port, ca, mech, user, pw, sender, rcpt = sys.argv
ctx = ssl.create_default_context(cafile=ca)
if mode == "ssl":
    s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=30)
else:
    s = smtplib.SMTP(host, int(port), timeout=30)
    s.ehlo()
    print("STARTTLS", s.starttls(context=ctx)[0])
s.set_debuglevel(1)
s.ehlo()
print("EHLO AUTH", s.esmtp_features.get("auth", "(none)").strip())
s.user, s.password = user, pw
try:
    if mech == "login()":
        code, resp = s.login(user, pw)
    elif mech == "LOGIN":
        code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=True)
    elif mech == "LOGIN-no-initial":
        # What .NET SmtpClient does: wait for the Username: challenge.
        code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    elif mech == "PLAIN":
        code, resp = s.auth("PLAIN", s.auth_plain)
    print("AUTH", code, resp.decode())
except smtplib.SMTPAuthenticationError as e:
    print("AUTH", e.smtp_code, e.smtp_error.decode())
    s.quit()
    sys.exit(0)
msg = "From: <%s>\r\nTo: <%s>\r\nSubject: smtplib %s %s\r\n\r\nhello\r\n" % (sender, rcpt, mode, mech)
print("REFUSED", s.sendmail(sender, [rcpt], msg))
s.quit()
`

// runSmtplibAuth runs smtplibAuth for each case against addr.
func runSmtplibAuth(t *testing.T, s *sluice, addr, mode string, cert *certtest.Cert, cases []authCase) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mech, user, pw := tc.args[0], tc.args[1], tc.args[2]
			rcpt := tc.rcpt
			if rcpt == "" {
				rcpt = "nobody@fabrikam.example"
			}
			r := python(t, smtplibAuth, mode, host, port, cert.CAFile, mech, user, pw, testUser, rcpt)
			r.wantExit(t, tc.clientOK)
			r.want(t, tc.want...)
			if tc.rcpt != "" && !t.Failed() {
				wantAuthenticated(t, waitMessage(t, s.dropDir, tc.rcpt))
			}
		})
	}
}

// TestAuthImplicitTLS: port 465 style, TLS from the first byte, with swaks
// --tls-on-connect and smtplib.SMTP_SSL, LOGIN with and without an initial
// response and PLAIN.
func TestAuthImplicitTLS(t *testing.T) {
	t.Parallel()
	cert := certtest.New(t, "localhost", "127.0.0.1")
	addr := freeAddr(t)
	s := startSluice(t, submissionConfig(addr, "implicit", cert), endpoint{addr: addr, implicitTLS: true})

	t.Run("swaks", func(t *testing.T) {
		skipWithoutSwaksTLS(t)
		for _, mech := range []string{"LOGIN", "PLAIN"} {
			t.Run(mech, func(t *testing.T) {
				rcpt := "swaks-tlsc-" + strings.ToLower(mech) + "@fabrikam.example"
				r := swaks(t, addr, "--tls-on-connect", "--tls-verify", "--tls-ca-path", cert.CAFile,
					"--auth", mech, "--auth-user", testUser, "--auth-password", testPassword,
					"--from", testUser, "--to", rcpt)
				r.wantExit(t, true)
				r.want(t, "235 2.7.0 Authentication successful", "250 2.6.0")
				if t.Failed() {
					return
				}
				wantAuthenticated(t, waitMessage(t, s.dropDir, rcpt))
			})
		}
	})
	t.Run("smtplib", func(t *testing.T) {
		runSmtplibAuth(t, s, addr, "ssl", cert, []authCase{
			{name: "LOGIN with initial response", args: []string{"LOGIN", testUser, testPassword},
				rcpt: "py-ssl-login@fabrikam.example", clientOK: true,
				want: []string{"send: 'AUTH LOGIN YXBw", "334 UGFzc3dvcmQ6", "AUTH 235 2.7.0", "REFUSED {}"}},
			{name: "LOGIN waiting for Username challenge", args: []string{"LOGIN-no-initial", testUser, testPassword},
				rcpt: "py-ssl-login-challenge@fabrikam.example", clientOK: true,
				want: []string{`send: 'AUTH LOGIN\r\n'`, "334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "AUTH 235 2.7.0", "REFUSED {}"}},
			{name: "PLAIN", args: []string{"PLAIN", testUser, testPassword},
				rcpt: "py-ssl-plain@fabrikam.example", clientOK: true,
				want: []string{"send: 'AUTH PLAIN ", "AUTH 235 2.7.0", "REFUSED {}"}},
			{name: "LOGIN wrong password", args: []string{"LOGIN-no-initial", testUser, "wrong"},
				clientOK: true, want: []string{"AUTH 535 5.7.8 Authentication credentials invalid"}},
		})
	})
}

// TestAuthStartTLSSmtplib: smtplib's starttls() then login() (which picks
// PLAIN, as PRODUCT.md's client table says), and LOGIN forced both ways.
func TestAuthStartTLSSmtplib(t *testing.T) {
	t.Parallel()
	cert := certtest.New(t, "localhost", "127.0.0.1")
	addr := freeAddr(t)
	s := startSluice(t, submissionConfig(addr, "starttls", cert), listen(addr))
	runSmtplibAuth(t, s, addr, "starttls", cert, []authCase{
		{name: "login() picks PLAIN", args: []string{"login()", testUser, testPassword},
			rcpt: "py-starttls-login@fabrikam.example", clientOK: true,
			want: []string{"STARTTLS 220", "EHLO AUTH PLAIN LOGIN", "send: 'AUTH PLAIN ", "AUTH 235 2.7.0", "REFUSED {}"}},
		{name: "LOGIN with initial response", args: []string{"LOGIN", testUser, testPassword},
			rcpt: "py-starttls-login-ir@fabrikam.example", clientOK: true,
			want: []string{"send: 'AUTH LOGIN YXBw", "AUTH 235 2.7.0", "REFUSED {}"}},
		{name: "LOGIN waiting for Username challenge", args: []string{"LOGIN-no-initial", testUser, testPassword},
			rcpt: "py-starttls-login-challenge@fabrikam.example", clientOK: true,
			want: []string{`send: 'AUTH LOGIN\r\n'`, "334 VXNlcm5hbWU6", "AUTH 235 2.7.0", "REFUSED {}"}},
		{name: "PLAIN wrong password", args: []string{"PLAIN", testUser, "wrong"},
			clientOK: true, want: []string{"AUTH 535 5.7.8 Authentication credentials invalid"}},
	})
}

// smtplibAuthBeforeTLS looks at EHLO before and after STARTTLS and tries
// AUTH where it must be refused.
//
//	argv: dir host port cafile
const smtplibAuthBeforeTLS = `
import base64, smtplib, ssl, sys
_, _, host, port, ca = sys.argv
s = smtplib.SMTP(host, int(port), timeout=30)
s.ehlo()
print("PLAIN-TEXT EHLO AUTH", s.esmtp_features.get("auth", "(none)").strip())
print("PLAIN-TEXT EHLO STARTTLS", "starttls" in s.esmtp_features)
code, resp = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0app@contoso.com\0secret").decode())
print("AUTH BEFORE TLS", code, resp.decode())
s.starttls(context=ssl.create_default_context(cafile=ca))
s.ehlo()
print("TLS EHLO AUTH", s.esmtp_features.get("auth", "(none)").strip())
code, resp = s.docmd("AUTH", "CRAM-MD5")
print("AUTH CRAM-MD5", code, resp.decode())
s.quit()
`

// TestAuthNeedsTLS: with require_tls_for_auth at its default, AUTH is not
// advertised in plain text and refused before STARTTLS; a mechanism the
// connector does not offer is refused after it.
func TestAuthNeedsTLS(t *testing.T) {
	t.Parallel()
	cert := certtest.New(t, "localhost", "127.0.0.1")
	addr := freeAddr(t)
	startSluice(t, submissionConfig(addr, "starttls", cert), listen(addr))
	host, port, _ := strings.Cut(addr, ":")
	r := python(t, smtplibAuthBeforeTLS, host, port, cert.CAFile)
	r.wantExit(t, true)
	r.want(t,
		"PLAIN-TEXT EHLO AUTH (none)",
		"PLAIN-TEXT EHLO STARTTLS True",
		"AUTH BEFORE TLS 538 5.7.11 Encryption required for requested authentication mechanism",
		"TLS EHLO AUTH PLAIN LOGIN",
		"AUTH CRAM-MD5 504 5.5.4 Unrecognized authentication type",
	)
}
