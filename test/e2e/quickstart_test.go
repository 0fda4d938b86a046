package e2e

import (
	"bytes"
	"net"
	"path/filepath"
	"testing"
)

// TestQuickstart is the README's first step: `sluice serve` with no config
// listens on 127.0.0.1:2525 and writes what swaks sends under
// ./sluice-data/drop.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	skipWithout(t, "swaks")
	const addr = "127.0.0.1:2525" // fixed by the embedded default
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the embedded default listens on %s, which is in use here (%v); stop whatever holds it to run this test", addr, err)
	}
	ln.Close()

	dir := t.TempDir()
	s := &sluice{t: t, dir: dir, dropDir: filepath.Join(dir, "sluice-data", "drop")}
	s.start("serve") // no -config; the working directory is dir
	s.waitReady(listen(addr))

	r := swaks(t, addr, "--from", "app@example.com", "--to", "bob@example.net", "--header", "Subject: quickstart")
	r.wantExit(t, true)
	r.want(t, "<-  250 2.6.0")

	m := waitMessage(t, s.dropDir, "bob@example.net")
	if m.sender != "<app@example.com>" {
		t.Errorf("X-Sender is %q, want <app@example.com>", m.sender)
	}
	if len(m.rcpts) != 1 {
		t.Errorf("X-Receiver fields %q, want just <bob@example.net>", m.rcpts)
	}
	received, rest := splitTrace(t, m.msg)
	for _, want := range []string{`(connector "Default")`, "for <bob@example.net>", "with ESMTP id "} {
		if !bytes.Contains(received, []byte(want)) {
			t.Errorf("Received field lacks %q:\n%s", want, received)
		}
	}
	if !bytes.Contains(rest, []byte("Subject: quickstart\r\n")) {
		t.Errorf("stored message lacks the Subject swaks sent:\n%s", head(m.msg))
	}
}
