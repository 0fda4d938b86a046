package smtpd

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sluice-relay/sluice/internal/reply"
)

// readData runs the DATA reader over in and returns the content, the error
// Read gave, and what is left to read after drain (the next "command").
func readData(in string, normalize bool, maxSize int64, maxLine, bufSize int) (content string, readErr error, rest string, drainErr error) {
	br := bufio.NewReaderSize(iotest.HalfReader(strings.NewReader(in)), bufSize)
	d := newDataReader(br, normalize, maxSize, maxLine)
	b, readErr := io.ReadAll(d)
	drainErr = d.drain()
	r, _ := io.ReadAll(br)
	return string(b), readErr, string(r), drainErr
}

func TestDataReader(t *testing.T) {
	const next = "QUIT\r\n"
	tests := []struct {
		name      string
		in        string
		normalize bool
		maxSize   int64
		maxLine   int
		want      string // content; ignored when wantErr is set
		wantErr   string // reply line, "" for none
		wantRest  string // what the session reads next
	}{
		{name: "simple", in: "Subject: x\r\n\r\nhello\r\n.\r\n" + next, want: "Subject: x\r\n\r\nhello\r\n", wantRest: next},
		{name: "empty message", in: ".\r\n" + next, want: "", wantRest: next},
		{name: "dot stuffing removed", in: "..leading\r\n...\r\n.\r\n" + next, want: ".leading\r\n..\r\n", wantRest: next},
		{name: "dot in the middle kept", in: "a.b\r\n .\r\n.\r\n", want: "a.b\r\n .\r\n"},
		{name: "no final newline before dot is content", in: "x\r\n.x\r\n.\r\n", want: "x\r\nx\r\n"},

		// SMTP smuggling: only <CRLF>.<CRLF> ends the data; every variant is content and refused.
		{name: "smuggle LF.LF", in: "a\n.\nMAIL FROM:<x@evil>\r\n.\r\n" + next, wantErr: reply.BareLineEnding.Error(), wantRest: next},
		{name: "smuggle CRLF.LF", in: "a\r\n.\nMAIL FROM:<x@evil>\r\n.\r\n" + next, wantErr: reply.BareLineEnding.Error(), wantRest: next},
		{name: "smuggle LF.CRLF", in: "a\n.\r\nMAIL FROM:<x@evil>\r\n.\r\n" + next, wantErr: reply.BareLineEnding.Error(), wantRest: next},
		{name: "smuggle CR.CR", in: "a\r.\rMAIL FROM:<x@evil>\r\n.\r\n" + next, wantErr: reply.BareLineEnding.Error(), wantRest: next},
		{name: "smuggle CRLF.CR", in: "a\r\n.\rMAIL FROM:<x@evil>\r\n.\r\n" + next, wantErr: reply.BareLineEnding.Error(), wantRest: next},
		{name: "smuggle CR.CRLF", in: "a\r.\r\nMAIL FROM:<x@evil>\r\n.\r\n" + next, wantErr: reply.BareLineEnding.Error(), wantRest: next},
		{name: "bare LF line", in: "a\nb\r\n.\r\n" + next, wantErr: reply.BareLineEnding.Error(), wantRest: next},
		{name: "bare CR inside line", in: "a\rb\r\n.\r\n" + next, wantErr: reply.BareLineEnding.Error(), wantRest: next},

		// Normalising: bare endings become CRLF, and still only <CRLF>.<CRLF> ends the data.
		{name: "normalize LF lines", normalize: true, in: "a\nb\n\r\n.\r\n" + next, want: "a\r\nb\r\n\r\n", wantRest: next},
		{name: "normalize smuggle LF.LF stays content", normalize: true, in: "a\n.\nMAIL FROM:<x@evil>\r\n.\r\n" + next,
			want: "a\r\n\r\nMAIL FROM:<x@evil>\r\n", wantRest: next},
		{name: "normalize LF.CRLF is content", normalize: true, in: "a\n.\r\nb\r\n.\r\n" + next, want: "a\r\n\r\nb\r\n", wantRest: next},
		{name: "normalize bare CR", normalize: true, in: "a\rb\r\n.\r\n", want: "a\r\nb\r\n"},

		// Limits: the error comes once the limit is passed; the rest is drained.
		{name: "size limit exact", maxSize: 8, in: "1234567\r\n.\r\n", wantErr: "552 5.3.4 Message size exceeds fixed maximum message size of 8 bytes"},
		{name: "size within limit", maxSize: 9, in: "1234567\r\n.\r\n", want: "1234567\r\n"},
		{name: "size limit drains", maxSize: 4, in: strings.Repeat("abcdefgh\r\n", 100) + ".\r\n" + next, wantErr: "552 5.3.4 Message size exceeds fixed maximum message size of 4 bytes", wantRest: next},
		{name: "line length", maxLine: 10, in: "12345678901\r\n.\r\n" + next, wantErr: reply.DataLineLengthFor(10).Error(), wantRest: next},
		{name: "line length exact", maxLine: 10, in: "1234567890\r\n.\r\n", want: "1234567890\r\n"},
		{name: "long line over buffer", in: strings.Repeat("x", 100) + "\r\n.\r\n" + next, want: strings.Repeat("x", 100) + "\r\n", wantRest: next},
		{name: "long dot line over buffer", in: "." + strings.Repeat("x", 100) + "\r\n.\r\n", want: strings.Repeat("x", 100) + "\r\n"},
		{name: "long line with bare LF after buffer", in: strings.Repeat("x", 100) + "\n.\r\n" + ".\r\n", wantErr: reply.BareLineEnding.Error()},
	}
	for _, tc := range tests {
		for _, bufSize := range []int{16, 4096} {
			got, err, rest, derr := readData(tc.in, tc.normalize, tc.maxSize, tc.maxLine, bufSize)
			if derr != nil {
				t.Errorf("%s (buf %d): drain: %v", tc.name, bufSize, derr)
				continue
			}
			if tc.wantErr != "" {
				var r reply.Reply
				if !errors.As(err, &r) || r.Error() != tc.wantErr {
					t.Errorf("%s (buf %d): error %v, want %q", tc.name, bufSize, err, tc.wantErr)
				}
			} else if err != nil || got != tc.want {
				t.Errorf("%s (buf %d): got %q, %v; want %q", tc.name, bufSize, got, err, tc.want)
			}
			if rest != tc.wantRest {
				t.Errorf("%s (buf %d): after the data the session would read %q, want %q", tc.name, bufSize, rest, tc.wantRest)
			}
		}
	}
}

func TestDataReaderUnexpectedEOF(t *testing.T) {
	_, err, _, derr := readData("abc\r\n", false, 0, 0, 4096)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(derr, io.ErrUnexpectedEOF) {
		t.Fatalf("read %v, drain %v; want unexpected EOF from both", err, derr)
	}
}
