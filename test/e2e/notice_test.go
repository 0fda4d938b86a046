package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// smtplibDSN sends one message with Python's smtplib, with the DSN
// parameters (RFC 3461) RET on MAIL and NOTIFY on RCPT, and pad more
// lines of 78 octets in the body.
const smtplibDSN = `
import smtplib, sys
_, _, host, port, sender, rcpt, ret, notify, subject, pad = sys.argv
body = "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@app.test>\r\n\r\nhello\r\n" % (
    sender, rcpt, subject, subject.replace(" ", "-"))
body += ("y" * 76 + "\r\n") * int(pad)
s = smtplib.SMTP(host, int(port), timeout=30)
s.ehlo("app.test")
s.sendmail(sender, [rcpt], body, mail_options=["RET=" + ret], rcpt_options=["NOTIFY=" + notify])
s.quit()
print("sent")
`

func sendDSN(t *testing.T, addr, rcpt, ret, notify, subject string, pad int) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	python(t, smtplibDSN, host, port, "app@contoso.com", rcpt, ret, notify, subject, fmt.Sprint(pad)).want(t, "sent")
}

// A client that asks with NOTIFY=SUCCESS is told of the delivery to a
// drop directory (RFC 3461 §5.2.3), with the header only whatever RET
// says (§4.3), and the tracking log has the notice.
func TestSuccessNoticeForDropDirectory(t *testing.T) {
	addr := freeAddr(t)
	s := startSluice(t, fmt.Sprintf(relayReceive, addr), listen(addr))
	sendDSN(t, addr, "bob@contoso.com", "FULL", "SUCCESS,FAILURE", "tell me", 0)

	waitMessage(t, s.dropDir, "bob@contoso.com")
	d := waitMessage(t, s.dropDir, "app@contoso.com")
	if d.sender != "<>" {
		t.Errorf("notice envelope sender %s; want <>", d.sender)
	}
	r := python(t, dsnCheck, dsnFile(t, d))
	r.want(t, "content-type: multipart/report", "report-type: delivery-status",
		"recipient: rfc822; bob@contoso.com action: delivered status: 2.0.0",
		"original: text/rfc822-headers", "human-readable: yes")

	deadline := time.Now().Add(waitTimeout)
	for {
		out := runClient(t, nil, sluiceBin, "track", "-config", s.config, "--sender", "app@contoso.com", "--event", "DSN", "--json").out
		if strings.Contains(out, "success notice to app@contoso.com") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice track never showed the success notice:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond) // the tracking log is flushed every 200 ms
	}
}

// RET=FULL returns the whole original with a bounce only up to 50,000
// octets (RFC 3461 §6.2, Postfix's bounce_size_limit); a larger one comes
// back as its header, and the notice says why.
func TestReturnFullIsCapped(t *testing.T) {
	s, _, addr := goneAtFabrikam(t)
	sendDSN(t, addr, "gone@fabrikam.com", "FULL", "FAILURE", "small original", 10)
	sendDSN(t, addr, "gone@fabrikam.com", "FULL", "FAILURE", "large original", 700) // 54 KB

	deadline := time.Now().Add(waitTimeout)
	var bounces []*dropped
	for len(bounces) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bounces to app@contoso.com; want 2: %s", len(bounces), dropSummary(t, s.dropDir))
		}
		time.Sleep(20 * time.Millisecond)
		bounces = messagesTo(t, s.dropDir, "app@contoso.com")
	}
	for _, d := range bounces {
		r := python(t, dsnCheck, dsnFile(t, d))
		r.want(t, "recipient: rfc822; gone@fabrikam.com action: failed status: 5.1.1")
		switch {
		case bytes.Contains(d.msg, []byte("Subject: Undeliverable: small original")):
			r.want(t, "original: message/rfc822")
		case bytes.Contains(d.msg, []byte("Subject: Undeliverable: large original")):
			r.want(t, "original: text/rfc822-headers")
			r.wantNot(t, "original: message/rfc822")
			if !bytes.Contains(d.msg, []byte("too large to return")) {
				t.Errorf("the bounce of the large original does not say why it is not returned:\n%s", d.msg)
			}
		default:
			t.Errorf("a bounce about neither message:\n%s", d.msg)
		}
	}
}
