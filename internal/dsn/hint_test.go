package dsn

import (
	"strings"
	"testing"
	"time"
)

// TestHint: the hint each reply gets, by the words an admin would look for.
func TestHint(t *testing.T) {
	tests := []struct {
		name   string
		status [3]int
		reply  string
		want   string // a phrase of the hint; "" = no hint
	}{
		{"unknown user", [3]int{5, 1, 1}, "550 5.1.1 <carol@fabrikam.example>: User unknown", "does not exist"},
		{"other address status", [3]int{5, 1, 0}, "550 5.1.0 Address rejected", "Check the spelling"},
		{"Exchange Online recipient not found", [3]int{5, 1, 10}, "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "does not exist"},
		{"null MX", [3]int{5, 1, 10}, "556 5.1.10 Recipient address has null MX", "does not accept mail at all"},
		{"unable to route", [3]int{5, 4, 4}, "550 5.4.4 Unable to route", "does not accept mail at all"},
		{"mailbox full", [3]int{5, 2, 2}, "552 5.2.2 Mailbox full", "mailbox is full"},
		{"too big", [3]int{5, 3, 4}, "552 5.3.4 Message size exceeds fixed maximum message size", "larger than the receiving side accepts"},
		{"relay denied by the next hop", [3]int{5, 7, 54}, "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain", "relay permission"},
		{"send as denied", [3]int{5, 7, 60}, "550 5.7.60 SMTP; Client does not have permissions to send as this sender", "Send As"},
		{"not authenticated (seed 000)", [3]int{5, 7, 1}, "530 5.7.1 Client was not authenticated", "configure AUTH on the send connector"},
		{"group for authenticated senders (seed 000)", [3]int{5, 7, 133}, "550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required; Delivery restriction check failed because the sender was not authenticated when sending to this group", "Externally Secured"},
		{"Exchange 2010 group for authenticated senders", [3]int{5, 7, 1}, "550 5.7.1 RESOLVER.RST.AuthRequired; authentication required", "Externally Secured"},
		{"policy", [3]int{5, 7, 1}, "550 5.7.1 Message rejected as spam", "refused the message by policy"},
		{"Microsoft 365 basic auth disabled", [3]int{5, 7, 139}, "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", "OAuth2 (XOAUTH2"},
		{"Microsoft 365 basic auth, security defaults", [3]int{5, 7, 139}, "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy.", "OAuth2 (XOAUTH2"},
		{"Microsoft 365 client submission", [3]int{5, 7, 30}, "550 5.7.30 Basic authentication is not supported for Client Submission.", "OAuth2 (XOAUTH2"},
		{"Microsoft 365 5.7.3", [3]int{5, 7, 3}, "535 5.7.3 Authentication unsuccessful [SN4PR0501CA0054.namprd05.prod.outlook.com]", "basic authentication (AUTH LOGIN or PLAIN"},
		{"Exchange Server 5.7.3, maybe a password", [3]int{5, 7, 3}, "535 5.7.3 Authentication unsuccessful", "check the user name and"},
		{"bad credentials", [3]int{5, 7, 8}, "535 5.7.8 Error: authentication failed", "credentials"},
		{"certificate (seed 003)", [3]int{4, 7, 5}, "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found.", "TLS level and client certificate"},
		{"TLS required", [3]int{5, 7, 0}, "530 5.7.0 Must issue a STARTTLS command first", "TLS"},
		{"expired", [3]int{5, 4, 7}, "", "`sluice queue list`"},
		{"not reachable yet", [3]int{4, 4, 1}, "", "could not be reached"},
		{"temporary", [3]int{4, 3, 0}, "451 4.3.0 try later", "temporary problem"},
		{"protocol", [3]int{5, 5, 2}, "500 5.5.2 Syntax error", "protocol log"},
		{"content", [3]int{5, 6, 11}, "550 5.6.11 Bare line feeds are not allowed", "content of the message"},
		{"fallback", [3]int{5, 0, 0}, "554 Transaction failed", "refused the message permanently"},
		{"success", [3]int{2, 0, 0}, "250 2.0.0 Ok", ""},
	}
	for _, tc := range tests {
		got := Hint(tc.status, tc.reply)
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%s: Hint(%v, %q) = %q, want it to say %q", tc.name, tc.status, tc.reply, got, tc.want)
		}
		if strings.Contains(got, "above") || strings.Contains(got, "this notice") {
			t.Errorf("%s: Hint refers to the notice it may not be in: %q", tc.name, got)
		}
	}
}

// TestExpiryHintSaysHowLong: the composer knows how long the message waited.
func TestExpiryHintSaysHowLong(t *testing.T) {
	r := report()
	r.ArrivalDate = now.Add(-48 * time.Hour)
	r.Recipients[0].Status = [3]int{5, 4, 7}
	r.Recipients[0].Diagnostic = "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found."
	got := recipientHint(r, &r.Recipients[0], now)
	for _, want := range []string{"Sluice tried for 2 days", "About the last error: Delivery stopped on a TLS problem"} {
		if !strings.Contains(got, want) {
			t.Errorf("hint %q does not say %q", got, want)
		}
	}
}

// TestOwnRefusalHint: a refusal Sluice made itself (no Remote-MTA) is
// explained as what it is, not as a receiving server's refusal.
func TestOwnRefusalHint(t *testing.T) {
	tests := []struct {
		name       string
		status     [3]int
		remote     string
		diag       string
		want, lack []string
	}{
		{"too big for the next hop", [3]int{5, 3, 4}, "",
			"552 5.3.4 Message size exceeds fixed maximum message size of the next hop (20480000 octets, the limit is 10485760)",
			[]string{"accepts messages up to 10485760 octets; this one is 20480000", "Send it again smaller"}, []string{"receiving"}},
		{"too big, no sizes", [3]int{5, 3, 4}, "", "552 5.3.4 Message too big",
			[]string{"next", "Send it again smaller"}, []string{"receiving"}},
		{"SMTPUTF8 not offered", [3]int{5, 6, 7}, "",
			"553 5.6.7 The message needs SMTPUTF8 (internationalised addresses or headers) and the next hop does not offer it",
			[]string{"non-ASCII (internationalised)", "does not accept such mail (SMTPUTF8)", "Use ASCII addresses"}, []string{"receiving", "refused the content"}},
		{"the upstream's own 5.3.4 stays", [3]int{5, 3, 4}, "mx.fabrikam.example [192.0.2.25]",
			"552 5.3.4 Message size exceeds fixed maximum message size",
			[]string{"larger than the receiving side accepts"}, nil},
		{"the upstream's own 5.6.7 stays", [3]int{5, 6, 7}, "mx.fabrikam.example [192.0.2.25]",
			"553 5.6.7 SMTPUTF8 not supported",
			[]string{"receiving server refused the content"}, nil},
	}
	for _, tc := range tests {
		r := report()
		rc := &r.Recipients[0]
		rc.Status, rc.RemoteMTA, rc.Diagnostic = tc.status, tc.remote, tc.diag
		got := recipientHint(r, rc, now)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: hint %q does not say %q", tc.name, got, w)
			}
		}
		for _, l := range tc.lack {
			if strings.Contains(got, l) {
				t.Errorf("%s: hint %q says %q", tc.name, got, l)
			}
		}
	}
}
