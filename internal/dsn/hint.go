package dsn

import (
	"fmt"
	"strings"
	"time"
)

// Hint says what to do about a recipient's status, in a sentence or three
// that a user and an administrator can act on. status is the enhanced code
// (RFC 3463) and diagnostic the upstream's reply, used where the code alone
// is ambiguous (Microsoft 365's 535 5.7.3, a null MX). It returns "" for
// successes. The notice's text uses it, and so can health and tracking.
func Hint(status [3]int, diagnostic string) string {
	h, _ := hint(status, diagnostic, 0)
	return h
}

// hint is Hint with the time a message waited before it expired, which the
// composer knows and the code does not. local reports a problem in the
// sender's own relay setup (the send connector, its login or TLS), which
// the user cannot fix and the recipient has nothing to do with.
func hint(st [3]int, diag string, waited time.Duration) (h string, local bool) {
	d := strings.ToLower(diag)
	class, subject, detail := st[0], st[1], st[2]
	is := func(s, dt int) bool { return subject == s && detail == dt }
	switch {
	case class == 2:
		return "", false
	case isBasicAuthOff(st, d):
		return basicAuthHint, true
	case class == 5 && is(7, 3):
		return "The next hop rejected the login of the send connector. If the next hop is Microsoft 365 " +
			"(smtp.office365.com), this usually means basic authentication is disabled: configure the send " +
			"connector to use OAuth2 (XOAUTH2). Otherwise an administrator should check the user name and " +
			"password the send connector uses, then retry the queue.", true
	case is(4, 7):
		return expiredHint(waited), false
	case isNullMX(st, d):
		return "The recipient's domain does not accept mail at all (it publishes a null MX or has no mail " +
			"server). Check the domain part of the address for typos; if it is right, reach the recipient " +
			"another way.", false
	case isTLS(st, d):
		return "Delivery stopped on a TLS problem between Sluice and the next hop: a certificate that is missing, " +
			"expired or does not match the host name, or TLS that one side requires and the other does not offer. " +
			"An administrator should check the send connector's TLS level and client certificate " +
			"(`sluice health` reports certificate problems) and that the next hop's certificate is valid for " +
			"the name Sluice connects to, then retry the queue.", true
	case class == 5 && (is(7, 8) || is(7, 0) && strings.HasPrefix(d, "535")):
		return "The next hop rejected the user name or password the send connector logs in with. An " +
			"administrator should check the send connector's credentials (and, for OAuth2, the app's " +
			"permissions), then retry the queue.", true
	case is(7, 54):
		return "The next hop refused to relay to this recipient: it does not accept mail for this domain from " +
			"Sluice. On the next hop, allow Sluice's address to relay (for Exchange, a receive connector with " +
			"relay permission; for Exchange Online, an inbound connector for Sluice's IP or certificate), " +
			"or make the send connector authenticate.", true
	case is(7, 60):
		return "The next hop does not let the account the send connector logs in with send as this sender. " +
			"Grant that account Send As on the sender's mailbox, or have the send connector rewrite the sender " +
			"to the authenticated mailbox.", true
	case isSenderNotAuthenticated(st, d):
		return "The recipient (a group, mailbox or public folder) only accepts mail from authenticated senders, " +
			"and the next hop took Sluice's delivery as anonymous. An administrator should make the next hop " +
			"trust Sluice: in Exchange, a receive connector scoped to Sluice's IP address with the Externally " +
			"Secured authentication (-AuthMechanism ExternalAuthoritative -PermissionGroups ExchangeServers), " +
			"which also lets Sluice send as the organisation's users. Making the send connector log in instead " +
			"would need Send As on every sender's mailbox.", true
	case is(7, 57) || class == 5 && subject == 7 && strings.Contains(d, "not authenticated"):
		return "The next hop only accepts mail from authenticated clients. An administrator should configure " +
			"AUTH on the send connector.", true
	case class == 5 && subject == 7:
		return "The receiving server refused the message by policy (permissions, anti-spam or sender " +
			"reputation); the server's reply says why. If the message is legitimate, ask the recipient's mail " +
			"administrator to allow it, quoting the reply.", false
	case subject == 1 && (detail == 1 || detail == 0 || detail == 10):
		return "The recipient's address does not exist at its domain. Check the spelling of the address and " +
			"send the message again; if it is right, the recipient may have left or changed address.", false
	case is(1, 6):
		return "The recipient has moved and no longer receives mail at this address; ask them for the new one.", false
	case is(1, 2):
		return "The recipient's domain does not exist or cannot receive mail. Check the part of the address " +
			"after the @ for typos.", false
	case is(2, 2):
		return "The recipient's mailbox is full. Try again later, or reach the recipient another way so they " +
			"can make room.", false
	case is(2, 1):
		return "The recipient's mailbox is disabled and does not accept mail.", false
	case is(3, 4) || is(2, 3):
		return "The message is larger than the receiving side accepts. Send it again without large " +
			"attachments (share a link instead), or ask the recipient's administrator to raise the limit.", false
	case class == 4 && subject == 4:
		return "The next hop could not be reached or did not answer in time. Sluice retries on its own; if this " +
			"persists, an administrator should check the queue (`sluice queue list`) for the next hop's last " +
			"error and whether the host is reachable from Sluice.", false
	case class == 5 && subject == 4:
		return "Sluice could not find a way to deliver to the recipient's domain. An administrator should " +
			"check the domain's MX records and the send connectors' address spaces.", false
	case class == 5 && subject == 6:
		return "The receiving server refused the content of the message (its format or encoding); its reply " +
			"says what. Resending from a different program may help.", false
	case class == 5 && subject == 5:
		return "The receiving server and Sluice did not agree on the SMTP protocol. An administrator should " +
			"look at the protocol log of the send connector for the command that was refused.", false
	case class == 4:
		return "This is a temporary problem; Sluice keeps retrying until the message expires. No action is " +
			"needed yet.", false
	}
	return "The receiving server refused the message permanently; the server's reply says why. If it is not " +
		"clear, forward this report to your mail administrator.", false
}

