package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clientRun is what an external client did: its exit status and its output
// (swaks prints the whole SMTP conversation; the Python scripts print the
// replies they got).
type clientRun struct {
	name string
	args []string
	out  string
	exit int
	dir  string // python: the directory the script may write files into
}

// runClient executes a client with a deadline and collects stdout and stderr.
func runClient(t *testing.T, stdin []byte, name string, args ...string) clientRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	r := clientRun{name: name, args: args, out: out.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s did not finish within %v; output so far:\n%s", r.command(), clientTimeout, r.out)
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	case err != nil:
		t.Fatalf("cannot run %s: %v", name, err)
	}
	return r
}

func (r clientRun) command() string {
	return filepath.Base(r.name) + " " + strings.Join(r.args, " ")
}

// want fails the test unless the output contains each of subs.
func (r clientRun) want(t *testing.T, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.out, s) {
			t.Errorf("%s: output lacks %q; it was:\n%s", r.command(), s, r.out)
		}
	}
}

// wantNot fails the test if the output contains any of subs.
func (r clientRun) wantNot(t *testing.T, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(r.out, s) {
			t.Errorf("%s: output has %q, want it absent; it was:\n%s", r.command(), s, r.out)
		}
	}
}

// wantExit fails the test unless the client ended with status 0 (ok true)
// or with a failure status (ok false).
func (r clientRun) wantExit(t *testing.T, ok bool) {
	t.Helper()
	if ok && r.exit != 0 {
		t.Errorf("%s exited with status %d, want 0; output:\n%s", r.command(), r.exit, r.out)
	}
	if !ok && r.exit == 0 {
		t.Errorf("%s exited with status 0, want a failure; output:\n%s", r.command(), r.out)
	}
}

// swaks runs swaks against addr. Output is the conversation: "<-" lines are
// replies, "<~" replies inside TLS, "<**" and "<~*" error replies.
func swaks(t *testing.T, addr string, args ...string) clientRun {
	t.Helper()
	bin := skipWithout(t, "swaks")
	return runClient(t, nil, bin, append([]string{"--server", addr, "--timeout", "30s"}, args...)...)
}

var swaksSupport = sync.OnceValue(func() string {
	out, _ := exec.Command("swaks", "--support").CombinedOutput()
	return string(out)
})

// skipWithoutSwaksTLS skips a test that needs swaks to speak TLS: Debian's
// swaks only recommends the Perl module it needs, so an install with
// --no-install-recommends cannot do it.
func skipWithoutSwaksTLS(t *testing.T) {
	t.Helper()
	skipWithout(t, "swaks")
	if !strings.Contains(swaksSupport(), "TLS supported") {
		t.Skip("swaks cannot do TLS here (it needs Net::SSLeay): apt-get install libnet-ssleay-perl")
	}
}

// python runs a Python 3 script with args; it gets the script's directory
// as the first argument after the script name, for files it writes.
func python(t *testing.T, script string, args ...string) clientRun {
	t.Helper()
	bin := skipWithout(t, "python3")
	dir := t.TempDir()
	path := filepath.Join(dir, "client.py")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runClient(t, nil, bin, append([]string{path, dir}, args...)...)
	r.dir = dir
	if strings.Contains(r.out, "Traceback (most recent call last)") {
		t.Errorf("%s raised an exception:\n%s", r.command(), r.out)
	}
	return r
}

// rawConn is an SMTP conversation over a plain socket, for bytes no real
// client sends (SMTP smuggling) and for holding a session at a chosen point
// (mid-DATA at SIGTERM, connection limits).
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, from, addr string) *rawConn {
	t.Helper()
	c, err := dialFrom(from, addr)
	if err != nil {
		t.Fatalf("cannot connect to %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// write sends s exactly as it is.
func (c *rawConn) write(s string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(clientTimeout))
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Fatalf("write to %s: %v", c.c.RemoteAddr(), err)
	}
}

// reply reads one reply, all its lines, and returns it with CRLFs as "\n".
func (c *rawConn) reply() (string, error) {
	c.c.SetReadDeadline(time.Now().Add(clientTimeout))
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return strings.Join(lines, "\n"), err
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n"), nil
		}
	}
}

// expect reads a reply and fails the test unless its last line starts with
// prefix ("250", "550 5.6.11").
func (c *rawConn) expect(prefix string) string {
	c.t.Helper()
	r, err := c.reply()
	if err != nil {
		c.t.Fatalf("reading a reply from %s (want %q): %v; got %q", c.c.RemoteAddr(), prefix, err, r)
	}
	last := r[strings.LastIndex(r, "\n")+1:]
	if !strings.HasPrefix(last, prefix) {
		c.t.Fatalf("got reply %q, want one starting with %q", r, prefix)
	}
	return r
}

// cmd sends a command line and expects a reply starting with prefix.
func (c *rawConn) cmd(line, prefix string) string {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.expect(prefix)
}

// closed reports whether the server has closed the connection (EOF on the
// next read).
func (c *rawConn) closed() bool {
	c.c.SetReadDeadline(time.Now().Add(clientTimeout))
	_, err := c.r.ReadByte()
	return err != nil
}

func (c *rawConn) String() string { return fmt.Sprintf("%s->%s", c.c.LocalAddr(), c.c.RemoteAddr()) }
