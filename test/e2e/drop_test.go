package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// dropped is one .eml file from the drop directory: the envelope Sluice
// wrote in front (X-Sender, X-Receiver) and the message after it.
type dropped struct {
	path   string
	sender string   // X-Sender as written: "<app@contoso.com>"
	rcpts  []string // X-Receiver fields as written
	msg    []byte   // the message: Sluice's trace fields, then what the client sent
}

func parseDropped(path string, raw []byte) *dropped {
	d := &dropped{path: path}
	rest := raw
	for {
		line, after, ok := bytes.Cut(rest, []byte("\r\n"))
		if !ok {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("X-Sender: ")); ok {
			d.sender = string(v)
		} else if v, ok := bytes.CutPrefix(line, []byte("X-Receiver: ")); ok {
			d.rcpts = append(d.rcpts, string(v))
		} else {
			break
		}
		rest = after
	}
	d.msg = rest
	return d
}

// dropFiles reads every complete .eml in dir (temporary files start with a
// dot and are renamed into place once fsynced).
func dropFiles(t *testing.T, dir string) []*dropped {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var out []*dropped
	for _, n := range names {
		if strings.HasPrefix(filepath.Base(n), ".") {
			continue
		}
		raw, err := os.ReadFile(n)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			t.Fatal(err)
		}
		out = append(out, parseDropped(n, raw))
	}
	return out
}

// messagesTo returns the dropped messages with rcpt among their X-Receiver
// fields.
func messagesTo(t *testing.T, dir, rcpt string) []*dropped {
	t.Helper()
	var out []*dropped
	for _, d := range dropFiles(t, dir) {
		for _, r := range d.rcpts {
			if strings.EqualFold(r, "<"+rcpt+">") {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// waitMessage polls dir until a message for rcpt is there and returns it.
func waitMessage(t *testing.T, dir, rcpt string) *dropped {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if ms := messagesTo(t, dir, rcpt); len(ms) > 0 {
			return ms[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message for <%s> in %s within %v; the drop directory has %s", rcpt, dir, waitTimeout, dropSummary(t, dir))
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dropSummary(t *testing.T, dir string) string {
	var parts []string
	for _, d := range dropFiles(t, dir) {
		parts = append(parts, fmt.Sprintf("%s (from %s to %s)", filepath.Base(d.path), d.sender, strings.Join(d.rcpts, ",")))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}

var barrierSeq atomic.Int64

// barrier sends one more message through addr (from 127.0.0.1, null
// sender, to a fresh address at domain) and waits for it in the drop
// directory. A test that asserts a message was NOT stored calls it first:
// anything the server had accepted earlier has been stored by then, so
// "not there" means "never accepted", not "not yet written".
func (s *sluice) barrier(addr, domain string) {
	s.t.Helper()
	rcpt := fmt.Sprintf("barrier-%d@%s", barrierSeq.Add(1), domain)
	c := dialRaw(s.t, "", addr)
	c.expect("220 ")
	c.cmd("EHLO barrier.test", "250")
	c.cmd("MAIL FROM:<>", "250")
	c.cmd("RCPT TO:<"+rcpt+">", "250")
	c.cmd("DATA", "354")
	c.write("Subject: barrier\r\n\r\nbarrier\r\n.\r\n")
	c.expect("250 ")
	c.cmd("QUIT", "221")
	waitMessage(s.t, s.dropDir, rcpt)
}

// splitTrace splits a stored message into the Received field Sluice put
// in front (with its continuation lines) and the rest.
func splitTrace(t *testing.T, msg []byte) (received, rest []byte) {
	t.Helper()
	if !bytes.HasPrefix(msg, []byte("Received: ")) {
		t.Fatalf("the stored message does not start with Sluice's Received field:\n%s", head(msg))
	}
	i := bytes.Index(msg, []byte("\r\n"))
	for i >= 0 && i+2 < len(msg) && (msg[i+2] == ' ' || msg[i+2] == '\t') {
		j := bytes.Index(msg[i+2:], []byte("\r\n"))
		if j < 0 {
			break
		}
		i += 2 + j
	}
	return msg[:i+2], msg[i+2:]
}

// head is the start of a message, for failure messages.
func head(msg []byte) string {
	if len(msg) > 1500 {
		return string(msg[:1500]) + "\n[...]"
	}
	return string(msg)
}

// bareLineEnding returns the offset of the first CR not followed by LF or
// LF not preceded by CR, or -1.
func bareLineEnding(b []byte) int {
	for i, c := range b {
		switch c {
		case '\r':
			if i+1 >= len(b) || b[i+1] != '\n' {
				return i
			}
		case '\n':
			if i == 0 || b[i-1] != '\r' {
				return i
			}
		}
	}
	return -1
}
