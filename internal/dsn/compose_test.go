package dsn

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"

	"github.com/sluice-relay/sluice/internal/mail"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// now is when every test notice is written; fixedID names it.
var now = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func fixedID() string { return "06h0po0e3c004v9a" }

const (
	origID  = mail.ID("06h0pn8q1c00i3f2")
	origMsg = "Received: from app01.contoso.com (app01.contoso.com [10.0.0.20])\r\n" +
		"\tby relay.contoso.com (Sluice) with ESMTPS id 06h0pn8q1c00i3f2; Sun, 01 Mar 2026 10:00:00 +0000\r\n" +
		"From: ERP System <erp@contoso.com>\r\n" +
		"To: carol@fabrikam.example\r\n" +
		"Subject: Invoice 2026-0042\r\n" +
		"Date: Sun, 01 Mar 2026 10:00:00 +0000\r\n" +
		"Message-ID: <invoice-2026-0042@erp.contoso.com>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n" +
		"Please find the invoice below.\r\n" +
		"-- \r\n" +
		"Contoso accounts\r\n"
)

// report returns a failure of one recipient that the tests vary.
func report() *Report {
	return &Report{
		ReportingMTA: "relay.contoso.com",
		ArrivalDate:  now.Add(-24 * time.Hour),
		MessageID:    origID,
		From:         "erp@contoso.com",
		Recipients: []Recipient{{
			Final:       "carol@fabrikam.example",
			Original:    "rfc822;carol@fabrikam.example",
			Action:      ActionFailed,
			Status:      [3]int{5, 1, 1},
			RemoteMTA:   "mx.fabrikam.example [192.0.2.25]",
			Diagnostic:  "550 5.1.1 <carol@fabrikam.example>: Recipient address rejected: User unknown in virtual mailbox table",
			LastAttempt: now.Add(-time.Minute),
		}},
		Return:   mail.RetHeaders,
		Original: []byte(origMsg),
	}
}

