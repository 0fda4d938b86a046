package mail

import (
	"errors"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Address is an envelope address as it travels: "local@domain", with the
// domain in lower case and the local part as the client wrote it (RFC 5321
// §2.4: only the receiving host may interpret the local part's case). The
// empty Address is the null reverse path "<>".
type Address string

// Null is the null reverse path of bounces (RFC 5321 §4.5.5).
const Null Address = ""

// IsNull reports whether a is the null reverse path.
func (a Address) IsNull() bool { return a == "" }

// Local returns the part before the last '@'.
func (a Address) Local() string {
	i := strings.LastIndexByte(string(a), '@')
	if i < 0 {
		return string(a)
	}
	return string(a[:i])
}

// Domain returns the part after the last '@', "" for a bare "postmaster".
func (a Address) Domain() string {
	i := strings.LastIndexByte(string(a), '@')
	if i < 0 {
		return ""
	}
	return string(a[i+1:])
}

// String is the address without brackets; "<>" for the null path.
func (a Address) String() string {
	if a == "" {
		return "<>"
	}
	return string(a)
}

// Path is the address in angle brackets, as it goes on the wire.
func (a Address) Path() string { return "<" + string(a) + ">" }

// IsASCII reports whether the address can be sent without SMTPUTF8.
func (a Address) IsASCII() bool {
	for i := 0; i < len(a); i++ {
		if a[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Errors from ParsePath, each of which the session turns into a 501 that says
// what is wrong with the address.
var (
	ErrNoBrackets   = errors.New("address must be in angle brackets, like <user@example.com>")
	ErrNoDomain     = errors.New("address has no domain; write user@example.com")
	ErrBadLocal     = errors.New("local part (before @) has characters that are not allowed")
	ErrBadDomain    = errors.New("domain is not a valid host name or address literal")
	ErrTooLong      = errors.New("address is over 256 octets, the most RFC 5321 allows")
	ErrLocalTooLong = errors.New("local part (before @) is over 64 octets, the most RFC 5321 allows; shorten it")
	ErrNonASCII     = errors.New("address has non-ASCII characters; the client must use SMTPUTF8")
	ErrEmptyPath    = errors.New("address is missing")
	ErrNullNotHere  = errors.New("the null address <> is only allowed as a sender")
)

// RFC 5321 §4.5.3.1: local part ≤ 64 octets, domain ≤ 255, path ≤ 256.
const (
	maxLocal  = 64
	maxDomain = 255
	maxPath   = 256
)

// ParsePath parses a reverse or forward path at the start of s (RFC 5321
// §4.1.2) and returns the address and what follows it (the ESMTP
// parameters). It accepts what real senders write: no space or a space
// after the colon is the caller's business; a path without angle brackets
// is accepted when it is a plain mailbox, as Postfix and Exchange do,
// because printers send it. Source routes (<@a,@b:u@d>) are dropped as
// RFC 5321 §4.1.1.3 says. With utf8 false, non-ASCII is refused (RFC 6531).
func ParsePath(s string, allowNull, allowUTF8 bool) (Address, string, error) {
	s = strings.TrimLeft(s, " ")
	if s == "" {
		return "", "", ErrEmptyPath
	}
	var path, rest string
	if s[0] == '<' {
		end := closingBracket(s)
		if end < 0 {
			return "", "", ErrNoBrackets
		}
		path, rest = s[1:end], s[end+1:]
		if rest != "" && rest[0] != ' ' {
			return "", "", ErrNoBrackets
		}
	} else {
		// Without brackets the path ends at the first space; quoted local
		// parts need brackets.
		path, rest, _ = strings.Cut(s, " ")
		if strings.ContainsAny(path, "<>\"") {
			return "", "", ErrNoBrackets
		}
		rest = " " + rest
	}
	rest = strings.TrimLeft(rest, " ")
	if path == "" {
		if !allowNull {
			return "", "", ErrNullNotHere
		}
		return Null, rest, nil
	}
	a, err := ParseMailbox(stripRoute(path), allowUTF8)
	return a, rest, err
}

// closingBracket finds the '>' that ends the path, skipping quoted strings
// in which '>' is legal.
func closingBracket(s string) int {
	inQuote := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '>':
			return i
		}
	}
	return -1
}

// stripRoute drops an RFC 5321 A-d-l ("@a,@b:") before the mailbox.
func stripRoute(p string) string {
	if strings.HasPrefix(p, "@") {
		if i := strings.IndexByte(p, ':'); i >= 0 {
			return p[i+1:]
		}
	}
	return p
}

// ParseMailbox parses "local@domain" (no brackets). The bare local part
// "postmaster" is accepted without a domain (RFC 5321 §4.5.1).
func ParseMailbox(m string, allowUTF8 bool) (Address, error) {
	if len(m) > maxPath {
		return "", ErrTooLong
	}
	if !allowUTF8 && !Address(m).IsASCII() {
		return "", ErrNonASCII
	}
	at := strings.LastIndexByte(m, '@')
	if at < 0 {
		if strings.EqualFold(m, "postmaster") {
			return Address("postmaster"), nil
		}
		return "", ErrNoDomain
	}
	local, domain := m[:at], m[at+1:]
	if len(local) > maxLocal && !isQuoted(local) {
		return "", ErrLocalTooLong
	}
	if !validLocal(local) {
		return "", ErrBadLocal
	}
	d, err := normalizeDomain(domain)
	if err != nil {
		return "", err
	}
	return Address(local + "@" + d), nil
}

func isQuoted(l string) bool { return len(l) >= 2 && l[0] == '"' && l[len(l)-1] == '"' }

// validLocal accepts a Dot-string or a Quoted-string (RFC 5321 §4.1.2),
// with UTF-8 allowed in both (RFC 6531 §3.3).
func validLocal(l string) bool {
	if l == "" {
		return false
	}
	if isQuoted(l) {
		for i := 1; i < len(l)-1; i++ {
			c := l[i]
			switch {
			case c == '\\':
				i++
				if i >= len(l)-1 || l[i] < 32 || l[i] > 126 {
					return false
				}
			case c == '"' || c < 32 || c == 127:
				return false
			}
		}
		return true
	}
	prevDot := true // a leading dot is not allowed
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c == '.' {
			if prevDot {
				return false
			}
			prevDot = true
			continue
		}
		prevDot = false
		if c >= utf8.RuneSelf {
			continue
		}
		if !isAtext(c) {
			return false
		}
	}
	return !prevDot && utf8.ValidString(l)
}

// isAtext is RFC 5322 §3.2.3 atext for ASCII.
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// normalizeDomain checks a domain or address literal and lower-cases it.
func normalizeDomain(d string) (string, error) {
	if d == "" || len(d) > maxDomain {
		return "", ErrBadDomain
	}
	if d[0] == '[' {
		if d[len(d)-1] != ']' {
			return "", ErrBadDomain
		}
		lit := d[1 : len(d)-1]
		if v6, ok := strings.CutPrefix(lit, "IPv6:"); ok {
			ip, err := netip.ParseAddr(v6)
			if err != nil || !ip.Is6() {
				return "", ErrBadDomain
			}
			return "[IPv6:" + ip.String() + "]", nil
		}
		ip, err := netip.ParseAddr(lit)
		if err != nil || !ip.Is4() {
			return "", ErrBadDomain
		}
		return "[" + ip.String() + "]", nil
	}
	d = strings.TrimSuffix(d, ".")
	if !ValidDomain(d) {
		return "", ErrBadDomain
	}
	return strings.ToLower(d), nil
}

// ValidDomain reports whether d is a host name of dot-separated labels of
// letters, digits and inner hyphens; UTF-8 labels are allowed (RFC 6531).
func ValidDomain(d string) bool {
	if d == "" || len(d) > maxDomain || !utf8.ValidString(d) {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c >= utf8.RuneSelf {
				continue
			}
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