const basicAuthHint = "Microsoft 365 refused the password the send connector logs in with: basic authentication " +
	"(AUTH LOGIN or PLAIN with a password) is disabled for this tenant or mailbox. An administrator should " +
	"configure the send connector to authenticate with OAuth2 (XOAUTH2, an app registration with the " +
	"SMTP.SendAsApp permission), or, while moving, enable SMTP AUTH for the mailbox " +
	"(`Set-CASMailbox <mailbox> -SmtpClientAuthenticationDisabled $false`). Then retry the queue."

// isBasicAuthOff recognises Microsoft 365's replies to a password login
// once basic authentication is off: 535 5.7.139 (SmtpClientAuthentication
// disabled or security defaults), 550 5.7.30 (not supported for client
// submission) and 535 5.7.3 Authentication unsuccessful. Exchange Server
// gives 5.7.3 for a wrong password too, so that one needs Microsoft 365's
// signature; hint() covers the ambiguous case.
func isBasicAuthOff(st [3]int, d string) bool {
	switch {
	case st[1] == 7 && (st[2] == 139 || st[2] == 30):
		return true
	case st[1] == 7 && st[2] == 3 && strings.Contains(d, "outlook.com"):
		return true // Microsoft 365's servers sign their replies [....PROD.OUTLOOK.COM]
	}
	for _, s := range []string{"smtpclientauthentication is disabled", "basic authentication is disabled",
		"basic authentication is not supported"} {
		if strings.Contains(d, s) {
			return true
		}
	}
	return false
}

// isSenderNotAuthenticated recognises Exchange's delivery restriction for
// recipients that accept only authenticated senders (seed 000's
// distribution group): 5.7.133 to 5.7.136
// RESOLVER.RST.SenderNotAuthenticatedFor{Group,Mailbox,PublicFolder,MailUser}
// from Exchange 2013 on and Exchange Online, and Exchange 2010's
// 5.7.1 RESOLVER.RST.AuthRequired.
func isSenderNotAuthenticated(st [3]int, d string) bool {
	return st[1] == 7 && st[2] >= 133 && st[2] <= 136 ||
		strings.Contains(d, "sendernotauthenticatedfor") || strings.Contains(d, "resolver.rst.authrequired")
}

