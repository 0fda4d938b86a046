package smtpd

import (
	"strings"
	"testing"
)

// RFC 6531 §3.4 asks for SMTPUTF8 to the next hop only for a message
// that is internationalised: an envelope address or its header section
// not ASCII. The client's request alone is kept apart, for a next hop
// that offers the extension.
func TestSMTPUTF8Needed(t *testing.T) {
	cases := []struct {
		name, mail, rcpt, data string
		asked, needs           bool
		ehlo                   string // "": client.test
	}{
		{"ASCII throughout", "MAIL FROM:<a@fabrikam.example> SMTPUTF8", "RCPT TO:<b@contoso.com>",
			"Subject: x\r\n\r\nascii\r\n.", true, false, ""},
		{"UTF-8 in the body only", "MAIL FROM:<a@fabrikam.example> SMTPUTF8 BODY=8BITMIME", "RCPT TO:<b@contoso.com>",
			"Subject: x\r\n\r\nGrüße\r\n.", true, false, ""},
		{"UTF-8 in the header", "MAIL FROM:<a@fabrikam.example> SMTPUTF8", "RCPT TO:<b@contoso.com>",
			"Subject: x\r\nFrom: Jörg <a@fabrikam.example>\r\n\r\nascii\r\n.", true, true, ""},
		{"UTF-8 in a folded header line", "MAIL FROM:<a@fabrikam.example> SMTPUTF8", "RCPT TO:<b@contoso.com>",
			"Subject: x\r\n Grüße\r\n\r\nascii\r\n.", true, true, ""},
		{"UTF-8 sender", "MAIL FROM:<jörg@fabrikam.example> SMTPUTF8", "RCPT TO:<b@contoso.com>",
			"Subject: x\r\n\r\nascii\r\n.", true, true, ""},
		{"UTF-8 recipient", "MAIL FROM:<a@fabrikam.example> SMTPUTF8", "RCPT TO:<jörg@contoso.com>",
			"Subject: x\r\n\r\nascii\r\n.", true, true, ""},
		{"8-bit header without SMTPUTF8 stays as it was", "MAIL FROM:<a@fabrikam.example>", "RCPT TO:<b@contoso.com>",
			"Subject: Grüße\r\n\r\nascii\r\n.", false, false, ""},
		// What Sluice stores and relays as header: its Received field
		// (with the EHLO name) and lines after one that is no field.
		{"UTF-8 EHLO name in the Received field", "MAIL FROM:<a@fabrikam.example> SMTPUTF8", "RCPT TO:<b@contoso.com>",
			"Subject: x\r\n\r\nascii\r\n.", true, true, "drücker.contoso.com"},
		{"UTF-8 after a line that is no field", "MAIL FROM:<a@fabrikam.example> SMTPUTF8", "RCPT TO:<b@contoso.com>",
			"Subject: x\r\nno colon here\r\nX-Name: Grüße\r\n\r\nascii\r\n.", true, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, spool, port := startServer(t, anonConfig)
			c := dial(t, port)
			c.expect("", "220")
			ehlo := tc.ehlo
			if ehlo == "" {
				ehlo = "client.test"
			}
			c.expect("EHLO "+ehlo, "250")
			c.expect(tc.mail, "250")
			c.expect(tc.rcpt, "250")
			c.expect("DATA", "354")
			c.expect(tc.data, "250")
			c.expect("QUIT", "221")
			m := spool.all()[0]
			if m.env.SMTPUTF8Asked != tc.asked || m.env.SMTPUTF8 != tc.needs {
				t.Errorf("asked %v, needs %v; want %v, %v", m.env.SMTPUTF8Asked, m.env.SMTPUTF8, tc.asked, tc.needs)
			}
			// RFC 6531 §4.3: the Received protocol says what the client used.
			if want := "with UTF8SMTP id"; tc.asked != strings.Contains(m.body, want) {
				t.Errorf("Received protocol for asked=%v:\n%s", tc.asked, m.body)
			}
		})
	}
}
