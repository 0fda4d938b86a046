package cli

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/probe"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// What the security review sent: an EHLO name that retitles the
// terminal, a Message-ID that paints it, an upstream reply that clears
// it and carries a tab; plus a C1 CSI (U+009B), DEL and a byte that is
// not UTF-8 (0x9B alone is CSI to a terminal not in UTF-8).
const (
	evilHelo  = "evil\x1b]0;PWNED\x07"
	evilMsgID = "<id\x1b[41mBG\x1b[0m@x>"
	evilReply = "451 4.3.0 \x1b]0;PWNED\x07\x1b[2J busy\tnow \u009b31m red\x7f \x9b"
)

func TestDisplay(t *testing.T) {
	for in, want := range map[string]string{
		"250 2.0.0 OK":            "250 2.0.0 OK",
		"relay.contoso.com (Ünï)": "relay.contoso.com (Ünï)",
		evilHelo:                  `evil\x1b]0;PWNED\x07`,
		evilMsgID:                 `<id\x1b[41mBG\x1b[0m@x>`,
		evilReply:                 `451 4.3.0 \x1b]0;PWNED\x07\x1b[2J busy now \u009b31m red\x7f \x9b`,
		"a\r\nb\x00":              `a\r\nb\x00`,
	} {
		if got := display(in); got != want {
			t.Errorf("display(%q) = %q; want %q", in, got, want)
		}
	}
}

// rawControls returns what in out a terminal would act on: a control
// character other than the line ends of the printer itself, a C1
// control, or a byte that is not UTF-8.
func rawControls(out string) []string {
	var bad []string
	for i := 0; i < len(out); {
		r, n := utf8.DecodeRuneInString(out[i:])
		if r == utf8.RuneError && n == 1 || r != '\n' && (r < 0x20 || r >= 0x7f && r <= 0x9f) {
			bad = append(bad, out[max(0, i-10):min(len(out), i+10)])
		}
		i += n
	}
	return bad
}

// column checks that in every line after the one holding header, the
// text under header's first rune starts with one of wants, in order: a
// tab or line break in a field would push it elsewhere.
func column(t *testing.T, out, header string, wants ...string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		at := strings.Index(l, header)
		if at < 0 {
			continue
		}
		col := utf8.RuneCountInString(l[:at])
		for j, w := range wants {
			if i+1+j >= len(lines) {
				t.Fatalf("column %s: no row %d for %q in\n%s", header, j, w, out)
			}
			row := []rune(lines[i+1+j])
			if len(row) < col || !strings.HasPrefix(string(row[col:]), w) {
				t.Errorf("column %s, row %d: want %q at rune %d in\n%s", header, j, w, col, out)
			}
		}
		return
	}
	t.Fatalf("no header %q in\n%s", header, out)
}

