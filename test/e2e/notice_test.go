package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/tracking"
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

// sluice track shows a bounced message and its bounce together, whether
// it is asked for the one or the other: the message's whole story with
// its DSN line naming the bounce, and the bounce's story naming the
// message. Before, a search for the bounce showed the message by its DSN
// line alone.
func TestTrackBounceWithItsMessage(t *testing.T) {
	s, _, addr := goneAtFabrikam(t)
	sendDSN(t, addr, "gone@fabrikam.com", "HDRS", "FAILURE", "tracked bounce", 0)
	d := waitMessage(t, s.dropDir, "app@contoso.com")
	_, rest, _ := bytes.Cut(d.msg, []byte("\r\nMessage-ID: "))
	noticeMID, _, _ := bytes.Cut(rest, []byte("\r\n"))
	if len(noticeMID) == 0 {
		t.Fatalf("the bounce has no Message-ID:\n%s", d.msg)
	}
	for _, args := range [][]string{
		{"--message-id", string(noticeMID)},
		{"--message-id", "<tracked-bounce@app.test>"},
		{"--recipient", "app@contoso.com"},
		{"--sender", "MAILER-DAEMON"},
	} {
		var story []string
		var dsn, notice tracking.Event
		deadline := time.Now().Add(waitTimeout)
		for {
			out := runClient(t, nil, sluiceBin, append([]string{"track", "-config", s.config, "--json"}, args...)...).out
			story = nil
			for line := range strings.Lines(out) {
				var e tracking.Event
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("sluice track %q: %v in\n%s", args, err, out)
				}
				who := "message"
				switch {
				case e.MessageID == string(noticeMID):
					who, notice = "notice", e
				case e.Event == tracking.EventDSN:
					dsn = e
				}
				story = append(story, who+" "+string(e.Event))
			}
			if len(story) > 0 && story[len(story)-1] == "notice SEND" {
				break // the last event
			}
			if time.Now().After(deadline) {
				t.Fatalf("sluice track %q never showed the bounce delivered:\n%s", args, out)
			}
			time.Sleep(100 * time.Millisecond) // the tracking log is written every 200 ms
		}
		want := "message RECEIVE, message SUBMIT, message FAIL, notice SUBMIT, message DSN, notice SEND"
		if got := strings.Join(story, ", "); got != want || dsn.Related != notice.ID || notice.Related != dsn.ID {
			t.Errorf("sluice track %q: %s, the DSN naming %s, the notice %s naming %s\nwant %s, each naming the other",
				args, got, dsn.Related, notice.ID, notice.Related, want)
		}
	}
	out := runClient(t, nil, sluiceBin, "track", "-config", s.config, "--message-id", string(noticeMID)).out
	if !strings.Contains(out, "from <>") || !strings.Contains(out, "notice about message ") || !strings.Contains(out, "RECEIVE") {
		t.Errorf("sluice track by the bounce's Message-ID does not show both stories, linked:\n%s", out)
	}
}