// goldenCases are the notices people read; each is a testdata/NAME.golden.
func goldenCases() []struct {
	name string
	r    *Report
} {
	partial := report()
	partial.Original = []byte(strings.Replace(origMsg, "To: carol@fabrikam.example\r\n",
		"To: bob@contoso.com, carol@fabrikam.example,\r\n dave@northwind.example\r\n", 1))
	partial.EnvID = "INV+2D2026+2D0042" // xtext for INV-2026-0042
	partial.Postmaster = "helpdesk@contoso.com, extension 4711"

	expired := report()
	expired.ArrivalDate = now.Add(-48 * time.Hour)
	expired.Recipients[0] = Recipient{
		Final:       "carol@fabrikam.example",
		Action:      ActionFailed,
		Status:      [3]int{5, 4, 7},
		Diagnostic:  "dial tcp 192.0.2.25:25: connect: connection timed out",
		LastAttempt: now.Add(-10 * time.Minute),
	}

	delay := report()
	delay.ArrivalDate = now.Add(-4*time.Hour - time.Minute)
	delay.Recipients[0] = Recipient{
		Final:          "carol@fabrikam.example",
		Action:         ActionDelayed,
		Status:         [3]int{4, 7, 1},
		RemoteMTA:      "mx.fabrikam.example [192.0.2.25]",
		Diagnostic:     "450 4.7.1 <carol@fabrikam.example>: Recipient address rejected: Greylisted, see https://postgrey.schweikert.ch/help/fabrikam.example.html",
		LastAttempt:    now.Add(-2 * time.Minute),
		WillRetryUntil: delay.ArrivalDate.Add(48 * time.Hour),
	}

	m365 := report()
	m365diag := "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.\n" +
		"Visit https://aka.ms/smtp_auth_disabled for more information. [AM0PR02CA0001.eurprd02.prod.outlook.com 2026-03-02T09:59:00.000Z 08DE3F1A2B3C4D5E]"
	m365.Recipients = []Recipient{
		{Final: "carol@fabrikam.example", Action: ActionFailed, Status: [3]int{5, 7, 139},
			RemoteMTA: "smtp.office365.com [52.97.146.178]", Diagnostic: m365diag, LastAttempt: now.Add(-time.Minute)},
		{Final: "dave@northwind.example", Action: ActionFailed, Status: [3]int{5, 7, 139},
			RemoteMTA: "smtp.office365.com [52.97.146.178]", Diagnostic: m365diag, LastAttempt: now.Add(-time.Minute)},
	}

	full := report()
	full.Return = mail.RetFull
	full.Recipients[0].Status = [3]int{5, 2, 2}
	full.Recipients[0].Diagnostic = "552 5.2.2 <carol@fabrikam.example>: Mailbox full: quota exceeded (2048000/2048000 kB)"

	utf8 := report()
	utf8.UTF8 = true
	utf8.From = "jörg@bücher.example"
	utf8.Original = []byte("From: Jörg <jörg@bücher.example>\r\nTo: δοκιμή@παράδειγμα.δοκιμή\r\n" +
		"Subject: Grüße aus Köln\r\nMessage-ID: <k1@bücher.example>\r\n\r\nHallo!\r\n")
	utf8.Recipients[0].Final = "δοκιμή@παράδειγμα.δοκιμή"
	utf8.Recipients[0].Original = "utf-8;δοκιμή@παράδειγμα.δοκιμή"
	utf8.Recipients[0].Diagnostic = "550 5.1.1 <δοκιμή@παράδειγμα.δοκιμή>: mailbox unavailable"

	// An SMTPUTF8 message from an ASCII sender, refused before it left
	// (RFC 6531 §3.4): a plain notice (RFC 6533 §3, §6.3), which any
	// next hop takes, with the header's UTF-8 as RFC 2047 words.
	utf8Plain := report()
	utf8Plain.Original = []byte("From: Jörg <erp@contoso.com>\r\nTo: δοκιμή@παράδειγμα.δοκιμή\r\n" +
		"Subject: Grüße aus Köln, eine recht lange Betreffzeile, die gefaltet werden muss\r\nMessage-ID: <k1@contoso.com>\r\n\r\nHallo!\r\n")
	utf8Plain.Recipients[0].Final = "δοκιμή@παράδειγμα.δοκιμή"
	utf8Plain.Recipients[0].Original = "utf-8;δοκιμή@παράδειγμα.δοκιμή"
	utf8Plain.Recipients[0].Status = [3]int{5, 6, 7}
	utf8Plain.Recipients[0].RemoteMTA = ""
	utf8Plain.Recipients[0].Diagnostic = "553 5.6.7 The message needs SMTPUTF8 (internationalised addresses or headers) and the next hop does not offer it"
	// RET=FULL cannot return it as message/rfc822: the header goes.
	utf8PlainFull := report()
	utf8PlainFull.Return = mail.RetFull
	utf8PlainFull.Original = utf8Plain.Original
	utf8PlainFull.Recipients = utf8Plain.Recipients

	// Larger than the next hop's SIZE, refused before it left: Sluice's
	// words, and advice that names the limit.
	tooBigForHop := report()
	tooBigForHop.Recipients[0].Status = [3]int{5, 3, 4}
	tooBigForHop.Recipients[0].RemoteMTA = ""
	tooBigForHop.Recipients[0].Diagnostic = "552 5.3.4 Message size exceeds fixed maximum message size of the next hop (20480000 octets, the limit is 10485760)"

	// RFC 3461 §6.2: above MaxReturn, the header only, and the text says why.
	tooLarge := report()
	tooLarge.Return = mail.RetFull
	tooLarge.Original = []byte(origMsg + strings.Repeat(strings.Repeat("0123456789", 7)+"\r\n", 700))
	tooLarge.Recipients[0].Status = [3]int{5, 2, 2}
	tooLarge.Recipients[0].Diagnostic = full.Recipients[0].Diagnostic

	delivered := report()
	delivered.Recipients[0] = Recipient{Final: "carol@fabrikam.example", Action: ActionRelayed, Status: [3]int{2, 0, 0},
		RemoteMTA: "mx.fabrikam.example [192.0.2.25]", Diagnostic: "250 2.0.0 Ok: queued as 4Zx2c71Lq8z9v", LastAttempt: now.Add(-time.Minute)}

	// sluice message remove --bounce: no server refused it, and the text
	// must not say one did.
	removed := report()
	removed.Recipients[0] = Recipient{Final: "carol@fabrikam.example", Original: "rfc822;carol@fabrikam.example",
		Action: ActionFailed, Status: [3]int{5, 3, 0}, Diagnostic: "550 5.3.0 message removed from the queue by an administrator",
		LastAttempt: now.Add(-time.Hour), Removed: true}

	return []struct {
		name string
		r    *Report
	}{
		{"failed-5.1.1-headers", report()},
		{"partial-failure", partial},
		{"expired-2-days", expired},
		{"delayed", delay},
		{"m365-basic-auth", m365},
		{"ret-full", full},
		{"ret-full-too-large", tooLarge},
		{"smtputf8", utf8},
		{"smtputf8-ascii-sender", utf8Plain},
		{"smtputf8-ascii-sender-ret-full", utf8PlainFull},
		{"too-big-for-next-hop", tooBigForHop},
		{"relayed", delivered},
		{"removed-by-admin", removed},
	}
}

func TestComposeGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Compose(tc.r, now, fixedID)
			if err != nil {
				t.Fatal(err)
			}
			checkWire(t, got)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/dsn -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Compose differs from %s (go test ./internal/dsn -update rewrites it); got:\n%s", path, got)
			}
		})
	}
}

// checkWire checks what any MTA will insist on: CRLF only, lines of at most
// 998 octets (RFC 5322 §2.1.1), no NUL.
func checkWire(t *testing.T, b []byte) {
	t.Helper()
	for i, l := range bytes.Split(b, []byte("\r\n")) {
		if bytes.ContainsAny(l, "\r\n\x00") {
			t.Fatalf("line %d has a bare CR, LF or NUL: %q", i+1, l)
		}
		if len(l) > 998 {
			t.Fatalf("line %d is %d octets long", i+1, len(l))
		}
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		t.Fatal("message does not end with CRLF")
	}
}

// TestRoundTrip: what Compose writes, Parse reads back.
func TestRoundTrip(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Compose(tc.r, now, fixedID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			want := essentials(tc.r)
			if g := essentials(got); g != want {
				t.Errorf("Parse(Compose(r)):\n got %s\nwant %s", g, want)
			}
			wantOrig := headerSection(crlf(tc.r.Original))
			if tc.r.From.IsASCII() && !mail.ASCII(wantOrig) {
				wantOrig = plainHeaders(wantOrig)
			}
			if tc.r.ReturnsFull() {
				wantOrig = crlf(tc.r.Original)
			}
			if !bytes.Equal(got.Original, wantOrig) {
				t.Errorf("Original:\n got %q\nwant %q", got.Original, wantOrig)
			}
		})
	}
}

// essentials renders what a parsed notice must keep of the Report.
func essentials(r *Report) string {
	type rcpt struct {
		Final, Original, Action, Status, RemoteMTA, Diagnostic string
		LastAttempt, WillRetryUntil                            string
	}
	ret := mail.RetHeaders
	if r.ReturnsFull() {
		ret = mail.RetFull
	}
	e := struct {
		ReportingMTA, ArrivalDate, EnvID, MessageID, From, Return string
		UTF8                                                      bool
		Rcpts                                                     []rcpt
	}{r.ReportingMTA, r.ArrivalDate.UTC().String(), decodeXtext(r.EnvID, true), string(r.MessageID),
		string(r.From), string(ret), r.UTF8, nil}
	for _, rc := range r.Recipients {
		orig := ""
		if rc.Original != "" {
			typ, addr := parseAddress(decodeXtext(rc.Original, true))
			orig = typ + ";" + addr
		}
		until := ""
		if rc.Action == ActionDelayed {
			until = rc.WillRetryUntil.UTC().String()
		}
		e.Rcpts = append(e.Rcpts, rcpt{string(rc.Final), orig, string(rc.Action), statusString(rc.status()),
			rc.RemoteMTA, strings.ReplaceAll(rc.Diagnostic, "\n", " "), rc.LastAttempt.UTC().String(), until})
	}
	b, _ := json.Marshal(e)
	return string(b)
}

// pyCheck reads a notice with Python's email package, as a mail client or
// a bounce processor would, and prints what it found per recipient.
const pyCheck = `
import email, json, sys
from email.header import decode_header, make_header
m = email.message_from_bytes(sys.stdin.buffer.read())
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "delivery-status", m.get_param("report-type")
parts = m.get_payload()
assert parts[0].get_content_type() == "text/plain"
text = parts[0].get_payload(decode=True).decode(parts[0].get_content_charset())
out = {"text": text, "types": [p.get_content_type() for p in parts],
       "subject": str(make_header(decode_header(m["Subject"])))}
ds = parts[1]
if ds.get_content_type() == "message/delivery-status":
    blocks = ds.get_payload()
    out["reporting_mta"] = blocks[0]["Reporting-MTA"]
    out["recipients"] = [{"final": b["Final-Recipient"], "action": b["Action"], "status": b["Status"],
        "diagnostic": b["Diagnostic-Code"]} for b in blocks[1:]]
print(json.dumps(out))
`

