package dsn

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// textWidth is where the explanation wraps: it is read in mail clients
// that show plain text as it is.
const textWidth = 76

// original is what the text part says about the original message, read
// from its header section.
type original struct {
	subject   string // decoded
	messageID string // "<...>", for In-Reply-To and References
}

// explanation writes part 1: per recipient, the upstream's exact reply,
// which server gave it, when, and what to do.
func explanation(r *Report, orig original, now time.Time) string {
	var t textBuilder
	t.para("This is the mail system at " + r.ReportingMTA + ".")
	switch r.kind() {
	case kindFailure:
		switch removed := slices.ContainsFunc(r.Recipients, func(rc Recipient) bool { return rc.Removed }); {
		case removed && !slices.ContainsFunc(r.Recipients, refused):
			t.para("An administrator of " + r.ReportingMTA + " removed your message from the queue before it " +
				"was delivered to the recipients below. No receiving server refused it.")
		case removed || slices.ContainsFunc(r.Recipients, func(rc Recipient) bool { return own(&rc) }):
			// Not every entry is a server's refusal: an administrator
			// removed it, or Sluice did not send it.
			t.para("Your message could not be delivered to the recipients below. Each entry says why, and what " +
				"you can do about it.")
		default:
			t.para("Your message could not be delivered to the recipients below. Each entry says which server " +
				"refused it and why, and what you can do about it.")
		}
	case kindDelay:
		until := latestRetry(r)
		if until.IsZero() {
			t.para("Your message has not been delivered yet to the recipients below. Sluice will keep trying; " +
				"no action is needed yet. If it cannot be delivered in the end, you will get another notice.")
		} else {
			t.para("Your message has not been delivered yet to the recipients below. Sluice will keep trying until " +
				formatDate(until) + "; no action is needed yet. If it cannot be delivered by then, you will get " +
				"another notice.")
		}
	case kindRelayed:
		t.para("Your message was passed on to the mail systems of the recipients below. They send no notice " +
			"of its final delivery, so this is the last you will hear of it unless it fails there.")
	default:
		if slices.ContainsFunc(r.Recipients, func(rc Recipient) bool { return rc.Action == ActionRelayed }) {
			t.para("Your message was delivered to, or passed on for, the recipients below.")
		} else {
			t.para("Your message was delivered to the recipients below.")
		}
	}
	for _, g := range groups(r.Recipients) {
		recipientText(&t, r, g, now)
	}

	t.line("Original message")
	t.field("Subject", orSomething(orig.subject, "(no subject)"))
	if orig.messageID != "" {
		t.field("Message-ID", orig.messageID)
	}
	t.field("Sender", r.From.String())
	if !r.ArrivalDate.IsZero() {
		t.field("Received", formatDate(r.ArrivalDate))
	}
	if r.MessageID != "" {
		t.field("Sluice id", string(r.MessageID)+" (in the message tracking log)")
	}
	t.field("Reported by", r.ReportingMTA)
	if r.Postmaster != "" {
		t.field("Help", r.Postmaster)
	}
	t.line("")
	switch {
	case len(r.Original) == 0:
		t.para("The technical details are attached for your mail administrator.")
	case r.ReturnsFull():
		t.para("The technical details and your original message are attached.")
	case r.tooLarge():
		t.para(fmt.Sprintf("The technical details and the header of your original message are attached. "+
			"The whole message was asked for, but it is too large to return (%d octets; a notice returns at most %d).",
			r.originalSize(), MaxReturn))
	default:
		t.para("The technical details and the header of your original message are attached.")
	}
	return strings.TrimSuffix(t.String(), "\r\n") // the part ends with the last line's CRLF
}

// refused: a failure that a server or Sluice's delivery decided, not an
// administrator's removal.
func refused(rc Recipient) bool { return rc.Action == ActionFailed && !rc.Removed }

// groups puts recipients with the same outcome together, in the order
// they come, so a login failure for fifty recipients is explained once.
func groups(rcpts []Recipient) [][]*Recipient {
	type key struct {
		action       Action
		status       [3]int
		remote, diag string
		last, until  time.Time
		removed      bool
	}
	var out [][]*Recipient
	index := map[key]int{}
	for i := range rcpts {
		rc := &rcpts[i]
		k := key{rc.Action, rc.status(), rc.RemoteMTA, rc.Diagnostic, rc.LastAttempt, rc.WillRetryUntil, rc.Removed}
		if j, ok := index[k]; ok {
			out[j] = append(out[j], rc)
			continue
		}
		index[k] = len(out)
		out = append(out, []*Recipient{rc})
	}
	return out
}

