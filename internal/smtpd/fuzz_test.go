package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// referenceData is the DATA rule written the simple way: the data ends at
// the first <CRLF>.<CRLF> (counting the CRLF before DATA's first line);
// every line must end in CRLF with no CR or LF inside; a leading dot is
// removed. It returns the content, whether it was acceptable, and whether
// the end was found.
func referenceData(in []byte) (content []byte, ok, ended bool) {
	framed := append([]byte("\r\n"), in...)
	end := bytes.Index(framed, []byte("\r\n.\r\n"))
	if end < 0 {
		return nil, false, false
	}
	body := framed[2 : end+2] // the lines, each with its CRLF
	var out []byte
	for len(body) > 0 {
		i := bytes.Index(body, []byte("\r\n"))
		line := body[:i]
		body = body[i+2:]
		if bytes.ContainsAny(line, "\r\n") {
			return nil, false, true
		}
		line = bytes.TrimPrefix(line, []byte("."))
		out = append(append(out, line...), '\r', '\n')
	}
	return out, true, true
}

func FuzzDataReader(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody\r\n.\r\n", ".\r\n", "..x\r\n.\r\n",
		"a\n.\nb\r\n.\r\n", "a\r.\rb\r\n.\r\n", "a\r\n.\nb\r\n.\r\n", "a\n.\r\nb\r\n.\r\n",
		"x\r", "\r\n\r\n.\r\n", strings.Repeat("y", 40) + "\r\n.\r\n",
	} {
		f.Add([]byte(s), uint8(16))
	}
	f.Fuzz(func(t *testing.T, in []byte, bufSize uint8) {
		want, wantOK, ended := referenceData(in)
		br := bufio.NewReaderSize(bytes.NewReader(in), 16+int(bufSize))
		d := newDataReader(br, false, 0, 0)
		got, err := io.ReadAll(d)
		if !ended {
			if err == nil {
				t.Fatalf("%q: accepted without <CRLF>.<CRLF>", in)
			}
			return
		}
		if wantOK != (err == nil) {
			t.Fatalf("%q: reader error %v, reference ok %v", in, err, wantOK)
		}
		if wantOK && !bytes.Equal(got, want) {
			t.Fatalf("%q: content %q, reference %q", in, got, want)
		}
		if !wantOK {
			if derr := d.drain(); derr != nil {
				t.Fatalf("%q: drain: %v", in, derr)
			}
		}
		// After the end, the session reads exactly what followed it.
		rest, _ := io.ReadAll(br)
		framed := append([]byte("\r\n"), in...)
		end := bytes.Index(framed, []byte("\r\n.\r\n"))
		if !bytes.Equal(rest, framed[end+5:]) {
			t.Fatalf("%q: after the data the session would read %q, want %q", in, rest, framed[end+5:])
		}

		// Normalising may change content but never lets a bare CR or LF through.
		d = newDataReader(bufio.NewReaderSize(bytes.NewReader(in), 16+int(bufSize)), true, 0, 0)
		norm, err := io.ReadAll(d)
		if err != nil {
			t.Fatalf("%q: normalize: %v", in, err)
		}
		if bytes.ContainsAny(bytes.ReplaceAll(norm, []byte("\r\n"), nil), "\r\n") {
			t.Fatalf("%q: normalised content has a bare CR or LF: %q", in, norm)
		}
	})
}

// panicWatch fails the fuzz run if any session panicked (sessions recover
// and log, so a panic would otherwise go unnoticed).
type panicWatch struct{ n atomic.Int32 }

func (p *panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "session panic" {
		p.n.Add(1)
	}
	return nil
}
func (p *panicWatch) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicWatch) WithGroup(string) slog.Handler      { return p }

// FuzzSession feeds arbitrary client input to a real session over
// loopback: it must never panic, hang or accept a message a policy refuses.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@fabrikam.example>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\nx\r\n.\r\n",
		"HELO x\r\nMAIL FROM:<> SIZE=99999999999999999999\r\n",
		"EHLO x\r\nAUTH LOGIN\r\n*\r\nAUTH PLAIN =\r\n",
		"EHLO x\r\nMAIL FROM:<a@fabrikam.example>\r\nRCPT TO:<b@fabrikam.example>\r\nDATA\r\n",
		"EHLO x\r\nSTARTTLS\r\n", "\r\n\r\n\x00\xff", "RCPT TO:<\"\\\r\n",
	} {
		f.Add(s)
	}
	watch := &panicWatch{}
	port := freePort(f)
	cfg, err := configParse(strings.ReplaceAll(`
accepted_domains: [{domain: contoso.com}]
receive_connectors:
  - name: Fuzz
    bindings: [127.0.0.1:PORT]
    remote_ip_ranges: [127.0.0.1]
    permissions: [anonymous]
    auth_mechanisms: [PLAIN, LOGIN]
    require_tls_for_auth: false
    limits: {tarpit: 0s, idle_timeout: 2s, data_timeout: 2s, max_connections_per_ip: 1000}
`, "PORT", itoa(port)))
	if err != nil {
		f.Fatal(err)
	}
	spool := &memSpool{}
	srv := New(Options{Spool: spool, Log: slog.New(watch)})
	if err := srv.Apply(cfg); err != nil {
		f.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	f.Fuzz(func(t *testing.T, in string) {
		c, err := net.Dial("tcp", "127.0.0.1:"+itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() { io.WriteString(c, in+"\r\n.\r\nQUIT\r\n") }()
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("session did not end: %v", err)
		}
		if watch.n.Load() > 0 {
			t.Fatalf("a session panicked on %q", in)
		}
		for _, m := range spool.all() {
			for _, r := range m.env.Rcpts {
				if r.Addr.Domain() != "contoso.com" {
					t.Fatalf("relayed to %s without the relay right on %q", r.Addr, in)
				}
			}
		}
	})
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	var b [20]byte
	n := len(b)
	for i >= 10 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	n--
	b[n] = byte('0' + i)
	return string(b[n:])
}
