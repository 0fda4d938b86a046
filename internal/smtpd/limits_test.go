package smtpd

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/tracking"
)

// startServerTracked is startServer with the operational log recorded and
// a tracking log; events returns the tracking events recorded so far.
func startServerTracked(t testing.TB, yaml string) (port int, log *logRecorder, events func() []tracking.Event) {
	t.Helper()
	port = freePort(t)
	cfg, err := configParse(strings.ReplaceAll(yaml, "PORT", fmt.Sprint(port)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "tracking")
	tl, err := tracking.Open(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	log = &logRecorder{t: t}
	srv := New(Options{Spool: &memSpool{}, Tracking: tl,
		Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err := srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown(t.Context())
		tl.Close()
	})
	events = func() []tracking.Event {
		tl.Flush()
		evs, err := tracking.Search(dir, tracking.Query{})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	return port, log, events
}

// logged counts the log lines with this message.
func logged(log *logRecorder, msg string) int {
	return strings.Count(log.String(), `msg="`+msg+`"`)
}

// A client that pipelines recipients far past max_recipients is not one
// that will send the rest in another message: after rcptOvershoot of them
// it is closed, and only the first refusal is logged and tracked, so that
// one connection cannot fill the disk.
func TestSessionRecipientOvershootCloses(t *testing.T) {
	port, log, events := startServerTracked(t, anonConfig) // max_recipients: 3
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	var cmds strings.Builder
	cmds.WriteString("MAIL FROM:<a@fabrikam.example>\r\n")
	for i := range 3 + rcptOvershoot + 3000 {
		fmt.Fprintf(&cmds, "RCPT TO:<u%d@contoso.com>\r\n", i)
	}
	// Written while the replies are read; the write fails once the
	// server has closed, which is what is expected.
	go c.conn.Write([]byte(cmds.String()))
	c.expect("", "250 2.1.0")
	for range 3 {
		c.expect("", "250 2.1.5")
	}
	for range rcptOvershoot {
		c.expect("", "452 4.5.3 Too many recipients; at most 3 per message")
	}
	c.expect("", "421 4.5.3 Too many recipients: 1000 past the limit of 3 per message, closing; send at most 3 per message")
	if got := c.reply(); got[0] >= '0' && got[0] <= '9' {
		t.Errorf("after the 421: %q, want the connection closed", got)
	}
	waitFor(t, "the session to end", func() bool { return logged(log, "too many recipients past the limit, closing") == 1 })
	if n := logged(log, "recipient refused"); n != 1 {
		t.Errorf(`%d "recipient refused" lines, want 1`, n)
	}
	if n := len(events()); n != 1 {
		t.Errorf("%d tracking events, want 1 (the first refused recipient)", n)
	}
}

// A transaction that ends after recipients refused past the limit logs
// how many there were in one line, whichever way it ends.
func TestSessionRecipientOvershootCounted(t *testing.T) {
	port, log, events := startServerTracked(t, anonConfig) // max_recipients: 3
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	rcpts := func(n int) {
		c.expect("MAIL FROM:<a@fabrikam.example>", "250")
		for i := range n {
			want := "250"
			if i >= 3 {
				want = "452 4.5.3"
			}
			c.expect(fmt.Sprintf("RCPT TO:<u%d@contoso.com>", i), want)
		}
	}
	rcpts(10) // 7 refused
	c.expect("DATA", "354")
	c.expect("Subject: x\r\n\r\nx\r\n.", "250 2.6.0")
	rcpts(5) // 2 refused
	c.expect("RSET", "250")
	rcpts(4) // 1 refused: its own line is enough
	c.expect("RSET", "250")
	rcpts(6) // 3 refused, counted when the session ends
	c.expect("QUIT", "221")
	waitFor(t, "the session to end", func() bool { return logged(log, "more recipients refused past the limit") == 3 })
	for _, want := range []string{"refused=6 ", "refused=1 ", "refused=2 "} {
		if !strings.Contains(log.String(), `from=a@fabrikam.example user="" `+want+`reply="452 4.5.3`) {
			t.Errorf("no count line with %s", want)
		}
	}
	if n := logged(log, "recipient refused"); n != 4 {
		t.Errorf(`%d "recipient refused" lines, want 4, one a transaction`, n)
	}
	var fails int
	for _, e := range events() {
		if e.Event == tracking.EventFail {
			fails++
		}
	}
	if fails != 4 {
		t.Errorf("%d FAIL events, want 4, one a transaction", fails)
	}
}
