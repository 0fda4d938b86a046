package dsn

import (
	"bytes"
	"fmt"
	netmail "net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"

	"github.com/sluice-relay/sluice/internal/mail"
)

// dateLayout is RFC 5322 §3.3 date-time, the form of Date, Arrival-Date,
// Last-Attempt-Date and Will-Retry-Until (RFC 3464 §2.1.1).
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

func formatDate(t time.Time) string { return t.Format(dateLayout) }

// parseDate reads an RFC 5322 date, with the obsolete forms and a trailing
// comment ("(UTC)") other MTAs write.
func parseDate(s string) time.Time {
	t, err := netmail.ParseDate(strings.TrimSpace(removeComments(s)))
	if err != nil {
		return time.Time{}
	}
	return t
}

// field renders one "Name: value" line, folded by go-message at 76
// columns where the value has white space (RFC 5322 §2.2.3), with name
// spelled as given: go-message would write "Reporting-Mta", and admins
// compare these with the RFC and with Exchange's "Reporting-MTA".
func field(name, value string) ([]byte, error) {
	var h textproto.Header
	h.Add(name, value)
	var b bytes.Buffer
	if err := textproto.WriteHeader(&b, h); err != nil {
		return nil, fmt.Errorf("dsn: header field %s: %w", name, err)
	}
	out := b.Bytes()[:b.Len()-2] // the blank line that ends a header section
	copy(out, name)              // same length, only the case differs
	return out, nil
}

// fieldWriter writes fields one after the other and keeps the first error.
type fieldWriter struct {
	b   bytes.Buffer
	err error
}

func (w *fieldWriter) add(name, value string) {
	if w.err != nil {
		return
	}
	f, err := field(name, value)
	if err != nil {
		w.err = err
		return
	}
	w.b.Write(f)
}

// deliveryStatus renders the message/delivery-status body (RFC 3464 §2.1):
// the per-message block, then one block per recipient, each after a blank
// line. global allows UTF-8 (RFC 6533 §3).
func deliveryStatus(r *Report, global bool) ([]byte, error) {
	var w fieldWriter
	if r.EnvID != "" {
		w.add("Original-Envelope-Id", clean(decodeXtext(r.EnvID, global), global)) // RFC 3464 §2.2.1
	}
	w.add("Reporting-MTA", "dns; "+clean(r.ReportingMTA, global)) // §2.2.2
	if !r.ArrivalDate.IsZero() {
		w.add("Arrival-Date", formatDate(r.ArrivalDate)) // §2.2.5
	}
	if r.MessageID != "" {
		// §2.4 extension field; the §2.2 grammar puts these last.
		w.add("X-Sluice-Original-Id", clean(string(r.MessageID), false))
	}
	for i := range r.Recipients {
		rc := &r.Recipients[i]
		w.b.WriteString("\r\n")
		if rc.Original != "" {
			w.add("Original-Recipient", originalRecipient(rc.Original, global)) // §2.3.1
		}
		w.add("Final-Recipient", addressField(rc.Final, global)) // §2.3.2
		w.add("Action", clean(string(rc.Action), false))         // §2.3.3
		w.add("Status", statusString(rc.status()))               // §2.3.4
		if rc.RemoteMTA != "" {
			w.add("Remote-MTA", mtaField(rc.RemoteMTA, global)) // §2.3.5
		}
		if rc.Diagnostic != "" {
			w.add("Diagnostic-Code", diagnosticField(rc.Diagnostic, rc.RemoteMTA != "", global)) // §2.3.6
		}
		if !rc.LastAttempt.IsZero() {
			w.add("Last-Attempt-Date", formatDate(rc.LastAttempt)) // §2.3.7
		}
		if !rc.WillRetryUntil.IsZero() && rc.Action == ActionDelayed {
			w.add("Will-Retry-Until", formatDate(rc.WillRetryUntil)) // §2.3.9
		}
	}
	return w.b.Bytes(), w.err
}

func statusString(s [3]int) string { return fmt.Sprintf("%d.%d.%d", s[0], s[1], s[2]) }

