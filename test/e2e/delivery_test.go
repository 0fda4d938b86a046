package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/smtp"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// send submits one message with Go's net/smtp, the way a Go application
// would, and reports whether Sluice answered 250 to the end of DATA.
func send(addr, from string, to []string, subject string) error {
	return sendSized(addr, from, to, subject, 0)
}

// sendSized is send with pad octets more of content (in 78-octet lines)
// before a last line "end of <subject>", so a cut or mixed-up content
// shows.
func sendSized(addr, from string, to []string, subject string, pad int) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("app.test"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@app.test>\r\n\r\nbody of %s\r\n",
		from, strings.Join(to, ", "), subject, strings.ReplaceAll(subject, " ", "-"), subject)
	if pad > 0 {
		line := strings.Repeat(subject[len(subject)-1:], 76) + "\r\n"
		io.WriteString(w, strings.Repeat(line, pad/len(line)))
		fmt.Fprintf(w, "end of %s\r\n", subject)
	}
	if err := w.Close(); err != nil { // the reply to the final dot
		return err
	}
	c.Quit()
	return nil
}

func mustSend(t *testing.T, addr, from string, to []string, subject string) {
	t.Helper()
	if err := send(addr, from, to, subject); err != nil {
		t.Fatalf("sending %q: %v", subject, err)
	}
}

// queues asks the running Sluice for its queues with `sluice queue list --json`.
func (s *sluice) queues() []queue.QueueInfo {
	s.t.Helper()
	r := runClient(s.t, nil, sluiceBin, "queue", "list", "--json", "-config", s.config)
	var qs []queue.QueueInfo
	if err := json.Unmarshal([]byte(r.out), &qs); err != nil {
		s.t.Fatalf("sluice queue list --json: %v\n%s", err, r.out)
	}
	return qs
}

