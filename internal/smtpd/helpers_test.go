package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/testport"
)

// memSpool keeps accepted messages in memory for tests.
type memSpool struct {
	mu   sync.Mutex
	msgs []stored
	err  error // returned by Put when set
}

type stored struct {
	env  mail.Envelope
	body string
}

func (m *memSpool) Put(ctx context.Context, env *mail.Envelope, body io.Reader) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	env.Size = int64(len(b))
	m.msgs = append(m.msgs, stored{*env, string(b)})
	return nil
}

func (m *memSpool) all() []stored {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]stored(nil), m.msgs...)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int { return testport.Free(t) }

// testLogger sends the server's log to t.Log, so a failing test shows its
// own sessions.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// startServer runs a Server for the config text, in which every "PORT"
// is replaced by a free port; it returns the server, its spool and the
// port.
func startServer(t testing.TB, yaml string) (*Server, *memSpool, int) {
	t.Helper()
	port := freePort(t)
	yaml = strings.ReplaceAll(yaml, "PORT", fmt.Sprint(port))
	cfg, err := configParse(yaml)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	spool := &memSpool{}
	srv := New(Options{Spool: spool, Log: testLogger(t)})
	if err := srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, spool, port
}

// client is an expect-style SMTP client for driving the server by hand.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, port int) *client { return dialFrom(t, "127.0.0.1", port) }

// dialFrom connects from a given loopback source address (127.0.0.2, ...).
func dialFrom(t testing.TB, src string, port int) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// send writes raw bytes.
func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// reply reads one whole (possibly multi-line) reply and returns it with
// lines joined by "\n", or "EOF"/the error text if the connection ended.
func (c *client) reply() string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			if len(lines) == 0 {
				if err == io.EOF {
					return "EOF"
				}
				return err.Error()
			}
			return strings.Join(lines, "\n")
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// expect sends cmd (with CRLF) and checks the reply starts with want.
func (c *client) expect(cmd, want string) string {
	c.t.Helper()
	if cmd != "" {
		c.send(cmd + "\r\n")
	}
	got := c.reply()
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("after %q: got %q, want %q...", short(cmd), short(got), want)
	}
	return got
}

// startTLS upgrades the client connection.
func (c *client) startTLS(cfg *tls.Config) *tls.ConnectionState {
	c.t.Helper()
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
	st := tc.ConnectionState()
	return &st
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// configParse loads a test config, adding a send connector (smtpd's tests
// only need one to exist; their spool is in memory).
func configParse(yaml string) (*config.Config, error) {
	if !strings.Contains(yaml, "send_connectors:") {
		yaml += "\nsend_connectors: [{name: Drop, address_spaces: [\"*\"], delivery: directory, directory: drop}]\n"
	}
	return config.Parse("", []byte(yaml))
}

func netDial(port int) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err == nil {
		c.Close()
	}
	return c, err
}

// short keeps failure messages readable when a test sends megabytes.
func short(s string) string {
	if len(s) > 120 {
		return fmt.Sprintf("%s...(%d bytes)", s[:100], len(s))
	}
	return s
}
