package smtpclient

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkSend is the delivery session's hot path: one message after
// another over a kept connection to Postfix's smtp-sink, back to back as
// delivery sends waiting messages, the envelope pipelined and the
// content dot-stuffed on the way out.
func BenchmarkSend(b *testing.B) {
	for _, size := range []int{10 << 10, 100 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			addr, _ := startSink(b)
			body := benchBody(size)
			c := dialSink(b, addr)
			ctx := context.Background()
			env := envelope("b@fabrikam.example")
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for i := range b.N {
				res, err := c.Send(ctx, env, bytes.NewReader(body))
				if err != nil || res.Data.Code != 250 {
					b.Fatalf("message %d: %v %v", i, res, err)
				}
			}
		})
	}
}

// benchBody is a message of about size octets in 76-octet CRLF lines, a
// few of them starting with a dot.
func benchBody(size int) []byte {
	var sb strings.Builder
	sb.WriteString("From: a@contoso.example\r\nTo: b@fabrikam.example\r\nSubject: benchmark\r\n\r\n")
	for i := 0; sb.Len() < size; i++ {
		if i%100 == 99 {
			sb.WriteString(".")
		}
		sb.WriteString(strings.Repeat("x", 74) + "\r\n")
	}
	return []byte(sb.String())
}