// parseStatus reads "5.1.1" (RFC 3463 §2), ignoring a comment after it.
func parseStatus(s string) [3]int {
	s = strings.TrimSpace(removeComments(s))
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		s = s[:i]
	}
	p := strings.Split(s, ".")
	if len(p) != 3 {
		return [3]int{}
	}
	var st [3]int
	for i, x := range p {
		n, err := strconv.Atoi(x)
		if err != nil || n < 0 || n > 999 || x == "" || x[0] == '+' {
			return [3]int{}
		}
		st[i] = n
	}
	if st[0] != 2 && st[0] != 4 && st[0] != 5 {
		return [3]int{}
	}
	return st
}

// addressField is the value of Final-Recipient: rfc822 for an ASCII
// address; utf-8 otherwise (RFC 6533 §3), raw in a global report and with
// \x{HEX} escapes (utf-8-addr-xtext) in a plain one.
func addressField(a mail.Address, global bool) string {
	s := string(a)
	switch {
	case a.IsASCII():
		return "rfc822; " + clean(s, false)
	case global:
		return "utf-8; " + clean(s, true)
	}
	return "utf-8; " + embedUnicode(s)
}

// originalRecipient is the value of Original-Recipient: the ORCPT type and
// address, the address decoded from xtext (RFC 3461 §4.2). A value whose
// decoding yields something unprintable is written as given.
func originalRecipient(orcpt string, global bool) string {
	typ, addr, ok := strings.Cut(orcpt, ";")
	if !ok {
		typ, addr = "rfc822", orcpt
	}
	typ, addr = strings.TrimSpace(typ), strings.TrimSpace(addr)
	if !global && strings.EqualFold(typ, "utf-8") {
		// RFC 6533 §3: utf-8-addr-xtext in a plain report.
		return "utf-8; " + embedUnicode(decodeEmbedded(decodeXtext(addr, true)))
	}
	return clean(typ, false) + "; " + clean(decodeXtext(addr, global), global)
}

// parseAddress splits "rfc822; <bob@x>" into its type (lower case) and
// address, the latter with \x{HEX} escapes resolved (RFC 6533 §3).
func parseAddress(v string) (typ, addr string) {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok {
		typ, addr = "rfc822", v
	}
	typ = strings.ToLower(strings.TrimSpace(typ))
	addr = strings.TrimSpace(addr)
	if len(addr) >= 2 && addr[0] == '<' && addr[len(addr)-1] == '>' {
		addr = addr[1 : len(addr)-1]
	}
	if typ == "utf-8" {
		addr = decodeEmbedded(addr)
	}
	return typ, addr
}

// parseFinal makes a mail.Address of a Final-Recipient value, normalised
// like every other address when it parses, as written when it does not.
func parseFinal(v string) mail.Address {
	_, addr := parseAddress(v)
	if a, err := mail.ParseMailbox(addr, true); err == nil {
		return a
	}
	return mail.Address(addr)
}

// mtaField is the value of Remote-MTA (RFC 3464 §2.3.5) from the queue's
// "host [ip]" form: "dns; host (ip)", the address in a comment as mox does;
// "dns; [ip]" when only the address is known.
func mtaField(s string, global bool) string {
	s = strings.TrimSpace(s)
	host, lit, _ := strings.Cut(s, " ")
	lit = strings.TrimSpace(lit)
	if ip, ok := ipLiteral(host); ok {
		return "dns; [" + ip.String() + "]"
	}
	v := "dns; " + clean(host, global)
	if ip, ok := ipLiteral(lit); ok {
		v += " (" + ip.String() + ")"
	} else if lit != "" {
		v += " (" + clean(strings.NewReplacer("(", "", ")", "").Replace(lit), global) + ")"
	}
	return v
}

// ipLiteral reads "192.0.2.1", "[192.0.2.1]", "(192.0.2.1)" or
// "[IPv6:2001:db8::1]", and with a port as delivery writes the address it
// connected to: "192.0.2.1:25", "[192.0.2.1:25]", "[::1]:25", "[[::1]:25]".
func ipLiteral(s string) (netip.Addr, bool) {
	for _, c := range []string{s, strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")} {
		if ap, err := netip.ParseAddrPort(c); err == nil {
			return ap.Addr(), true
		}
	}
	s = strings.Trim(s, "[]()")
	s = strings.TrimPrefix(s, "IPv6:")
	ip, err := netip.ParseAddr(s)
	return ip, err == nil
}

