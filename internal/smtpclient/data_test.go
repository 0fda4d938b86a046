package smtpclient

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDotWriter(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", ".\r\n"},
		{"one line", "hello\r\n", "hello\r\n.\r\n"},
		{"no final CRLF", "hello", "hello\r\n.\r\n"},
		{"dot lines stuffed", ".\r\n..\r\n.x\r\n", "..\r\n...\r\n..x\r\n.\r\n"},
		{"dot inside a line kept", "a.b\r\n .\r\n", "a.b\r\n .\r\n.\r\n"},
		{"dot first in the body", ".first", "..first\r\n.\r\n"},
		{"bare LF made CRLF", "a\nb\n", "a\r\nb\r\n.\r\n"},
		{"bare CR made CRLF", "a\rb\r", "a\r\nb\r\n.\r\n"},
		{"smuggling attempt <LF>.<CRLF>", "a\n.\r\nMAIL FROM:<x>\r\n", "a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"},
		{"smuggling attempt <CR>.<CR>", "a\r.\rb", "a\r\n..\r\nb\r\n.\r\n"},
		{"CR then dot", "\r.", "\r\n..\r\n.\r\n"},
		{"CRLF CRLF", "\r\n\r\n", "\r\n\r\n.\r\n"},
		{"trailing CR", "a\r", "a\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One octet at a time too, so state crosses every boundary.
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				var out bytes.Buffer
				bw := bufio.NewWriter(&out)
				d := &dotWriter{w: bw, lineStart: true}
				if _, err := io.Copy(d, r); err != nil {
					t.Fatal(err)
				}
				d.end()
				bw.Flush()
				if out.String() != tt.want {
					t.Errorf("%q → %q, want %q", tt.in, out.String(), tt.want)
				}
				if d.n != int64(out.Len()) {
					t.Errorf("counted %d octets, wrote %d", d.n, out.Len())
				}
			}
		})
	}
}

// reference is the dot-stuffing of RFC 5321 §4.5.2 octet by octet, with
// bare CR and LF made CRLF: what dotWriter must produce however its
// input is cut.
func reference(in []byte) string {
	var out strings.Builder
	lineStart := true
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c == '\r' || c == '\n' {
			out.WriteString("\r\n")
			lineStart = true
			if c == '\r' && i+1 < len(in) && in[i+1] == '\n' {
				i++
			}
			continue
		}
		if lineStart && c == '.' {
			out.WriteByte('.')
		}
		out.WriteByte(c)
		lineStart = false
	}
	if !lineStart {
		out.WriteString("\r\n")
	}
	return out.String() + ".\r\n"
}

// FuzzDotWriter checks dotWriter against reference for any input, written
// in chunks of any size (the fast path for whole CRLF lines included).
func FuzzDotWriter(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\nline\r\n.dot\r\nlast\r\n"), uint8(7))
	f.Add([]byte("a\r\r\nb\n.\r\n\r.x"), uint8(1))
	f.Add([]byte(strings.Repeat("0123456789\r\n", 50)+".\r\n"), uint8(200))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		d := &dotWriter{w: bw, lineStart: true}
		for p, n := in, int(chunk)+1; len(p) > 0; {
			n = min(n, len(p))
			if _, err := d.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		d.end()
		bw.Flush()
		if want := reference(in); out.String() != want {
			t.Fatalf("%q in chunks of %d → %q, want %q", in, int(chunk)+1, out.String(), want)
		}
		if d.n != int64(out.Len()) {
			t.Errorf("counted %d octets, wrote %d", d.n, out.Len())
		}
	})
}

// BenchmarkDotWriter is the delivery side's per-line work on a 100 KB
// content of 78-character lines (what smtp-source sends).
func BenchmarkDotWriter(b *testing.B) {
	line := strings.Repeat("x", 78) + "\r\n"
	content := []byte(strings.Repeat(line, 100<<10/len(line)))
	bw := bufio.NewWriterSize(io.Discard, 64<<10)
	b.SetBytes(int64(len(content)))
	for b.Loop() {
		d := &dotWriter{w: bw, lineStart: true}
		d.Write(content)
		d.end()
	}
}
