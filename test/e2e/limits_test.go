package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// smtplibLimits probes the size and recipient limits with smtplib.
//
//	argv: dir host port
const smtplibLimits = `
import smtplib, sys
_, _, host, port = sys.argv
s = smtplib.SMTP(host, int(port), timeout=30)
s.ehlo()
print("EHLO SIZE", s.esmtp_features.get("size", "(none)").strip())
code, resp = s.mail("big@devices.example", ["SIZE=5000000"])
print("MAIL SIZE=5000000", code, resp.decode())
s.rset()
rcpts = ["first@fabrikam.example", "second@fabrikam.example", "third@fabrikam.example"]
msg = "From: <app@devices.example>\r\nSubject: three recipients\r\n\r\nhello\r\n"
print("REFUSED", {r: (c, m.decode()) for r, (c, m) in s.sendmail("app@devices.example", rcpts, msg).items()})
s.quit()
`

// TestLimits: message size (announced in EHLO, declared with SIZE=, and
// counted during DATA), recipients per message and connections per client
// address, each with the reply Exchange gives.
func TestLimits(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	s := startSluice(t, "receive_connectors:\n"+relayConnector("Limits", addr,
		"max_message_size: 1MB, max_recipients: 2, max_connections_per_ip: 2", ""),
		listen(addr))
	host, port, _ := strings.Cut(addr, ":")

	t.Run("size and recipients with smtplib", func(t *testing.T) {
		r := python(t, smtplibLimits, host, port)
		r.wantExit(t, true)
		r.want(t,
			"EHLO SIZE 1048576",
			"MAIL SIZE=5000000 552 5.3.4 Message size exceeds fixed maximum message size",
			"REFUSED {'third@fabrikam.example': (452, '4.5.3 Too many recipients",
		)
		if t.Failed() {
			return
		}
		// smtplib sends to the recipients that were accepted.
		m := waitMessage(t, s.dropDir, "first@fabrikam.example")
		if got := strings.Join(m.rcpts, " "); got != "<first@fabrikam.example> <second@fabrikam.example>" {
			t.Errorf("X-Receiver fields %q, want the two accepted recipients", got)
		}
	})

	t.Run("2 MB body with swaks", func(t *testing.T) {
		skipWithout(t, "swaks")
		body := filepath.Join(t.TempDir(), "body.txt")
		line := strings.Repeat("0123456789", 7) + "\n"
		if err := os.WriteFile(body, []byte(strings.Repeat(line, 2<<20/len(line)+1)), 0o600); err != nil {
			t.Fatal(err)
		}
		r := swaks(t, addr, "--from", "scanner@devices.example", "--to", "too-big@fabrikam.example",
			"--body", "@"+body, "--suppress-data")
		r.wantExit(t, false)
		r.want(t, "250-SIZE 1048576", "354 ", "552 5.3.4 Message size exceeds fixed maximum message size")
		s.barrier(addr, "fabrikam.example")
		if got := messagesTo(t, s.dropDir, "too-big@fabrikam.example"); len(got) != 0 {
			t.Errorf("a message refused with 552 was stored: %s", got[0].path)
		}
	})

	t.Run("connections per client address", func(t *testing.T) {
		// From an address nothing else in this test uses, so the count is
		// exactly the connections opened here.
		const from = "127.0.0.5"
		c1 := dialRaw(t, from, addr)
		c1.expect("220 ")
		c2 := dialRaw(t, from, addr)
		c2.expect("220 ")
		c3 := dialRaw(t, from, addr)
		c3.expect("421 4.7.0 Too many connections from your host")
		if !c3.closed() {
			t.Errorf("the connection refused with 421 was left open")
		}
		// Another address is not affected.
		other := dialRaw(t, "127.0.0.6", addr)
		other.expect("220 ")
		other.cmd("QUIT", "221")

		// Once a session ends its slot is free again. The server releases
		// it after the session's last reply, so poll.
		c1.cmd("QUIT", "221")
		deadline := time.Now().Add(waitTimeout)
		for {
			c := dialRaw(t, from, addr)
			r, err := c.reply()
			if err == nil && strings.HasPrefix(r, "220 ") {
				c.cmd("QUIT", "221")
				break
			}
			if !strings.HasPrefix(r, "421 4.7.0") || time.Now().After(deadline) {
				t.Fatalf("after one of two sessions ended, a new connection got %q (%v), want a 220 banner", r, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		c2.cmd("QUIT", "221")
	})
}