// recipientText explains one group of recipients that share an outcome.
func recipientText(t *textBuilder, r *Report, g []*Recipient, now time.Time) {
	rc := g[0]
	st := rc.status()
	label := "Recipient"
	if len(g) > 1 {
		label = "Recipients"
	}
	for _, x := range g {
		addr := x.Final.String()
		if _, orcpt := parseAddress(decodeXtext(x.Original, true)); x.Original != "" && orcpt != string(x.Final) {
			addr += " (addressed as " + orcpt + ")"
		}
		t.field(label, addr)
		label = ""
	}
	result := resultText(rc.Action)
	if rc.Removed {
		result = "removed from the queue by an administrator, will not be delivered"
	}
	t.field("Result", result)
	t.field("Status", statusString(st)+" ("+statusText(st)+")")
	if rc.RemoteMTA != "" {
		t.field("Server", rc.RemoteMTA)
	}
	if d := strings.TrimSpace(strings.ReplaceAll(rc.Diagnostic, "\r", "")); d != "" {
		label := "Error"
		switch {
		case rc.Removed || own(rc):
			label = "Reason" // Sluice's own words, though shaped as a reply: no server said them
		case isSMTPReply(d):
			label = "Reply"
		}
		for _, l := range strings.Split(d, "\n") {
			t.verbatim(label, l)
			label = ""
		}
	}
	if !rc.LastAttempt.IsZero() {
		t.field("Last attempt", formatDate(rc.LastAttempt))
	}
	if rc.Action == ActionDelayed && !rc.WillRetryUntil.IsZero() {
		t.field("Retrying until", formatDate(rc.WillRetryUntil))
	}
	if h := recipientHint(r, rc, now); h != "" {
		t.field("What to do", h)
	}
	t.line("")
}

// recipientHint is Hint, told how long an expired message waited, and for
// a delay notice or an expiry followed by what the last error means.
func recipientHint(r *Report, rc *Recipient, now time.Time) string {
	if rc.Removed {
		return removedHint
	}
	st := rc.status()
	var waited time.Duration
	if !r.ArrivalDate.IsZero() && now.After(r.ArrivalDate) {
		waited = now.Sub(r.ArrivalDate)
	}
	cause := ""
	if e := enhancedOf(rc.Diagnostic); e != [3]int{} && (e[1] != st[1] || e[2] != st[2]) && !(e[1] == 4 && e[2] == 7) && e[0] != 2 {
		cause, _ = hint(e, rc.Diagnostic, 0)
		if generic, _ := hint([3]int{4, 0, 0}, "", 0); cause == generic { // nothing more specific
			cause = ""
		}
	}
	switch {
	case rc.Action == ActionDelayed:
		h := "No action is needed yet. If it keeps failing, an administrator can look at the queue " +
			"(`sluice queue list`) for the next hop's last error."
		if cause != "" {
			h += " About the last error: " + cause
		}
		return h
	case st[1] == 4 && st[2] == 7:
		h, _ := hint(st, rc.Diagnostic, waited)
		if cause != "" {
			h += " About the last error: " + cause
		}
		return h
	}
	if h := ownHint(st, rc.Diagnostic); own(rc) && h != "" {
		return h
	}
	h, local := hint(st, rc.Diagnostic, waited)
	if local {
		h = ours + h
	}
	return h
}

// own reports a reply in Sluice's own words: shaped as one, but no remote
// MTA gave it (Sluice refused the message before sending it).
func own(rc *Recipient) bool {
	return rc.RemoteMTA == "" && isSMTPReply(strings.TrimSpace(rc.Diagnostic))
}

// ownHint is the advice for the refusals Sluice makes itself before
// sending (smtpclient's check), which hint would explain as a receiving
// server's; "" for the others.
func ownHint(st [3]int, diag string) string {
	switch {
	case st[1] == 3 && st[2] == 4:
		next := "The mail server it had to pass next accepts smaller messages than this one."
		if m := sizesRE.FindStringSubmatch(diag); m != nil {
			next = "The mail server it had to pass next accepts messages up to " + m[2] + " octets; this one is " + m[1] + "."
		}
		return next + " Send it again smaller (without large attachments; share a link instead), or ask your " +
			"mail administrator whether that limit can be raised."
	case st[1] == 6 && st[2] == 7:
		return "The message's addresses or header contain non-ASCII (internationalised) text, and the next mail " +
			"server on its way does not accept such mail (SMTPUTF8). Use ASCII addresses and header, or ask " +
			"your mail administrator whether the next hop can take SMTPUTF8."
	}
	return ""
}

