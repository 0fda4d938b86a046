package e2e

import (
	"bytes"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// relayConnector is a connector for loopback clients that may send as
// anyone to anyone — the embedded default's — with tarpit off, more limits
// ("max_recipients: 2, ...") and extra YAML lines (indented by four
// spaces).
func relayConnector(name, addr, limits, extra string) string {
	if limits != "" {
		limits = ", " + limits
	}
	return fmt.Sprintf(`  - name: %s
    bindings: [%s]
    remote_ip_ranges: [127.0.0.0/8]
    permissions: [anonymous, relay, accept-any-sender]
    limits: {tarpit: 0s%s}
%s`, name, addr, limits, extra)
}

// smtplibContent builds a message with Python's email package, writes the
// exact bytes it hands to smtplib into <dir>/sent.eml and sends them with
// sendmail. Cases:
//
//	rfc2047   non-ASCII Subject and names encoded per RFC 2047, QP text,
//	          a 5 MB random attachment in base64; Message-ID and Date set
//	smtputf8  the same with raw UTF-8 header fields and 8bit text, sent
//	          with MAIL FROM ... SMTPUTF8 BODY=8BITMIME
//	no-ids    a small message without Message-ID and Date
//
//	argv: dir host port case sender rcpt
const smtplibContent = `
import email.policy, os, smtplib, sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
_, dir, host, port, case, sender, rcpt = sys.argv
policy = email.policy.SMTPUTF8 if case == "smtputf8" else email.policy.SMTP
m = EmailMessage(policy=policy)
m["From"] = "Jürgen Müller <%s>" % sender
m["To"] = "Zoë Ølund <%s>" % rcpt
m["Subject"] = "Grüße aus Zürich – 日本語のテスト – " + case
if case != "no-ids":
    m["Date"] = formatdate()
    m["Message-ID"] = make_msgid(domain="contoso.com")
m.set_content("Hallo Zoë,\nanbei die Datei.\n.\n.. und ein Punkt am Zeilenanfang.\n— Jürgen\n",
              cte="8bit" if case == "smtputf8" else "quoted-printable")
if case != "no-ids":
    m.add_attachment(os.urandom(5 * 1024 * 1024), maintype="application",
                     subtype="octet-stream", filename="Prüfbericht.bin")
data = m.as_bytes(policy=policy)  # the policy's line separator is CRLF
open(os.path.join(dir, "sent.eml"), "wb").write(data)
options = ["SMTPUTF8", "BODY=8BITMIME"] if case == "smtputf8" else []
s = smtplib.SMTP(host, int(port), timeout=60)
print("REFUSED", s.sendmail(sender, [rcpt], data, mail_options=options))
s.quit()
`

// TestContentUnchanged: Sluice stores what the client sent byte for byte
// after its own Received field — UTF-8 headers (RFC 2047 encoded, or raw
// under SMTPUTF8), dot-stuffed lines and a 5 MB binary attachment — and
// adds Message-ID and Date only where the client left them out.
func TestContentUnchanged(t *testing.T) {
	t.Parallel()
	skipWithout(t, "python3")
	addr := freeAddr(t)
	s := startSluice(t, "receive_connectors:\n"+relayConnector("Apps", addr, "", ""), listen(addr))
	host, port, _ := strings.Cut(addr, ":")

	cases := []struct {
		name      string
		received  string // in the Received field
		addsIDs   bool   // Sluice adds Message-ID and Date
		wantInMsg string // in the message as sent (a sanity check of the test itself)
		minSize   int    // of the message as sent (the attachment is there)
	}{
		{name: "rfc2047", received: "with ESMTP id", wantInMsg: "Subject: =?utf-8?", minSize: 5 << 20},
		{name: "smtputf8", received: "with UTF8SMTP id", wantInMsg: "Subject: Grüße aus Zürich", minSize: 5 << 20},
		{name: "no-ids", received: "with ESMTP id", wantInMsg: "Subject: =?utf-8?", addsIDs: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rcpt := "zoe-" + tc.name + "@fabrikam.example"
			r := python(t, smtplibContent, host, port, tc.name, "juergen@contoso.com", rcpt)
			r.wantExit(t, true)
			r.want(t, "REFUSED {}")
			if t.Failed() {
				return
			}
			sent, err := os.ReadFile(filepath.Join(r.dir, "sent.eml"))
			if err != nil {
				t.Fatalf("the client did not write what it sent: %v", err)
			}
			if !bytes.Contains(sent, []byte(tc.wantInMsg)) || len(sent) < tc.minSize {
				t.Fatalf("the test's own message (%d octets) lacks %q or is smaller than %d octets:\n%s", len(sent), tc.wantInMsg, tc.minSize, head(sent))
			}
			if i := bareLineEnding(sent); i >= 0 {
				t.Fatalf("the test's own message has a bare line ending at offset %d", i)
			}

			m := waitMessage(t, s.dropDir, rcpt)
			received, rest := splitTrace(t, m.msg)
			if !bytes.Contains(received, []byte(tc.received)) {
				t.Errorf("Received field lacks %q:\n%s", tc.received, received)
			}
			if tc.addsIDs {
				rest = wantAddedIDs(t, rest)
			}
			if !bytes.Equal(rest, sent) {
				t.Errorf("stored message differs from what smtplib sent (%d octets stored after the trace fields, %d sent): %s",
					len(rest), len(sent), firstDiff(rest, sent))
			}
		})
	}
}

// wantAddedIDs checks that msg starts with a Message-ID and a Date field
// Sluice added, and returns what follows them.
func wantAddedIDs(t *testing.T, msg []byte) []byte {
	t.Helper()
	fields := map[string]string{}
	for range 2 {
		line, rest, ok := bytes.Cut(msg, []byte("\r\n"))
		name, value, colon := strings.Cut(string(line), ": ")
		if !ok || !colon {
			break
		}
		fields[strings.ToLower(name)] = value
		msg = rest
	}
	if id := fields["message-id"]; !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@relay.test>") {
		t.Errorf("Sluice did not add Message-ID: <...@relay.test> in front of a message without one; fields in front: %q", fields)
	}
	if _, err := mail.ParseDate(fields["date"]); err != nil {
		t.Errorf("Sluice did not add a valid Date in front of a message without one (%v); fields in front: %q", err, fields)
	}
	return msg
}

// firstDiff describes where a and b first differ.
func firstDiff(a, b []byte) string {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	ctx := func(x []byte) string {
		lo, hi := max(0, i-40), min(len(x), i+40)
		return fmt.Sprintf("%q", x[lo:hi])
	}
	return fmt.Sprintf("first difference at offset %d: stored %s, sent %s", i, ctx(a), ctx(b))
}
