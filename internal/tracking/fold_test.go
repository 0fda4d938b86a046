package tracking

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// asciiLower is the obvious lower-casing lowerASCII must agree with.
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

func TestLowerASCII(t *testing.T) {
	// Every byte value in every one of the eight positions of a word,
	// and the tail that is done byte by byte.
	for pos := range 9 {
		for c := range 256 {
			src := bytes.Repeat([]byte{'Q'}, 9)
			src[pos] = byte(c)
			if got, want := lowerASCII(nil, src), asciiLower(src); !bytes.Equal(got, want) {
				t.Fatalf("lowerASCII(%q) = %q; want %q", src, got, want)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 0, 16)
	for range 10000 {
		src := make([]byte, r.IntN(40))
		for i := range src {
			src[i] = byte(r.IntN(256))
		}
		buf = lowerASCII(buf, src)
		if want := asciiLower(src); !bytes.Equal(buf, want) {
			t.Fatalf("lowerASCII(%q) = %q; want %q", src, buf, want)
		}
	}
	if got := lowerASCII(nil, []byte("App@Contoso.COM ÉLODIE")); string(got) != "app@contoso.com Élodie" {
		t.Errorf("got %q: UTF-8 must pass unchanged", got)
	}
}

func TestFoldNeedle(t *testing.T) {
	for in, want := range map[string]string{
		"App@Contoso.com":           "app@contoso.com",
		`"John Doe"@contoso.com`:    `\"john doe\"@contoso.com`,
		"<a&b@x>":                   "<a&b@x>", // written without HTML escapes
		"JOSÉ@EXÄMPLE.COM":          "mple.com",
		"é":                         "",
		"back\\slash@contoso.com":   `back\\slash@contoso.com`,
		"tab\there@contoso.com":     `tab\there@contoso.com`,
		"0K00000000000001":          "0k00000000000001",
		"line\u2028sep@contoso.com": `line\u2028sep@contoso.com`,
	} {
		if got := foldNeedle(in); string(got) != want {
			t.Errorf("foldNeedle(%q) = %q; want %q", in, got, want)
		}
	}
}