// sizesRE finds the sizes in smtpclient's own 552 5.3.4: "(N octets, the
// limit is M)".
var sizesRE = regexp.MustCompile(`\((\d+) octets, the limit is (\d+)\)`)

// removedHint is the advice for a recipient an administrator removed:
// the sender can do nothing about a refusal that never happened, only
// ask why the message was taken out.
const removedHint = "An administrator took the message out of the queue on purpose, so it was not delivered " +
	"to this recipient; nothing is wrong with the address. If it should still reach the recipient, ask " +
	"your mail administrator why it was removed before you send it again."

// ours starts the hints for problems in the sender's own relay setup.
const ours = "This is a problem in your organisation's mail setup, not at the recipient; forward this " +
	"notice to your mail administrator. "

// enhancedOf finds the enhanced status code in "550 5.1.1 text" or
// "550-5.1.1 text" (RFC 2034 §4).
func enhancedOf(reply string) [3]int {
	if !isSMTPReply(reply) || len(reply) < 5 {
		return [3]int{}
	}
	word, _, _ := strings.Cut(reply[4:], " ")
	st := parseStatus(word)
	if st[0] != int(reply[0]-'0') {
		return [3]int{} // RFC 3463 §2: the class must agree with the reply code
	}
	return st
}

func resultText(a Action) string {
	switch a {
	case ActionFailed:
		return "failed, will not be retried"
	case ActionDelayed:
		return "delayed, still trying"
	case ActionDelivered:
		return "delivered"
	case ActionRelayed:
		return "relayed to a system that sends no further notices"
	case ActionExpanded:
		return "delivered to a list or alias, which forwarded it"
	}
	return string(a)
}

func latestRetry(r *Report) time.Time {
	var t time.Time
	for _, rc := range r.Recipients {
		if rc.Action == ActionDelayed && rc.WillRetryUntil.After(t) {
			t = rc.WillRetryUntil
		}
	}
	return t
}

func orSomething(s, instead string) string {
	if strings.TrimSpace(s) == "" {
		return instead
	}
	return s
}

// textBuilder lays out the explanation: paragraphs and "Label: value"
// fields wrapped at textWidth, replies kept verbatim, CRLF line endings.
type textBuilder struct{ strings.Builder }

const labelWidth = 16 // "Retrying until: "

func (t *textBuilder) line(s string) {
	t.WriteString(s)
	t.WriteString("\r\n")
}

func (t *textBuilder) para(s string) {
	for _, l := range wrap(s, textWidth) {
		t.line(l)
	}
	t.line("")
}

// field writes "Label:" padded to labelWidth, then value wrapped with a
// hanging indent. label "" continues the previous field.
func (t *textBuilder) field(label, value string) {
	if label != "" {
		label += ":"
	}
	lines := wrap(value, textWidth-labelWidth)
	if len(lines) == 0 {
		lines = []string{""}
	}
	for i, l := range lines {
		if i == 0 {
			t.line(strings.TrimRight(pad(label, labelWidth)+l, " "))
		} else {
			t.line(strings.Repeat(" ", labelWidth) + l)
		}
	}
}

// verbatim is field without wrapping: admins paste upstream replies into
// search engines as they are. label "" continues the previous field.
func (t *textBuilder) verbatim(label, value string) {
	if label != "" {
		label += ":"
	}
	t.line(strings.TrimRight(pad(label, labelWidth)+clean(value, true), " "))
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s + " "
	}
	return s + strings.Repeat(" ", n-len(s))
}

// wrap breaks s into lines of at most width bytes at spaces; a longer word
// gets a line of its own, and so does a `command` that does not fit, so
// it can be copied whole.
func wrap(s string, width int) []string {
	var lines []string
	cur := ""
	for _, w := range words(clean(s, true)) {
		switch {
		case cur == "":
			cur = w
		case len(cur)+1+len(w) <= width:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = w
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// words is strings.Fields, keeping `quoted commands` in one piece.
func words(s string) []string {
	var out []string
	quoted := false
	for _, f := range strings.Fields(s) {
		if quoted {
			out[len(out)-1] += " " + f
		} else {
			out = append(out, f)
		}
		if n := strings.Count(f, "`"); n%2 == 1 {
			quoted = !quoted
		}
	}
	return out
}