// isNullMX: RFC 7505 §4.1 (550 5.1.10 for the recipient's domain) and
// §4.2 (5.7.27, the sender's); 5.4.4 "unable to route". Microsoft uses
// 5.1.10 for an unknown recipient too, so that one needs the words.
func isNullMX(st [3]int, d string) bool {
	return st[1] == 4 && st[2] == 4 || st[1] == 7 && st[2] == 27 ||
		strings.Contains(d, "null mx") || strings.Contains(d, "nullmx")
}

// isTLS: 4.7.5/5.7.5 cryptographic failure, 5.7.10 and 5.7.11 encryption
// required (RFC 5248 registry), or any x.7.x reply about certificates or
// TLS (seed 003: 454 4.7.5 The certificate specified in
// TlsCertificateName of the SendConnector could not be found).
func isTLS(st [3]int, d string) bool {
	if st[1] != 7 {
		return false
	}
	if st[2] == 5 || st[2] == 10 || st[2] == 11 {
		return true
	}
	for _, s := range []string{"certificate", "starttls", "tls", "x509", "x.509"} {
		if strings.Contains(d, s) {
			return true
		}
	}
	return false
}

// expiredHint is the hint for 4.4.7/5.4.7, delivery time expired.
func expiredHint(waited time.Duration) string {
	tried := "Sluice kept trying"
	if waited > 0 {
		tried = "Sluice tried for " + span(waited)
	}
	return tried + ", but the next hop never accepted the message; the last error says why (or why it " +
		"could not be reached). An administrator should check the queue (`sluice queue list`) and the next " +
		"hop's last error, fix the cause, and then the message can be sent again."
}

// span writes d the way a person would: "2 days", "1 day and 6 hours",
// "4 hours", "25 minutes".
func span(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 24*time.Hour:
		h := int(d.Round(time.Hour) / time.Hour)
		if h%24 == 0 {
			return plural(h/24, "day")
		}
		return plural(h/24, "day") + " and " + plural(h%24, "hour")
	case d >= time.Hour:
		return plural(int(d.Round(time.Hour)/time.Hour), "hour")
	}
	if d < time.Minute {
		return plural(max(1, int(d.Round(time.Second)/time.Second)), "second")
	}
	return plural(int(d.Round(time.Minute)/time.Minute), "minute")
}

// statusText names the common enhanced codes (RFC 3463, RFC 5248
// registry), for the text part: "5.1.1 (bad destination mailbox address)".
func statusText(st [3]int) string {
	var sev string
	switch st[0] {
	case 2:
		sev = "success"
	case 4:
		sev = "temporary failure"
	default:
		sev = "permanent failure"
	}
	if st[1] == 0 && st[2] == 0 {
		return sev // x.0.0 says nothing more
	}
	if name, ok := statusNames[[2]int{st[1], st[2]}]; ok {
		return sev + ": " + name
	}
	return sev
}

var statusNames = map[[2]int]string{
	{1, 0}:   "other address status",
	{1, 1}:   "bad destination mailbox address",
	{1, 2}:   "bad destination system address",
	{1, 3}:   "bad destination mailbox address syntax",
	{1, 6}:   "destination mailbox has moved",
	{1, 10}:  "recipient address has null MX",
	{2, 1}:   "mailbox disabled",
	{2, 2}:   "mailbox full",
	{2, 3}:   "message length exceeds administrative limit",
	{3, 4}:   "message too big for system",
	{4, 1}:   "no answer from host",
	{4, 2}:   "bad connection",
	{4, 4}:   "unable to route",
	{4, 7}:   "delivery time expired",
	{5, 0}:   "other protocol status",
	{6, 0}:   "other media error",
	{7, 0}:   "other security or policy status",
	{7, 1}:   "delivery not authorized, message refused",
	{7, 3}:   "authentication unsuccessful",
	{7, 5}:   "cryptographic failure",
	{7, 8}:   "authentication credentials invalid",
	{7, 10}:  "encryption needed",
	{7, 30}:  "basic authentication not supported",
	{7, 54}:  "relay not permitted",
	{7, 57}:  "client not authenticated",
	{7, 60}:  "not permitted to send as this sender",
	{7, 139}: "basic authentication is disabled",
}
