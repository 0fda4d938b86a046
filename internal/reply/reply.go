// Package reply owns SMTP replies as Go values: a Reply is an error that
// carries its code, enhanced status code (RFC 3463) and text, so every stage
// can return one and the session writes it unchanged. catalog.go holds the
// replies admins search for, in Exchange's wording where one exists.
package reply

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Reply is an SMTP reply. The zero Enhanced code means "none" and is used
// only for replies RFC 2034 exempts (the 220 banner, 354, 334 challenges).
type Reply struct {
	Code     int    // 550
	Enhanced [3]int // {5, 7, 54}
	Text     string
}

// Error renders the reply as one line, the form admins search for.
func (r Reply) Error() string {
	b := make([]byte, 0, 12+len(r.Text))
	b = r.appendStart(b, ' ')
	return string(append(b, r.Text...))
}

// appendStart appends "250 2.6.0 " (sep after the code; the enhanced
// code and its space only when there is one). Replies are rendered for
// every command and logged for every message: fmt showed in profiles.
func (r Reply) appendStart(b []byte, sep byte) []byte {
	b = strconv.AppendInt(b, int64(r.Code), 10)
	b = append(b, sep)
	if r.Enhanced != [3]int{} {
		b = r.appendEnhanced(b)
		b = append(b, ' ')
	}
	return b
}

func (r Reply) appendEnhanced(b []byte) []byte {
	b = strconv.AppendInt(b, int64(r.Enhanced[0]), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(r.Enhanced[1]), 10)
	b = append(b, '.')
	return strconv.AppendInt(b, int64(r.Enhanced[2]), 10)
}

// Temporary reports whether the client should try again later (4xx).
func (r Reply) Temporary() bool { return r.Code/100 == 4 }

// Permanent reports whether the reply is a permanent failure (5xx).
func (r Reply) Permanent() bool { return r.Code/100 == 5 }

// Positive reports whether the reply is a success or intermediate reply.
func (r Reply) Positive() bool { return r.Code/100 == 2 || r.Code/100 == 3 }

// EnhancedString is "5.7.54", or "" when the reply has no enhanced code.
func (r Reply) EnhancedString() string {
	if r.Enhanced == [3]int{} {
		return ""
	}
	return string(r.appendEnhanced(make([]byte, 0, 8)))
}

// Withf returns a copy of r whose text is formatted from format and args.
// Catalog entries stay immutable; call sites add details this way.
func (r Reply) Withf(format string, args ...any) Reply {
	r.Text = fmt.Sprintf(format, args...)
	return r
}

// With returns a copy of r with text appended after "; ", for a hint on what
// to change that is specific to this case.
func (r Reply) With(hint string) Reply {
	r.Text = r.Text + "; " + hint
	return r
}

// Lines renders the reply in wire form: one "code-enh text" line per text
// line, continuation lines marked with '-' (RFC 5321 §4.2.1), each ending
// in CRLF. CR and LF inside the text never reach the wire unescaped.
func (r Reply) Lines() string {
	if !strings.ContainsAny(r.Text, "\r\n") {
		b := make([]byte, 0, 14+len(r.Text))
		b = r.appendStart(b, ' ')
		b = append(b, r.Text...)
		return string(append(b, '\r', '\n'))
	}
	parts := strings.Split(strings.ReplaceAll(r.Text, "\r", ""), "\n")
	var b []byte
	for i, p := range parts {
		sep := byte(' ')
		if i < len(parts)-1 {
			sep = '-'
		}
		b = r.appendStart(b, sep)
		b = append(b, p...)
		b = append(b, '\r', '\n')
	}
	return string(b)
}

// As returns the Reply inside err, if there is one.
func As(err error) (Reply, bool) {
	var r Reply
	if errors.As(err, &r) {
		return r, true
	}
	var p *Reply
	if errors.As(err, &p) && p != nil {
		return *p, true
	}
	return Reply{}, false
}

// Parse reads one upstream reply: the code, the enhanced code if the text
// starts with one (RFC 2034 §4), and the text, with multi-line replies
// joined by "\n" and their code prefixes removed. It keeps the upstream's
// words as they were so they can be shown as the queue's last error.
func Parse(code int, text string) Reply {
	r := Reply{Code: code, Text: text}
	lines := strings.Split(text, "\n")
	var enh [3]int
	for i, l := range lines {
		e, rest, ok := cutEnhanced(l, code)
		if ok {
			if i == 0 {
				enh = e
			}
			lines[i] = rest
		}
	}
	r.Enhanced = enh
	r.Text = strings.Join(lines, "\n")
	return r
}

// cutEnhanced splits "5.7.54 text" into its code and "text". The class must
// agree with the basic code's first digit, as RFC 3463 §2 requires.
func cutEnhanced(s string, code int) ([3]int, string, bool) {
	word, rest, _ := strings.Cut(s, " ")
	f := strings.Split(word, ".")
	if len(f) != 3 {
		return [3]int{}, s, false
	}
	var e [3]int
	for i, x := range f {
		if x == "" || len(x) > 3 {
			return [3]int{}, s, false
		}
		n, err := strconv.Atoi(x)
		if err != nil || n < 0 {
			return [3]int{}, s, false
		}
		e[i] = n
	}
	if e[0] != code/100 || e[0] < 2 || e[0] > 5 {
		return [3]int{}, s, false
	}
	return e, rest, true
}
