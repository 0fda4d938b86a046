package cli

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// display makes one field from outside Sluice safe to print on the
// operator's terminal: a client's EHLO name or AUTH user (any bytes), a
// Message-ID header, an upstream's reply (with MX delivery, any server on
// the Internet). Printed raw, an ESC or a C1 CSI in them would let that
// client or server retitle, clear or rewrite the admin's terminal, and a
// tab or line break would break the table it stands in.
//
// CR and LF become \r and \n, other C0 controls and DEL \xNN, as the
// protocol log writes them (protolog's escaping keeps tab and lets C1 and
// bytes that are not UTF-8 through, which suits a CSV file but not a
// terminal); a tab becomes a space; C1 controls (U+0080–U+009F, which
// terminals take as ESC sequences) \u00NN; a byte that is not UTF-8 \xNN,
// since a terminal not in UTF-8 takes 0x9B for CSI.
//
// JSON output needs none of this: encoding/json escapes controls.
func display(s string) string {
	if safeForTerminal(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteByte(' ')
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// safeForTerminal reports whether display would leave s as it is; most
// fields are, and are printed without a copy.
func safeForTerminal(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f })
}

// displayAll is display for each of a list, for fields joined into one
// column.
func displayAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = display(s)
	}
	return out
}
