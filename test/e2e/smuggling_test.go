package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSMTPSmuggling sends, over a raw socket, message data with a fake end
// of data (a dot between bare line endings) followed by a second
// transaction. By default the whole message is refused with 550 5.6.11;
// with bare_line_endings: normalize it is stored as one message with CRLF
// line endings, the smuggled commands inside it as text. Either way no
// second message comes out.
func TestSMTPSmuggling(t *testing.T) {
	t.Parallel()
	strict, normalize := freeAddr(t), freeAddr(t)
	s := startSluice(t, "receive_connectors:\n"+
		relayConnector("Strict", strict, "", "")+
		relayConnector("Normalize", normalize, "", "    bare_line_endings: normalize\n"),
		listen(strict), listen(normalize))

	fakeEnds := []struct{ name, end string }{
		{"LF.LF", "\n.\n"},
		{"CRLF.LF", "\r\n.\n"},
		{"LF.CRLF", "\n.\r\n"},
		{"CR.CRLF", "\r.\r\n"},
		{"CRLF.CR", "\r\n.\r"},
	}
	for _, conn := range []struct {
		name, addr string
		reply      string // to the end of data
	}{
		{"reject", strict, "550 5.6.11 "},
		{"normalize", normalize, "250 "},
	} {
		for _, fe := range fakeEnds {
			t.Run(conn.name+"/"+fe.name, func(t *testing.T) {
				id := strings.ToLower(conn.name + "-" + strings.ReplaceAll(fe.name, ".", "-"))
				rcpt, victim := "smuggle-"+id+"@fabrikam.example", "victim-"+id+"@contoso.com"
				c := dialRaw(t, "", conn.addr)
				c.expect("220 ")
				c.cmd("EHLO client.test", "250")
				c.cmd("MAIL FROM:<app@contoso.com>", "250")
				c.cmd("RCPT TO:<"+rcpt+">", "250")
				c.cmd("DATA", "354")
				c.write("From: <app@contoso.com>\r\nSubject: " + id + "\r\n\r\nfirst message" + fe.end +
					"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<" + victim + ">\r\nDATA\r\n" +
					"From: <ceo@contoso.com>\r\nSubject: smuggled\r\n\r\nsmuggled message\r\n.\r\n")
				c.expect(conn.reply)
				// A server that took the fake end for real would now answer the
				// smuggled MAIL, RCPT, DATA and end of data before QUIT.
				c.cmd("QUIT", "221")

				s.barrier(strict, "fabrikam.example")
				if n := len(messagesTo(t, s.dropDir, victim)); n != 0 {
					t.Fatalf("the smuggled message to <%s> was stored (%d times)", victim, n)
				}
				got := messagesTo(t, s.dropDir, rcpt)
				if conn.name == "reject" {
					if len(got) != 0 {
						t.Errorf("a message refused with 550 5.6.11 was stored: %s", got[0].path)
					}
					return
				}
				if len(got) != 1 {
					t.Fatalf("%d messages for <%s>, want exactly 1", len(got), rcpt)
				}
				wantNormalized(t, got[0].msg, "first message", "MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<"+victim+">", "smuggled message")
			})
		}
	}

	// curl sends the file byte for byte: LF line endings go out as they are
	// (PRODUCT.md's client table).
	t.Run("curl", func(t *testing.T) {
		curl := skipWithout(t, "curl")
		file := filepath.Join(t.TempDir(), "lf.eml")
		if err := os.WriteFile(file, []byte("From: <scanner@contoso.com>\nSubject: scan from curl\n\nline one\nline two\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, conn := range []struct {
			name, addr string
			ok         bool
			want       string
		}{
			{"reject", strict, false, "< 550 5.6.11 Bare line feeds (LF) or carriage returns (CR) are not allowed"},
			{"normalize", normalize, true, "< 250 2.6.0"},
		} {
			t.Run(conn.name, func(t *testing.T) {
				rcpt := "curl-" + conn.name + "@fabrikam.example"
				r := runClient(t, nil, curl, "-sS", "-v", "smtp://"+conn.addr,
					"--mail-from", "scanner@contoso.com", "--mail-rcpt", rcpt, "--upload-file", file)
				r.wantExit(t, conn.ok)
				r.want(t, conn.want)
				if t.Failed() {
					return
				}
				s.barrier(strict, "fabrikam.example")
				got := messagesTo(t, s.dropDir, rcpt)
				if !conn.ok {
					if len(got) != 0 {
						t.Errorf("a message refused with 550 5.6.11 was stored: %s", got[0].path)
					}
					return
				}
				if len(got) != 1 {
					t.Fatalf("%d messages for <%s>, want exactly 1", len(got), rcpt)
				}
				wantNormalized(t, got[0].msg, "Subject: scan from curl\r\n\r\nline one\r\nline two\r\n")
			})
		}
	})
}

// wantNormalized checks a stored message has only CRLF line endings and
// contains each of subs.
func wantNormalized(t *testing.T, msg []byte, subs ...string) {
	t.Helper()
	if i := bareLineEnding(msg); i >= 0 {
		t.Errorf("stored message has a bare line ending at offset %d: %q", i, msg[max(0, i-30):min(len(msg), i+30)])
	}
	for _, sub := range subs {
		if !bytes.Contains(msg, []byte(sub)) {
			t.Errorf("stored message lacks %q:\n%s", sub, head(msg))
		}
	}
}
