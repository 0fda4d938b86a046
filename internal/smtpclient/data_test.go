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
