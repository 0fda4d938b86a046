package smtpclient

import (
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/mail"
)

func TestXtext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bob@example.com", "bob@example.com"},
		{"a+b@example.com", "a+2Bb@example.com"},
		{"a=b c", "a+3Db+20c"},
		{"already+2Bencoded", "already+2Bencoded"},
		{"lower+2bhex", "lower+2B2bhex"}, // lower case is no xtext escape
		{"bob+dev@example.net", "bob+2Bdev@example.net"},
		{"upper+BCtag", "upper+BCtag"},
		{"plus at end+", "plus+20at+20end+2B"},
		{"plus+4", "plus+2B4"},
		{"jörg", "j+C3+B6rg"},
		{"\x01~!", "+01~!"},
	}
	for _, tt := range tests {
		if got := xtext(tt.in); got != tt.want {
			t.Errorf("xtext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNotify(t *testing.T) {
	tests := []struct {
		n    mail.Notify
		want string
	}{
		{mail.NotifyDefault, ""},
		{mail.NotifyNever, "NEVER"},
		{mail.NotifySuccess, "SUCCESS"},
		{mail.NotifyDelay | mail.NotifyFailure, "FAILURE,DELAY"},
		{mail.NotifySuccess | mail.NotifyFailure | mail.NotifyDelay, "SUCCESS,FAILURE,DELAY"},
	}
	for _, tt := range tests {
		if got := notify(tt.n); got != tt.want {
			t.Errorf("notify(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

// FuzzXtext: ENVID and ORCPT are the client's, passed on as they came.
// What goes on the wire must be valid xtext (RFC 3461 §4), valid xtext
// must pass unchanged, and a value with no "+XX" in it must decode back
// to itself.
func FuzzXtext(f *testing.F) {
	for _, s := range []string{"bob@example.com", "a+b=c d", "already+2Bencoded", "lower+2bhex", "+", "+4", "jörg\x00\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := xtext(s)
		valid := func(x string) bool {
			for i := 0; i < len(x); i++ {
				switch c := x[i]; {
				case c == '+':
					if i+2 >= len(x) || !isUpperHex(x[i+1]) || !isUpperHex(x[i+2]) {
						return false
					}
					i += 2
				case c < '!' || c > '~' || c == '=':
					return false
				}
			}
			return true
		}
		if !valid(out) {
			t.Fatalf("xtext(%q) = %q: not xtext", s, out)
		}
		if valid(s) && out != s {
			t.Fatalf("xtext(%q) = %q: valid xtext changed", s, out)
		}
		if xtext(out) != out {
			t.Fatalf("xtext(%q) = %q, and again %q", s, out, xtext(out))
		}
		hasEscape := false
		for i := 0; i+2 < len(s); i++ {
			hasEscape = hasEscape || s[i] == '+' && isUpperHex(s[i+1]) && isUpperHex(s[i+2])
		}
		if !hasEscape {
			var dec []byte
			for i := 0; i < len(out); i++ {
				if out[i] == '+' {
					var v byte
					for _, c := range []byte(out[i+1 : i+3]) {
						v = v<<4 | byte(strings.IndexByte("0123456789ABCDEF", c))
					}
					dec = append(dec, v)
					i += 2
					continue
				}
				dec = append(dec, out[i])
			}
			if string(dec) != s {
				t.Fatalf("xtext(%q) = %q decodes to %q", s, out, dec)
			}
		}
	})
}