// parseMTA undoes mtaField: "dns; host (192.0.2.1)" → "host [192.0.2.1]".
func parseMTA(v string) string {
	comment := ""
	if i := strings.IndexByte(v, '('); i >= 0 {
		if j := strings.IndexByte(v[i:], ')'); j > 0 {
			comment = strings.TrimSpace(v[i+1 : i+j])
		}
	}
	v = removeComments(v)
	if _, name, ok := strings.Cut(v, ";"); ok {
		v = name
	}
	v = strings.TrimSpace(v)
	if ip, ok := ipLiteral(comment); ok && v != "" && v[0] != '[' {
		v += " [" + ip.String() + "]"
	}
	return v
}

// diagnosticField is the value of Diagnostic-Code (RFC 3464 §2.3.6): the
// reply's lines on one field, which field() folds. Type smtp is the
// remote MTA's reply (§2.3.6), so only a reply with a remote MTA that
// gave it has it; any other text, and a reply in Sluice's own words (a
// message it did not send, an administrator's removal), gets Sluice's own
// type, as Postfix writes "X-Postfix; connect to ...: Connection refused".
func diagnosticField(d string, remote, global bool) string {
	lines := strings.Split(strings.ReplaceAll(d, "\r", ""), "\n")
	var parts []string
	for _, l := range lines {
		if l = strings.TrimSpace(clean(l, global)); l != "" {
			parts = append(parts, l)
		}
	}
	text := strings.Join(parts, " ")
	if remote && isSMTPReply(text) {
		return "smtp; " + text
	}
	return "X-Sluice; " + text
}

// isSMTPReply reports whether s starts like a reply line: three digits,
// the first 2, 4 or 5, then a space, a '-' or the end (RFC 5321 §4.2).
func isSMTPReply(s string) bool {
	if len(s) < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return false
	}
	return len(s) == 3 || s[3] == ' ' || s[3] == '-'
}

// parseDiagnostic returns the text of a Diagnostic-Code after its type
// ("smtp;", "X-Postfix;").
func parseDiagnostic(v string) string {
	typ, text, ok := strings.Cut(v, ";")
	typ = strings.TrimSpace(typ)
	if ok && typ != "" && !strings.ContainsAny(typ, " \t") {
		return strings.TrimSpace(text)
	}
	return strings.TrimSpace(v) // no type: a reply someone wrote without one
}

// clean makes s fit in a header field: control characters become spaces,
// and outside a global report, non-ASCII becomes '?' (RFC 3464 §2.1.1: the
// fields are US-ASCII). Invalid UTF-8 is never passed on.
func clean(s string, utf8OK bool) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == utf8.RuneError:
			return '?'
		case r < 0x20 || r == 0x7f:
			return ' '
		case r >= 0x80 && !utf8OK:
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// decodeXtext decodes RFC 3461 §4 xtext: "+" and two upper-case hex digits
// stand for one octet. A '+' not followed by those is kept, so a value that
// was decoded already comes through unchanged. If the result is not
// printable (ASCII, or UTF-8 when utf8OK), s is returned as it was.
func decodeXtext(s string, utf8OK bool) string {
	if !strings.Contains(s, "+") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '+' && i+2 < len(s) && isUpperHex(s[i+1]) && isUpperHex(s[i+2]) {
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(n))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	out := b.String()
	if !utf8.ValidString(out) {
		return s
	}
	for _, r := range out {
		if r < 0x20 || r == 0x7f || r >= 0x80 && !utf8OK {
			return s
		}
	}
	return out
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

// embedUnicode writes non-ASCII characters as \x{HEX} (RFC 6533 §3,
// EmbeddedUnicodeChar), for a UTF-8 address in a plain delivery-status.
func embedUnicode(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r >= 0x80 || r == '\\':
			fmt.Fprintf(&b, `\x{%X}`, r)
		case r < 0x20 || r == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// decodeEmbedded undoes embedUnicode; malformed escapes are kept as text.
func decodeEmbedded(s string) string {
	if !strings.Contains(s, `\x{`) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, `\x{`)
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		n, err := strconv.ParseUint(s[i+3:i+j], 16, 32)
		b.WriteString(s[:i])
		if err != nil || j == 3 || j > 9 || !utf8.ValidRune(rune(n)) {
			b.WriteString(s[i : i+j+1])
		} else {
			b.WriteRune(rune(n))
		}
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

// removeComments drops RFC 5322 comments, "(...)", nested or not.
func removeComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}