func TestPythonReadsNotice(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH; install it (apt-get install python3) to check interoperability")
	}
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Compose(tc.r, now, fixedID)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(py, "-c", pyCheck)
			cmd.Stdin = bytes.NewReader(b)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("python: %v\n%s", err, stderr.Bytes())
			}
			var got struct {
				Text         string
				Types        []string
				Subject      string
				ReportingMTA string `json:"reporting_mta"`
				Recipients   []struct{ Final, Action, Status, Diagnostic string }
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			wantTypes := "text/plain message/delivery-status text/rfc822-headers"
			switch {
			case tc.r.UTF8:
				wantTypes = "text/plain message/global-delivery-status message/global-headers"
			case tc.r.ReturnsFull():
				wantTypes = "text/plain message/delivery-status message/rfc822"
			}
			if g := strings.Join(got.Types, " "); g != wantTypes {
				t.Errorf("Python sees parts %s, want %s", g, wantTypes)
			}
			if !strings.Contains(got.Subject, "Invoice 2026-0042") && !strings.Contains(got.Subject, "Grüße aus Köln") {
				t.Errorf("Python reads Subject %q", got.Subject)
			}
			for _, rc := range tc.r.Recipients {
				if !strings.Contains(got.Text, rc.Final.String()) {
					t.Errorf("Python's text part does not name %s:\n%s", rc.Final, got.Text)
				}
			}
			if tc.r.UTF8 {
				return // Python does not split message/global-delivery-status into blocks
			}
			if got.ReportingMTA != "dns; relay.contoso.com" {
				t.Errorf("Python reads Reporting-MTA %q", got.ReportingMTA)
			}
			if len(got.Recipients) != len(tc.r.Recipients) {
				t.Fatalf("Python finds %d recipient blocks, want %d: %s", len(got.Recipients), len(tc.r.Recipients), out)
			}
			for i, rc := range tc.r.Recipients {
				g := got.Recipients[i]
				if strings.Join(strings.Fields(g.Final), " ") != addressField(rc.Final, false) || g.Action != string(rc.Action) || g.Status != statusString(rc.Status) {
					t.Errorf("Python reads recipient %d as %+v, want %s %s %s", i, g, rc.Final, rc.Action, statusString(rc.Status))
				}
				if want := strings.ReplaceAll(rc.Diagnostic, "\n", " "); !strings.HasSuffix(strings.Join(strings.Fields(g.Diagnostic), " "), want) {
					t.Errorf("Python reads Diagnostic-Code %q, want it to end in %q", g.Diagnostic, want)
				}
			}
		})
	}
}

