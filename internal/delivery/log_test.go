package delivery_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// rawServer listens on loopback and runs serve on each connection, for
// an upstream that smtptest cannot play (broken TLS, not SMTP at all).
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A host that fails is logged when Sluice moves on to the next; the last
// one's failure is the queue's, logged once as the queue goes into Retry.
func TestFailoverLogsEachHostOnce(t *testing.T) {
	down := closedAddr(t)
	up := smtptest.NewServer(t, smtptest.Options{})
	r := start(t, "", fmt.Sprintf(`  - name: Fabrikam
    address_spaces: [fabrikam.com]
    smarthosts: ["%s", "%s"]
    tls: {mode: none}
  - name: Gone
    address_spaces: [gone.example]
    smarthosts: ["%s"]
    tls: {mode: none}
    retry: {first: 10m, max_interval: 10m}
`, down, up.Addr(), down))
	r.waitDone(r.put("failover", "bob@fabrikam.com"))
	r.put("nowhere", "bob@gone.example")
	r.waitQueue("Gone", "the queue in retry", func(qi queue.QueueInfo) bool { return qi.Status == queue.HopRetry })
	waitFor(t, "the retry logged", func() bool { return len(r.logLines("next hop failed; queue in retry")) == 1 })
	hosts := r.logLines("cannot use upstream host; trying the next")
	if len(hosts) != 1 || !strings.Contains(hosts[0], "queue=Fabrikam host="+down) || !strings.Contains(hosts[0], "connection refused") {
		t.Errorf("want one line for the failed host of Fabrikam, none for Gone's only host:\n%s", r.logs)
	}
}

// An opportunistic TLS handshake that fails is logged with why.
func TestTLSFallbackLogsTheCause(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		fmt.Fprint(c, "220 broken.example ESMTP\r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
			case strings.HasPrefix(cmd, "EHLO"):
				fmt.Fprint(c, "250-broken.example\r\n250 STARTTLS\r\n")
			case cmd == "STARTTLS":
				fmt.Fprint(c, "220 2.0.0 go ahead\r\nthis is not TLS\r\n")
				return
			default:
				fmt.Fprint(c, "421 4.3.2 closing\r\n")
				return
			}
		}
	})
	r := start(t, "", onceFabrikamTLS(addr, "{mode: opportunistic}", ""))
	r.put("tls", "bob@fabrikam.com")
	waitFor(t, "the fallback logged", func() bool {
		return len(r.logLines("STARTTLS failed; delivering without TLS as the connector allows")) > 0
	})
	if l := r.logLines("STARTTLS failed; delivering without TLS as the connector allows")[0]; !strings.Contains(l, "err=") {
		t.Errorf("the fallback does not say why the handshake failed: %s", l)
	}
}

// A message's outcome is one log line per kind of outcome, not one per
// recipient: a message to 50 recipients was 50 lines.
func TestOutcomeIsOneLinePerReply(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{Replies: map[string]string{"gone@fabrikam.com": "550 5.1.1 no such user"}})
	r := start(t, "", onceFabrikam(up.Addr(), ""))
	id := r.put("many", "a@fabrikam.com", "b@fabrikam.com", "gone@fabrikam.com", "c@fabrikam.com")
	r.waitDone(id)
	waitFor(t, "the outcome logged", func() bool { // just after the queue recorded it
		if len(r.logLines("recipient refused by next hop")) == 0 {
			return false
		}
		for _, l := range r.logLines("message delivered") {
			if strings.Contains(l, "queue=Fabrikam") {
				return true
			}
		}
		return false
	})
	var delivered []string // not the bounce's, written to the drop directory
	for _, l := range r.logLines("message delivered") {
		if strings.Contains(l, "queue=Fabrikam") {
			delivered = append(delivered, l)
		}
	}
	if len(delivered) != 1 || !strings.Contains(delivered[0], "msg="+string(id)+" queue=Fabrikam") ||
		!strings.Contains(delivered[0], "rcpts=3 to=a@fabrikam.com,b@fabrikam.com,c@fabrikam.com") {
		t.Errorf("want one line for the three delivered recipients:\n%s", r.logs)
	}
	refused := r.logLines("recipient refused by next hop")
	if len(refused) != 1 || !strings.Contains(refused[0], "rcpts=1 to=gone@fabrikam.com") || !strings.Contains(refused[0], `reply="550 5.1.1 no such user"`) {
		t.Errorf("want one line for the refused recipient:\n%s", r.logs)
	}
}

