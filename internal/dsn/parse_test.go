package dsn

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// TestParseForeign reads notices in the shapes other MTAs write (hand-made
// after Postfix, Exchange Online and Gmail; testdata/foreign/), the ones
// Sluice must recognise when they come back to a sender.
func TestParseForeign(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	pst := time.FixedZone("PST", -8*3600)
	tests := []struct {
		file    string
		wantErr error
		want    Report
	}{
		{file: "postfix.eml", want: Report{
			ReportingMTA: "mail.fabrikam.example",
			ArrivalDate:  time.Date(2026, 3, 2, 9, 59, 58, 0, cet),
			From:         "erp@contoso.com",
			Return:       mail.RetHeaders,
			Recipients: []Recipient{
				{Final: "carol@fabrikam.example", Original: "rfc822;carol@fabrikam.example", Action: ActionFailed,
					Status: [3]int{5, 1, 1}, RemoteMTA: "mbox.fabrikam.example",
					Diagnostic: "550 5.1.1 <carol@fabrikam.example>: Recipient address rejected: User unknown in local recipient table"},
				{Final: "dave@fabrikam.example", Original: "rfc822;dave@fabrikam.example", Action: ActionFailed,
					Status: [3]int{5, 2, 2}, RemoteMTA: "mbox.fabrikam.example",
					Diagnostic: "552 5.2.2 <dave@fabrikam.example>: Mailbox full"},
			},
		}},
		{file: "exchange-online.eml", want: Report{
			ReportingMTA: "AM0PR02MB1234.eurprd02.prod.outlook.com",
			ArrivalDate:  time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
			From:         "erp@contoso.com",
			Return:       mail.RetFull,
			Recipients: []Recipient{
				{Final: "nobody@fabrikam.example", Original: "rfc822;nobody@fabrikam.example", Action: ActionFailed,
					Status:     [3]int{5, 1, 10},
					Diagnostic: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"},
			},
		}},
		{file: "gmail-delay-lf.eml", want: Report{
			ReportingMTA: "googlemail.com",
			ArrivalDate:  time.Date(2026, 3, 2, 1, 59, 58, 0, pst),
			From:         "erp@contoso.com",
			Recipients: []Recipient{
				{Final: "carol@fabrikam.example", Action: ActionDelayed, Status: [3]int{4, 4, 1},
					Diagnostic:     "The recipient server did not accept our requests to connect.",
					LastAttempt:    time.Date(2026, 3, 2, 5, 59, 58, 0, pst),
					WillRetryUntil: time.Date(2026, 3, 3, 1, 59, 58, 0, pst)},
			},
		}},
		{file: "qmail-not-dsn.eml", wantErr: ErrNotDSN},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "foreign", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(b)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Parse error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Return != "" && len(got.Original) == 0 {
				t.Error("the original (third part) was not read")
			}
			got.Original = nil
			if g, w := essentials(got), essentials(&tc.want); g != w {
				t.Errorf("Parse:\n got %s\nwant %s", g, w)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ name, msg string }{
		{"empty", ""},
		{"header only", "Subject: hi\r\n"},
		{"plain text", "Subject: hi\r\n\r\nhello\r\n"},
		{"multipart without status", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n"},
		{"status only inside an attached message", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
			"Content-Type: message/rfc822\r\n\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n" +
			"\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.0.0\r\n--b--\r\n"},
	} {
		if r, err := Parse([]byte(tc.msg)); err == nil {
			t.Errorf("%s: Parse accepted it: %+v", tc.name, r)
		}
	}
}

// TestParseLenient: fields that are wrong are left zero; the rest is read.
func TestParseLenient(t *testing.T) {
	msg := "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.example (comment)\r\nArrival-Date: yesterday\r\nX-Sluice-Original-Id: ../../etc\r\n\r\n\r\n" +
		"Final-Recipient: RFC822; <Bob@Example.COM>\r\nAction: FAILED (permanent)\r\nStatus: 5.1\r\n" +
		"Remote-MTA: dns; [192.0.2.1]\r\nnot a field\r\n\r\n" +
		"Final-Recipient: rfc822; carol@example.com\r\nAction: delayed\r\nStatus: 4.4.7 (expired soon)\r\n" +
		"Diagnostic-Code: 451 no type given\r\n" +
		"--b--\r\n"
	r, err := Parse([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if r.ReportingMTA != "mx.example" || !r.ArrivalDate.IsZero() || r.MessageID != "" {
		t.Errorf("per-message fields: %+v", r)
	}
	if len(r.Recipients) != 2 {
		t.Fatalf("recipients: %+v", r.Recipients)
	}
	if rc := r.Recipients[0]; rc.Final != "Bob@example.com" || rc.Action != ActionFailed || rc.Status != [3]int{} || rc.RemoteMTA != "[192.0.2.1]" {
		t.Errorf("first recipient: %+v", rc)
	}
	if rc := r.Recipients[1]; rc.Status != [3]int{4, 4, 7} || rc.Diagnostic != "451 no type given" {
		t.Errorf("second recipient: %+v", rc)
	}
}

func TestFieldHelpers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mx.fabrikam.example [192.0.2.25]", "dns; mx.fabrikam.example (192.0.2.25)"},
		{"mx.fabrikam.example", "dns; mx.fabrikam.example"},
		{"[192.0.2.25]", "dns; [192.0.2.25]"},
		{"2001:db8::25", "dns; [2001:db8::25]"},
		{"mx.fabrikam.example [IPv6:2001:db8::25]", "dns; mx.fabrikam.example (2001:db8::25)"},
		// As delivery names the host it connected to: the port is no
		// part of an MTA's name.
		{"mx.fabrikam.example [192.0.2.25:25]", "dns; mx.fabrikam.example (192.0.2.25)"},
		{"192.0.2.25:2525", "dns; [192.0.2.25]"},
		{"[::1]:3030", "dns; [::1]"},
		{"exch1.contoso.com [[2001:db8::25]:25]", "dns; exch1.contoso.com (2001:db8::25)"},
	} {
		if got := mtaField(tc.in, false); got != tc.want {
			t.Errorf("mtaField(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"dns; mx.fabrikam.example (192.0.2.25)", "mx.fabrikam.example [192.0.2.25]"},
		{"DNS;mx.fabrikam.example", "mx.fabrikam.example"},
		{"dns; [192.0.2.25]", "[192.0.2.25]"},
		{"dns; mx.fabrikam.example (not an address)", "mx.fabrikam.example"},
	} {
		if got := parseMTA(tc.in); got != tc.want {
			t.Errorf("parseMTA(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want [3]int
	}{
		{"5.1.1", [3]int{5, 1, 1}}, {"4.4.7 (delivery time expired)", [3]int{4, 4, 7}}, {"2.0.0", [3]int{2, 0, 0}},
		{"5.7.139", [3]int{5, 7, 139}}, {"3.1.1", [3]int{}}, {"5.1", [3]int{}}, {"5.1.x", [3]int{}}, {"5.+1.1", [3]int{}},
	} {
		if got := parseStatus(tc.in); got != tc.want {
			t.Errorf("parseStatus(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, s := range []string{"jörg@bücher.example", `a\b@x`, "日本@例え.jp", "plain@x"} {
		if got := decodeEmbedded(embedUnicode(s)); got != s {
			t.Errorf("embedUnicode round trip of %q gave %q via %q", s, got, embedUnicode(s))
		}
	}
	if got := decodeEmbedded(`a\x{}b\x{110000}c\x{41`); got != `a\x{}b\x{110000}c\x{41` {
		t.Errorf("malformed escapes changed: %q", got)
	}
	if got := span(48 * time.Hour); got != "2 days" {
		t.Errorf("span = %q", got)
	}
	if got := span(30*time.Hour + 10*time.Minute); got != "1 day and 6 hours" {
		t.Errorf("span = %q", got)
	}
	if got := strings.Join(wrap("a bb ccc dddd", 6), "|"); got != "a bb|ccc|dddd" {
		t.Errorf("wrap = %q", got)
	}
}
