package tracking

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"

	"github.com/sluice-relay/sluice/internal/mail"
)

// Case-insensitive search: the query's addresses are lower-cased once
// (foldNeedle), each block of the files is lower-cased into scratch
// space (lowerASCII), and the one is searched for in the other with the
// vectorised bytes.Index.

// foldNeedle is what to search the lower-cased lines for to find s in
// any case: s as appendRecord writes it inside a JSON string (a quote in
// a quoted local part becomes \"), in ASCII lower case. Lines are lower-
// cased in ASCII only, so for an s with other letters (SMTPUTF8) the
// needle is its longest ASCII run, and the decoded event decides.
func foldNeedle(s string) []byte {
	var enc bytes.Buffer
	e := json.NewEncoder(&enc)
	e.SetEscapeHTML(false)
	e.Encode(s) // a string always encodes
	b := bytes.TrimSuffix(enc.Bytes(), []byte("\n"))
	b = b[1 : len(b)-1] // the quotes
	if !mail.ASCII(b) {
		var best []byte
		for len(b) > 0 {
			i := 0
			for i < len(b) && b[i] < utf8.RuneSelf {
				i++
			}
			if i > len(best) {
				best = b[:i]
			}
			b = b[i:]
			for len(b) > 0 && b[0] >= utf8.RuneSelf {
				b = b[1:]
			}
		}
		b = best
	}
	return lowerASCII(nil, b)
}

// lowerASCII writes src with ASCII letters in lower case into dst's
// storage and returns it. Eight bytes at a time: this runs over every
// byte of the files a query reads.
func lowerASCII(dst, src []byte) []byte {
	if cap(dst) < len(src) {
		dst = make([]byte, len(src))
	}
	dst = dst[:len(src)]
	i := 0
	for ; i+8 <= len(src); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], lower8(binary.LittleEndian.Uint64(src[i:])))
	}
	for ; i < len(src); i++ {
		c := src[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
	return dst
}

// lower8 lower-cases the ASCII capitals among eight bytes at once and
// leaves every other byte (UTF-8 included) alone. With h a byte's low
// seven bits, h+0x3f has its top bit set when h >= 'A', and h+0x25 when
// h > 'Z'; neither sum carries into the next byte.
func lower8(x uint64) uint64 {
	const ones, top = 0x0101010101010101, 0x8080808080808080
	h := x &^ top
	geA := h + (0x80-'A')*ones
	gtZ := h + (0x80-'Z'-1)*ones
	upper := geA &^ gtZ &^ x & top
	return x | upper>>2
}