func TestComposeRefuses(t *testing.T) {
	null := report()
	null.From = mail.Null
	noRcpt := report()
	noRcpt.Recipients = nil
	noHost := report()
	noHost.ReportingMTA = " "
	for _, tc := range []struct {
		name string
		r    *Report
		want error
	}{
		{"never to the null path", null, ErrNullSender},
		{"no recipients", noRcpt, ErrNoRcpts},
		{"nil report", nil, ErrNoRcpts},
		{"no host name", noHost, ErrNoReporter},
	} {
		if _, err := Compose(tc.r, now, fixedID); !errors.Is(err, tc.want) {
			t.Errorf("%s: Compose error %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestComposeDetails covers what the golden files show only in passing.
func TestComposeDetails(t *testing.T) {
	t.Run("boundary that occurs in the original is avoided", func(t *testing.T) {
		r := report()
		r.Return = mail.RetFull
		r.Original = []byte("Subject: x\r\n\r\n--sluice-dsn-06h0po0e3c004v9a\r\n")
		b, err := Compose(r, now, fixedID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`boundary="sluice-dsn-06h0po0e3c004v9a-1"`)) {
			t.Errorf("boundary not changed:\n%s", b)
		}
		if p, err := Parse(b); err != nil || !bytes.Equal(p.Original, r.Original) {
			t.Errorf("Parse: %v, original %q", err, p.Original)
		}
	})
	// A removal beside a refusal: the opening names no server, and each
	// recipient keeps its own advice.
	t.Run("removed and refused recipients in one notice", func(t *testing.T) {
		r := report()
		r.Recipients = append(r.Recipients, Recipient{Final: "dave@northwind.example", Action: ActionFailed,
			Status: [3]int{5, 3, 0}, Diagnostic: "550 5.3.0 message removed from the queue by an administrator", Removed: true})
		b, err := Compose(r, now, fixedID)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(string(b)), " ")
		for _, want := range []string{"Each entry says why, and what you can do about it.", "Reply: 550 5.1.1",
			"Reason: 550 5.3.0", "address does not exist", "took the message out of the queue"} {
			if !strings.Contains(text, want) {
				t.Errorf("notice lacks %q:\n%s", want, b)
			}
		}
		if strings.Contains(text, "which server refused it") || strings.Contains(text, "No receiving server refused it") {
			t.Errorf("opening fits only one of the recipients:\n%s", b)
		}
	})
	// Exchange's words: "Relayed:" when the message only went on to a
	// system that sends no notices, "Delivered:" when it arrived.
	t.Run("relayed and delivered are told apart", func(t *testing.T) {
		for _, tc := range []struct {
			actions []Action
			subject string
			intro   string
		}{
			{[]Action{ActionRelayed}, "Subject: Relayed: Invoice 2026-0042\r\n", "was passed on to the mail systems of the recipients below"},
			{[]Action{ActionDelivered}, "Subject: Delivered: Invoice 2026-0042\r\n", "was delivered to the recipients below"},
			{[]Action{ActionDelivered, ActionRelayed}, "Subject: Delivered: Invoice 2026-0042\r\n", "was delivered to, or passed on for, the recipients below"},
		} {
			r := report()
			r.Recipients = nil
			for i, a := range tc.actions {
				r.Recipients = append(r.Recipients, Recipient{Final: mail.Address(fmt.Sprintf("r%d@fabrikam.example", i)), Action: a, Status: [3]int{2, 0, 0}})
			}
			b, err := Compose(r, now, fixedID)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{tc.subject, tc.intro} {
				if !bytes.Contains(b, []byte(want)) {
					t.Errorf("%v: missing %q in\n%s", tc.actions, want, b)
				}
			}
		}
	})
	t.Run("bare LF original and no Subject", func(t *testing.T) {
		r := report()
		r.Original = []byte("From: a@contoso.com\nTo: carol@fabrikam.example\n\nbody\n")
		b, err := Compose(r, now, fixedID)
		if err != nil {
			t.Fatal(err)
		}
		checkWire(t, b)
		for _, want := range []string{"Subject: Undeliverable: (no subject)\r\n", "\r\nFrom: a@contoso.com\r\nTo: carol@fabrikam.example\r\n\r\n--"} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("missing %q in\n%s", want, b)
			}
		}
	})
	t.Run("ORCPT that differs from the final recipient is shown", func(t *testing.T) {
		r := report()
		r.Recipients[0].Original = "rfc822;sales+2Bde@contoso.com"
		b, err := Compose(r, now, fixedID)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"carol@fabrikam.example (addressed as sales+de@contoso.com)\r\n",
			"Original-Recipient: rfc822; sales+de@contoso.com\r\n"} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("missing %q in\n%s", want, b)
			}
		}
	})
	t.Run("no original: two parts", func(t *testing.T) {
		r := report()
		r.Original = nil
		b, err := Compose(r, now, fixedID)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("\r\n--sluice-dsn-")); n != 3 {
			t.Errorf("%d boundary lines, want 3 (two parts and the end)", n)
		}
	})
	t.Run("8-bit header to an ASCII sender is made ASCII", func(t *testing.T) {
		r := report()
		r.Original = []byte("Subject: caf\xe9\r\n\r\n")
		b, err := Compose(r, now, fixedID)
		if err != nil {
			t.Fatal(err)
		}
		if !mail.ASCII(b) || !bytes.Contains(b, []byte("Content-Type: text/rfc822-headers")) || !bytes.Contains(b, []byte("Subject: Undeliverable: caf?\r\n")) {
			t.Errorf("8-bit header:\n%s", b)
		}
	})
	t.Run("non-ASCII recipient in a plain report is escaped", func(t *testing.T) {
		if got := addressField("jörg@bücher.example", false); got != `utf-8; j\x{F6}rg@b\x{FC}cher.example` {
			t.Errorf("addressField = %q", got)
		}
		if got := parseFinal(`utf-8; j\x{F6}rg@b\x{FC}cher.example`); got != "jörg@bücher.example" {
			t.Errorf("parseFinal = %q", got)
		}
	})
	t.Run("long unbroken UTF-8 line in the text stays valid UTF-8", func(t *testing.T) {
		// A UTF-8 notice carries its text as 8bit, where lines longer than
		// 998 octets get broken at an octet count, inside a character.
		r := report()
		r.UTF8 = true
		// 1080 octets without a space once decoded (RFC 2047 §6.2), in a
		// header section that is UTF-8 (RFC 6532) and within its limits.
		long := strings.Repeat("請求書", 120)
		subj := strings.TrimSuffix(strings.Repeat("=?utf-8?b?6KuL5rGC5pu4?=\r\n ", 120), "\r\n ")
		orig := strings.Replace(origMsg, "Subject: Invoice 2026-0042", "Subject: "+subj, 1)
		r.Original = []byte(strings.Replace(orig, "From: ERP System", "From: Jörg", 1))
		b, err := Compose(r, now, fixedID)
		if err != nil {
			t.Fatal(err)
		}
		checkWire(t, b)
		if !utf8.Valid(b) {
			t.Fatal("notice is not valid UTF-8")
		}
		e, err := message.Read(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		mr := e.MultipartReader()
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(p.Body)
		if !bytes.Contains(text, []byte("Subject:        "+long+"\r\n")) {
			t.Errorf("subject not kept whole in the text:\n%s", text)
		}
	})
	t.Run("extension field after the RFC 3464 per-message fields", func(t *testing.T) {
		// RFC 3464 §2.2: ... [ arrival-date-field CRLF ] *( extension-field CRLF ).
		b, err := Compose(report(), now, fixedID)
		if err != nil {
			t.Fatal(err)
		}
		arrival, ext := bytes.Index(b, []byte("\r\nArrival-Date: ")), bytes.Index(b, []byte("\r\nX-Sluice-Original-Id: "))
		if arrival < 0 || ext < 0 || ext < arrival {
			t.Errorf("X-Sluice-Original-Id at %d, Arrival-Date at %d: the extension field must come last", ext, arrival)
		}
	})
	t.Run("header injection through the diagnostic", func(t *testing.T) {
		r := report()
		r.Recipients[0].Diagnostic = "550 5.1.1 no\r\nX-Injected: yes\r\n\r\nAction: delivered"
		b, err := Compose(r, now, fixedID)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(b)
		if err != nil || len(p.Recipients) != 1 || p.Recipients[0].Action != ActionFailed {
			t.Fatalf("Parse: %v %+v", err, p)
		}
		if got := p.Recipients[0].Diagnostic; got != "550 5.1.1 no X-Injected: yes Action: delivered" {
			t.Errorf("Diagnostic %q", got)
		}
	})
}