// waitQueue polls `sluice queue list` until a queue satisfies ok.
func (s *sluice) waitQueue(identity string, what string, ok func(queue.QueueInfo) bool) queue.QueueInfo {
	s.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, q := range s.queues() {
			if q.Identity == identity && ok(q) {
				return q
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("queue %s never showed %s; queues: %+v", identity, what, s.queues())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// subjects lists the Subject of each message an upstream received.
func subjects(msgs []smtptest.Message) []string {
	var out []string
	for _, m := range msgs {
		for _, line := range strings.Split(string(m.Data), "\r\n") {
			if v, ok := strings.CutPrefix(line, "Subject: "); ok {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

const relayReceive = `receive_connectors:
  - name: Apps
    bindings: ["%s"]
    remote_ip_ranges: [127.0.0.0/8]
    permissions: [anonymous, relay, accept-any-sender]
`

func TestSmarthostFailover(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	dead := freeAddr(t)
	addr := freeAddr(t)
	s := startSluice(t, fmt.Sprintf(relayReceive+`send_connectors:
  - name: Exchange
    address_spaces: ["*"]
    smarthosts: ["%s", "%s"]
    tls: {mode: none}
`, addr, dead, up.Addr()), listen(addr))
	for i := range 3 {
		mustSend(t, addr, "app@contoso.com", []string{"bob@fabrikam.com"}, fmt.Sprintf("failover %d", i))
	}
	msgs := up.WaitMessages(t, 3)
	if got := subjects(msgs); len(got) != 3 {
		t.Fatalf("second smarthost got %v", got)
	}
	s.waitLog("cannot use upstream host; trying the next")
}

func TestSmarthostDownThenUp(t *testing.T) {
	upAddr := freeAddr(t)
	addr := freeAddr(t)
	s := startSluice(t, fmt.Sprintf(relayReceive+`send_connectors:
  - name: Exchange
    address_spaces: ["*"]
    smarthosts: ["%s"]
    tls: {mode: none}
    retry: {first: 1s, max_interval: 2s}
`, addr, upAddr), listen(addr))
	mustSend(t, addr, "app@contoso.com", []string{"bob@fabrikam.com"}, "waits for the smarthost")

	// While it is down the queue says so, with the reason.
	q := s.waitQueue("Exchange", "Retry with the connection error", func(q queue.QueueInfo) bool {
		return q.Status == queue.HopRetry && strings.Contains(q.LastError, "connection refused")
	})
	if q.MessageCount != 1 || q.RetryCount < 1 || q.NextRetryTime.IsZero() {
		t.Errorf("queue while the smarthost is down: %+v", q)
	}
	r := runClient(t, nil, sluiceBin, "queue", "list", "-config", s.config)
	r.want(t, "Exchange", "Retry", "cannot connect to "+upAddr)

	up := smtptest.NewServer(t, smtptest.Options{Addr: upAddr})
	msgs := up.WaitMessages(t, 1)
	if got := subjects(msgs); len(got) != 1 || got[0] != "waits for the smarthost" {
		t.Fatalf("upstream got %v", got)
	}
	deadline := time.Now().Add(waitTimeout)
	for len(s.queues()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queues after delivery: %+v; want none", s.queues())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dsnCheck is a Python script that parses a DSN with the standard email
// package and prints what a mail client would see of it.
const dsnCheck = `
import email, sys
from email import policy
msg = email.message_from_binary_file(open(sys.argv[2], 'rb'), policy=policy.default)
print("content-type:", msg.get_content_type())
print("report-type:", msg.get_param('report-type'))
print("from:", msg['From'])
for part in msg.walk():
    ct = part.get_content_type()
    if ct == 'message/delivery-status':
        # Per-message fields, then one block per recipient.
        blocks = part.get_payload()
        for b in blocks[1:]:
            print("recipient:", b['Final-Recipient'], "action:", b['Action'], "status:", b['Status'])
    elif ct in ('text/rfc822-headers', 'message/rfc822'):
        print("original:", ct)
    elif ct == 'text/plain':
        print("human-readable: yes")
`

// dsnFile writes the drop file's message (without Sluice's X-Sender and
// X-Receiver lines) for Python to read.
func dsnFile(t *testing.T, d *dropped) string {
	t.Helper()
	path := t.TempDir() + "/dsn.eml"
	if err := writeFile(path, d.msg); err != nil {
		t.Fatal(err)
	}
	return path
}

// goneAtFabrikam runs Sluice listening on addr (returned) that relays
// fabrikam.com to an upstream refusing gone@fabrikam.com with 550 5.1.1
// and drops everything else, bounces included, in its drop directory.
func goneAtFabrikam(t *testing.T) (s *sluice, up *smtptest.Server, addr string) {
	t.Helper()
	up = smtptest.NewServer(t, smtptest.Options{Replies: map[string]string{
		"gone@fabrikam.com": "550 5.1.1 <gone@fabrikam.com>: Recipient address rejected: User unknown",
	}})
	addr = freeAddr(t)
	s = startSluice(t, fmt.Sprintf(relayReceive+`send_connectors:
  - name: Fabrikam
    address_spaces: [fabrikam.com]
    smarthosts: ["%s"]
    tls: {mode: none}
  - {name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}
`, addr, up.Addr()), listen(addr))
	return s, up, addr
}

func TestPartialFailureBouncesOnlyTheRefused(t *testing.T) {
	s, up, addr := goneAtFabrikam(t)
	mustSend(t, addr, "app@contoso.com", []string{"bob@fabrikam.com", "gone@fabrikam.com"}, "partly refused")

	msgs := up.WaitMessages(t, 1)
	if len(msgs[0].Rcpts) != 1 || msgs[0].Rcpts[0] != "bob@fabrikam.com" {
		t.Fatalf("upstream accepted %v; want only bob", msgs[0].Rcpts)
	}
	d := waitMessage(t, s.dropDir, "app@contoso.com")
	if d.sender != "<>" {
		t.Errorf("DSN envelope sender %s; want <>", d.sender)
	}
	r := python(t, dsnCheck, dsnFile(t, d))
	r.want(t, "content-type: multipart/report", "report-type: delivery-status",
		"recipient: rfc822; gone@fabrikam.com action: failed status: 5.1.1",
		"original: text/rfc822-headers", "human-readable: yes")
	r.wantNot(t, "bob@fabrikam.com action")
	// Exactly one bounce.
	time.Sleep(500 * time.Millisecond) // a second bounce would be queued by now; this only widens the window to see it
	if n := len(messagesTo(t, s.dropDir, "app@contoso.com")); n != 1 {
		t.Errorf("%d bounces to the sender; want 1", n)
	}
}

func TestExpiryBounces(t *testing.T) {
	dead := freeAddr(t)
	addr := freeAddr(t)
	s := startSluice(t, fmt.Sprintf(relayReceive+`send_connectors:
  - name: Fabrikam
    address_spaces: [fabrikam.com]
    smarthosts: ["%s"]
    tls: {mode: none}
    retry: {first: 1s, max_interval: 1s, expire: 2s}
  - {name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}
`, addr, dead), listen(addr))
	mustSend(t, addr, "app@contoso.com", []string{"bob@fabrikam.com"}, "never delivered")

	d := waitMessage(t, s.dropDir, "app@contoso.com")
	r := python(t, dsnCheck, dsnFile(t, d))
	r.want(t, "content-type: multipart/report", "recipient: rfc822; bob@fabrikam.com action: failed status: 5.4.7")
	if !strings.Contains(string(d.msg), "cannot connect to "+dead) {
		t.Errorf("the expiry DSN does not say why delivery failed (the last error):\n%s", d.msg)
	}
	// A bounce of a bounce never happens: a message from <> that expires
	// is dropped with a log line, not bounced (covered in internal/queue).
}

func TestRestartWithFullQueue(t *testing.T) {
	const n = 200
	upAddr := freeAddr(t)
	addr := freeAddr(t)
	s := startSluice(t, fmt.Sprintf(relayReceive+`send_connectors:
  - name: Exchange
    address_spaces: ["*"]
    smarthosts: ["%s"]
    tls: {mode: none}
    retry: {first: 1s, max_interval: 2s}
`, addr, upAddr), listen(addr))
	for i := range n {
		mustSend(t, addr, "app@contoso.com", []string{"bob@fabrikam.com"}, fmt.Sprintf("queued %03d", i))
	}
	s.waitQueue("Exchange", fmt.Sprintf("%d messages", n), func(q queue.QueueInfo) bool { return q.MessageCount == n })
	s.signal(syscallTERM)
	if err := s.waitExit(); err != nil {
		t.Fatalf("sluice exited with %v after SIGTERM", err)
	}

	s.start("serve", "-config", s.config)
	s.waitReady(listen(addr))
	s.waitLog(fmt.Sprintf("queue recovered\" messages=%d", n))
	up := smtptest.NewServer(t, smtptest.Options{Addr: upAddr})
	waitUpstream(t, up, n)
	seen := map[string]int{}
	for _, subj := range subjects(up.Messages()) {
		seen[subj]++
	}
	for i := range n {
		subj := fmt.Sprintf("queued %03d", i)
		if seen[subj] != 1 {
			t.Errorf("%q arrived %d times; want once", subj, seen[subj])
		}
	}
}

// waitUpstream waits until up has at least n messages; the deadline only
// guards against a hang (the queue retries every few seconds here).
func waitUpstream(t *testing.T, up *smtptest.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(up.Messages()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("upstream has %d messages after 60s; want %d", len(up.Messages()), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var syscallTERM = syscall.SIGTERM

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

var syscallHUP = syscall.SIGHUP