// Every printer of text output escapes what clients and upstreams wrote
// and keeps its columns. Before, sluice track, queue list|show, message
// list|show, test send, test connect and health wrote these bytes raw:
// a client's EHLO name could retitle the admin's terminal and a tab in
// an upstream's reply broke the table.
func TestPrintersEscapeControls(t *testing.T) {
	now := time.Now()
	evilRcpt := "bob\x1b[8m@fabrikam.com"
	printers := map[string]struct {
		print func(*bytes.Buffer)
		check func(t *testing.T, out string)
	}{
		"track": {func(b *bytes.Buffer) {
			printStories(b, []tracking.Event{
				{Time: now, Event: tracking.EventReceive, Source: "SMTP", ID: "0ab1cdef23456789", MessageID: evilMsgID, Sender: "a\tb@contoso.com",
					Recipients: []string{evilRcpt}, Connector: "Internet", ClientIP: "203.0.113.9", ClientName: evilHelo, AuthUser: "u\x1b[2J", Reply: "250 2.6.0 Queued"},
				{Time: now, Event: tracking.EventDefer, Source: "DELIVERY", ID: "0ab1cdef23456789", Recipients: []string{"carol@fabrikam.com"},
					NextHop: "Internet/fabrikam.com", Host: "mx\x07.fabrikam.com", Reply: evilReply},
				{Time: now, Event: tracking.EventSend, Source: "DELIVERY", ID: "0ab1cdef23456789", Recipients: []string{"carol@fabrikam.com"},
					NextHop: "Internet/fabrikam.com", Host: "mx2.fabrikam.com", Reply: "250 2.0.0 OK"},
			}, time.UTC)
		}, func(t *testing.T, out string) {
			column(t, out, "REPLY", "250 2.6.0", "451 4.3.0", "250 2.0.0")
			column(t, out, "RECIPIENTS", `bob\x1b[8m@`, "carol@", "carol@")
			if !strings.Contains(out, `<id\x1b[41mBG\x1b[0m@x> from a b@contoso.com`) || !strings.Contains(out, `(evil\x1b]0;PWNED\x07)`) {
				t.Errorf("the Message-ID, sender or EHLO name is not shown escaped:\n%s", out)
			}
		}},
		"queue list": {func(b *bytes.Buffer) {
			printQueues(b, []queue.QueueInfo{
				{Identity: "Internet/fabr\x1bikam.com", DeliveryType: "DnsConnectorDelivery", Status: queue.HopRetry, MessageCount: 1,
					NextHop: "fabr\x1bikam.com", RetryCount: 1, NextRetryTime: now, LastError: evilReply},
				{Identity: "Exchange", DeliveryType: "SmartHostConnectorDelivery", Status: queue.HopReady, NextHop: "exch1", LastError: "-"},
			})
		}, func(t *testing.T, out string) {
			column(t, out, "LAST ERROR", "451 4.3.0", "-")
			column(t, out, "MESSAGES", "1", "0")
		}},
		"queue show": {func(b *bytes.Buffer) {
			printQueue(b, queue.QueueInfo{Identity: "Internet/fabrikam.com", Status: queue.HopRetry, LastError: evilReply,
				Unreadable: 1, UnreadableError: "bad\x1b[2J"})
		}, func(t *testing.T, out string) {
			if !strings.Contains(out, `LastError:      451 4.3.0 \x1b]0;PWNED\x07\x1b[2J busy now`) {
				t.Errorf("LastError not escaped:\n%s", out)
			}
		}},
		"message list": {func(b *bytes.Buffer) {
			printMessages(b, []queue.MessageInfo{
				{ID: "0ab1cdef23456789", Received: now, From: "x\ty@contoso.com", Size: 10, Status: queue.HopRetry, Queues: []string{"Internet/fabrikam.com"},
					Recipients: []queue.RcptInfo{{Address: evilRcpt, Status: "queued", LastError: evilReply}}},
				{ID: "0ab1cdef2345abcd", Received: now, From: "app@contoso.com", Size: 20, Status: queue.HopReady, Queues: []string{"Exchange"},
					Recipients: []queue.RcptInfo{{Address: "carol@fabrikam.com", Status: "queued"}}},
			})
		}, func(t *testing.T, out string) {
			column(t, out, "SIZE", "10", "20")
			column(t, out, "RECIPIENTS", `bob\x1b[8m@`, "carol@")
			column(t, out, "LAST ERROR", "451 4.3.0")
		}},
		"message show": {func(b *bytes.Buffer) {
			printMessage(b, queue.MessageInfo{ID: "0ab1cdef23456789", From: "app@contoso.com", Status: queue.HopRetry,
				Origin:     queue.OriginInfo{Connector: "Internet", ClientIP: netip.MustParseAddr("203.0.113.9"), ClientHelo: evilHelo, AuthUser: "u\u0085x"},
				Recipients: []queue.RcptInfo{{Address: evilRcpt, Status: "queued", Queue: "Internet/fabrikam.com", LastError: evilReply}, {Address: "carol@fabrikam.com", Status: "queued", Queue: "Exchange"}}})
		}, func(t *testing.T, out string) {
			column(t, out, "QUEUE", "Internet/", "Exchange")
			column(t, out, "ATTEMPTS", "0", "0")
			if !strings.Contains(out, `Client:            203.0.113.9 (evil\x1b]0;PWNED\x07)`) || !strings.Contains(out, `u\u0085x`) {
				t.Errorf("EHLO name or user not escaped:\n%s", out)
			}
		}},
		"test send event": {func(b *bytes.Buffer) {
			printEvent(b, tracking.Event{Time: now, Event: tracking.EventDefer, Source: "DELIVERY", Recipients: []string{evilRcpt},
				NextHop: "Internet/fabrikam.com", Host: "mx\x1b.fabrikam.com", Reply: evilReply}, false)
		}, func(t *testing.T, out string) {
			if strings.Count(out, "\n") != 1 {
				t.Errorf("one event, one line:\n%s", out)
			}
		}},
		"test connect": {func(b *bytes.Buffer) {
			printProbe(b, &probe.Report{Addr: "mx.fabrikam.com:25", Banner: "mx ESMTP \x1b]0;PWNED\x07", EHLO: []string{"SIZE\x1b[2J"},
				AuthOffered: []string{"PLAIN"}, Transcript: []probe.Line{{Dir: "S", Text: evilReply}}})
		}, func(t *testing.T, out string) {}},
		"health": {func(b *bytes.Buffer) {
			health.Render(b, displayFindings([]health.Finding{{Rule: "HOP-FAILING", Severity: health.Warning, Subject: "queue Internet/fabrikam.com",
				Problem: "last error: " + evilReply, Fix: "check"}}))
		}, func(t *testing.T, out string) {}},
	}
	for name, p := range printers {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			p.print(&b)
			out := b.String()
			if bad := rawControls(out); len(bad) > 0 {
				t.Errorf("raw control characters in %q", bad)
			}
			if strings.Contains(out, "\t") {
				t.Errorf("a tab in the output:\n%s", out)
			}
			p.check(t, out)
		})
	}
}