// The drop directory logs a delivery with the keys an SMTP hop uses.
func TestDirectoryDeliveryLogKeys(t *testing.T) {
	r := start(t, "", "")
	id := r.put("drop", "bob@contoso.com", "ann@contoso.com")
	r.waitDone(id)
	waitFor(t, "the delivery logged", func() bool { return len(r.logLines("message delivered")) > 0 }) // just after the queue recorded it
	l := r.logLines("message delivered")
	if len(l) != 1 || !strings.Contains(l[0], "msg="+string(id)+" queue=Drop") || !strings.Contains(l[0], "rcpts=2 to=bob@contoso.com,ann@contoso.com") {
		t.Errorf("want queue=Drop and the recipients:\n%s", r.logs)
	}
}

// The send protocol log shows every connection to its end: one that
// could not be made says why, and each ends with a disconnect line, as
// the receive side's does.
func TestProtocolLogShowsFailedAndClosedConnections(t *testing.T) {
	down := closedAddr(t)
	up := smtptest.NewServer(t, smtptest.Options{})
	r := start(t, "", fmt.Sprintf(`  - name: Fabrikam
    address_spaces: [fabrikam.com]
    smarthosts: ["%s"]
    tls: {mode: none}
    protocol_log: true
  - name: Gone
    address_spaces: [gone.example]
    smarthosts: ["%s"]
    tls: {mode: none}
    protocol_log: true
    retry: {first: 10m, max_interval: 10m}
`, up.Addr(), down))
	r.waitDone(r.put("sent", "bob@fabrikam.com"))
	r.put("nowhere", "bob@gone.example")
	var fab, gone []string
	waitFor(t, "both conversations to end in the protocol log", func() bool {
		fab, gone = nil, nil
		for _, l := range strings.Split(r.protocolLog(), "\n") {
			f := strings.SplitN(l, ",", 7)
			if len(f) < 7 {
				continue
			}
			switch f[1] {
			case "Fabrikam":
				fab = append(fab, f[5]+" "+f[6])
			case "Gone":
				gone = append(gone, f[5]+" "+f[6])
			}
		}
		return len(fab) > 0 && fab[len(fab)-1] == "- " && len(gone) > 0 && gone[len(gone)-1] == "- "
	})
	if len(gone) != 3 || gone[0] != "+ " || !strings.Contains(gone[1], "connection refused") {
		t.Errorf("the failed connection's log: %q; want connect, why it failed, disconnect", gone)
	}
	if n := len(fab); n < 3 || fab[n-3] != "> QUIT" || !strings.HasPrefix(fab[n-2], "< 221") {
		t.Errorf("the delivery's log: %q; want it to end in QUIT, 221, disconnect", fab)
	}
}

// An upstream named by its address is logged and recorded by that
// address alone: "::1 [[::1]:3030]" said it twice, once unreadably. A
// host name keeps its address beside it.
func TestHostNamedByAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("IPv6 loopback unavailable: %v", err)
	}
	ln.Close()
	v6 := smtptest.NewServer(t, smtptest.Options{Addr: "[::1]:0", Replies: map[string]string{"carol@fabrikam.com": "451 4.3.0 try later"}})
	v4 := smtptest.NewServer(t, smtptest.Options{Replies: map[string]string{"carol@fabrikam.org": "451 4.3.0 try later"}})
	_, v4port, _ := net.SplitHostPort(v4.Addr())
	r := start(t, "", fmt.Sprintf(`  - name: Fabrikam
    address_spaces: [fabrikam.com]
    smarthosts: ["%s"]
    tls: {mode: none}
  - name: Named
    address_spaces: [fabrikam.org]
    smarthosts: ["localhost:%s"]
    tls: {mode: none}
`, v6.Addr(), v4port))
	for _, tc := range []struct {
		domain, want string
	}{
		{"fabrikam.com", v6.Addr()},
		{"fabrikam.org", "localhost [127.0.0.1:" + v4port + "]"},
	} {
		id := r.put("by address", "bob@"+tc.domain, "carol@"+tc.domain)
		var mi queue.MessageInfo
		waitFor(t, "the attempt to "+tc.domain, func() bool {
			mi, _ = r.q.Message(id)
			return len(mi.Recipients) == 2 && mi.Recipients[1].Attempts > 0
		})
		if got, want := mi.Recipients[1].LastError, tc.want+" said: 451 4.3.0 try later"; got != want {
			t.Errorf("last error %q; want %q", got, want)
		}
		var logged string
		waitFor(t, "bob's delivery logged", func() bool { // logged just after the queue recorded it
			for _, l := range r.logLines("message delivered") {
				if strings.Contains(l, "to=bob@"+tc.domain) {
					logged = l
				}
			}
			return logged != ""
		})
		// slog quotes a value only when it has a space.
		if !strings.Contains(logged, fmt.Sprintf("host=%q", tc.want)) && !strings.Contains(logged, "host="+tc.want+" ") {
			t.Errorf("delivery log %q; want host %s", logged, tc.want)
		}
	}
}
