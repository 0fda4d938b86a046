package smtpd

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// message is a realistic message of about size octets: a header of a
// dozen fields, then base64-like lines, some starting with a dot.
func message(size int) []byte {
	var b bytes.Buffer
	for i := range 12 {
		fmt.Fprintf(&b, "X-Field-%d: value number %d with some text in it\r\n", i, i)
	}
	b.WriteString("\r\n")
	for i := 0; b.Len() < size; i++ {
		if i%50 == 0 {
			b.WriteString("..a line that starts with a dot\r\n")
		}
		b.WriteString(strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", 3)[:76] + "\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

// BenchmarkDataReader is the DATA hot path: line checks, dot-unstuffing,
// the end marker, per message of 10 KB and 100 KB.
func BenchmarkDataReader(b *testing.B) {
	for _, size := range []int{10 << 10, 100 << 10} {
		msg := message(size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			r := bytes.NewReader(msg)
			br := bufio.NewReaderSize(r, 8192)
			for range b.N {
				r.Reset(msg)
				br.Reset(r)
				d := newDataReader(br, false, 64<<20, 65536)
				if _, err := io.Copy(io.Discard, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadHeader parses the header section of a message as smtpd
// does before adding its trace fields.
func BenchmarkReadHeader(b *testing.B) {
	msg := message(10 << 10)
	b.SetBytes(int64(bytes.Index(msg, []byte("\r\n\r\n")) + 4))
	b.ReportAllocs()
	for range b.N {
		if _, err := readHeader(bytes.NewReader(msg), 256<<10); err != nil {
			b.Fatal(err)
		}
	}
}
