package smtpclient

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/reply"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    reply.Reply
		wantErr error
	}{
		{name: "one line", in: "250 2.1.5 Recipient OK\r\n",
			want: reply.Reply{Code: 250, Enhanced: [3]int{2, 1, 5}, Text: "Recipient OK"}},
		{name: "no enhanced code", in: "220 mx.example ESMTP\r\n",
			want: reply.Reply{Code: 220, Text: "mx.example ESMTP"}},
		{name: "multi-line joined with LF, words kept", in: "550-5.7.1 Message rejected\r\n550-5.7.1 see https://x.example/why\r\n550 5.7.1 for details\r\n",
			want: reply.Reply{Code: 550, Enhanced: [3]int{5, 7, 1}, Text: "Message rejected\nsee https://x.example/why\nfor details"}},
		{name: "Microsoft basic auth", in: "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [AM0P190CA0001.EURP190.PROD.OUTLOOK.COM]\r\n",
			want: reply.Reply{Code: 535, Enhanced: [3]int{5, 7, 139}, Text: "Authentication unsuccessful, basic authentication is disabled. [AM0P190CA0001.EURP190.PROD.OUTLOOK.COM]"}},
		{name: "code alone", in: "250\r\n", want: reply.Reply{Code: 250}},
		{name: "empty last line (smtp-sink)", in: "250-smtp-sink\r\n250 \r\n", want: reply.Reply{Code: 250, Text: "smtp-sink\n"}},
		{name: "bare LF", in: "250 ok\n", want: reply.Reply{Code: 250, Text: "ok"}},
		{name: "garbage", in: "hello\r\n", wantErr: errMalformed},
		{name: "1xx is not SMTP", in: "150 ok\r\n", wantErr: errMalformed},
		{name: "codes differ", in: "250-a\r\n251 b\r\n", wantErr: errCodeMismatch},
		{name: "cut off", in: "250-a\r\n250 b", wantErr: io.ErrUnexpectedEOF},
		{name: "nothing", in: "", wantErr: io.EOF},
		{name: "line too long", in: "250 " + strings.Repeat("x", maxReplyLine) + "\r\n", wantErr: errLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readReply(bufio.NewReaderSize(strings.NewReader(tt.in), 16), func(string) {})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("reply = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseExtensions(t *testing.T) {
	text := "mx.example Hello\nPIPELINING\nsize 36700160\nAUTH LOGIN\nAUTH=PLAIN LOGIN\n8BITMIME\n"
	ext := parseExtensions(text)
	want := map[string]string{"PIPELINING": "", "SIZE": "36700160", "AUTH": "LOGIN PLAIN", "8BITMIME": ""}
	if !mapsEqual(ext, want) {
		t.Errorf("extensions = %q, want %q", ext, want)
	}
}

// FuzzReadReply: whatever a server sends, the reader returns a reply or an
// error, and a reply has a valid code.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "250-a\r\n250 b\r\n", "550 5.1.1 x\r\n", "250\r\n", "2", "421-\r\n421 \r\n", "999 x\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := readReply(bufio.NewReaderSize(strings.NewReader(in), 16), func(string) {})
		if err == nil && (r.Code < 200 || r.Code > 599) {
			t.Errorf("reply %v from %q", r, in)
		}
	})
}
