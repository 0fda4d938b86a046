package cli

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal's controlling side and the terminal
// a command reads as its standard input.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0) // non-blocking: read deadlines work
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open the terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptmx, tty
}

// typeOnTerminal runs args with a terminal as standard input, types line
// once the command reads (echo off, or after a second), and returns what
// the terminal showed.
func typeOnTerminal(t *testing.T, line string, args ...string) (screen string, code int) {
	t.Helper()
	ptmx, tty := openPTY(t)
	done := make(chan int)
	var out, errb bytes.Buffer
	go func() { done <- Run(context.Background(), args, tty, &out, &errb) }()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS); err == nil && tio.Lflag&unix.ECHO == 0 {
			break
		}
	}
	ptmx.Write([]byte(line + "\n"))
	select {
	case code = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%v did not finish", args)
	}
	ptmx.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	b := make([]byte, 4096)
	n, _ := ptmx.Read(b)
	return string(b[:n]) + out.String() + errb.String(), code
}

// A secret or password typed on a terminal is not shown as it is typed.
func TestSecretsTypedOnATerminalAreNotEchoed(t *testing.T) {
	t.Setenv("SLUICE_PASSWORD", "")
	key := writeFile(t, t.TempDir(), "k", "first-node-passphrase-0123456789\n")
	const typed = "Upstream-Secret-42"
	screen, code := typeOnTerminal(t, typed, "secret", "encrypt", "--key-file", key)
	if code != 0 || strings.Contains(screen, typed) {
		t.Errorf("secret encrypt on a terminal = %d; the terminal showed:\n%s", code, screen)
	}
	// Nothing listens on port 1: only the password prompt matters.
	screen, _ = typeOnTerminal(t, typed, "test", "connect", "127.0.0.1:1", "--auth", "relay@contoso.com", "--timeout", "1s")
	if strings.Contains(screen, typed) {
		t.Errorf("test connect --auth on a terminal showed the password:\n%s", screen)
	}
}
