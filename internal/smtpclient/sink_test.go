package smtpclient

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/syncbuf"
	"github.com/sluice-relay/sluice/internal/testport"
)

// Against a real upstream: Postfix's smtp-sink, which speaks PIPELINING
// and counts what it gets. Fifty messages go over one connection, with RSET
// between them as delivery does it.
func TestSmtpSink(t *testing.T) {
	addr, out := startSink(t)
	c := dialSink(t, addr)
	if !c.Supports("PIPELINING") {
		t.Errorf("smtp-sink extensions = %v, want PIPELINING", c.Extensions())
	}
	const n = 50
	for i := 0; i < n; i++ {
		if i > 0 {
			if err := c.Reset(context.Background()); err != nil {
				t.Fatalf("RSET before message %d: %v", i, err)
			}
		}
		res, err := c.Send(context.Background(), envelope("b@fabrikam.example", "c@fabrikam.example"), strings.NewReader(testBody+".dot line\r\n"))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if res.Data.Code != 250 || res.Rcpts[0].Code != 250 || res.Rcpts[1].Code != 250 {
			t.Fatalf("message %d: rcpts %v, data %v", i, res.Rcpts, res.Data)
		}
	}
	if err := c.Quit(); err != nil {
		t.Errorf("Quit: %v", err)
	}
	want := "sess=1 quit=1 mesg=50"
	waitFor(t, "smtp-sink to count "+want, func() bool { return strings.Contains(out.String(), want) })
}

// startSink runs Postfix's smtp-sink on a free loopback port; its output
// counts sessions and messages.
func startSink(t testing.TB) (string, *lockedBuffer) {
	sink, err := exec.LookPath("smtp-sink")
	if err != nil {
		if sink, err = exec.LookPath("/usr/sbin/smtp-sink"); err != nil {
			t.Skip("smtp-sink not installed; run scripts/install-test-deps")
		}
	}
	addr := freeAddr(t)
	// -c prints "sess=N quit=N mesg=N" counters as they change; 100 is
	// the listen backlog. As root it must be told whom to run as.
	args := []string{"-c", addr, "100"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	cmd := exec.Command(sink, args...)
	out := new(lockedBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("smtp-sink output: %q", out.String())
		}
	})
	return addr, out
}

// dialSink connects to the sink once it listens and says EHLO, without
// a transcript: many messages of it help nobody.
func dialSink(t testing.TB, addr string) *Client {
	o, _ := testOptions(t)
	o.Transcript = nil
	var c *Client
	var err error
	waitFor(t, "smtp-sink to listen on "+addr, func() bool {
		c, err = Dial(context.Background(), addr, o)
		return err == nil
	})
	t.Cleanup(func() { c.Close() })
	if err := c.Hello(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string { return testport.Addr(t) }

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer a child process writes to while the test
// reads it.
type lockedBuffer = syncbuf.Buffer