func TestXtext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rfc822;bob@contoso.com", "rfc822;bob@contoso.com"},
		{"bob+2Bsales@contoso.com", "bob+sales@contoso.com"},
		{"bob+sales@contoso.com", "bob+sales@contoso.com"}, // already decoded: kept
		{"a+3Db", "a=b"},
		{"a+0Db", "a+0Db"}, // decodes to CR: kept as given
		{"a+2b", "a+2b"},   // lower-case hex is not xtext
		{"a+", "a+"},
	} {
		if got := decodeXtext(tc.in, false); got != tc.want {
			t.Errorf("decodeXtext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A long non-ASCII Subject is folded between encoded words, each line at
// most 76 characters (RFC 2047 §2): mime's 75-character words did not
// fit after "Subject: ", and the whole subject went on one line of ~960.
// Python reads it back whole.
func TestLongSubjectFolds(t *testing.T) {
	r := report()
	subject := "Grüße aus Köln " + strings.Repeat("ä", 200) + " Ende"
	r.Original = []byte("Subject: " + subject + "\r\nMessage-ID: <k2@x>\r\n\r\nx\r\n")
	b, err := Compose(r, now, fixedID)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	for _, l := range strings.Split(string(head), "\r\n") {
		if strings.Contains(l, "=?") && len(l) > 76 {
			t.Errorf("header line of %d characters with encoded words:\n%s", len(l), l)
		}
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH; install it (apt-get install python3) to check the decoded subject")
	}
	cmd := exec.Command(py, "-c", pyCheck)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Subject string }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if want := "Undeliverable: " + subject; got.Subject != want {
		t.Errorf("Python reads Subject %q, want %q", got.Subject, want)
	}
}
