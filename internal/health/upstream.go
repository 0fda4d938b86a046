package health

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/delivery"
)

// upstreamDownAfter is how many failures in a row make a smarthost worth a
// finding while its connector's other smarthosts carry the mail.
const upstreamDownAfter = 3

// upstreamResult is what the host rules found, and the (connector, reply)
// pairs they reported, so the queue rule does not say it twice.
type upstreamResult struct {
	findings []Finding
	seen     map[string]bool
}

func seenKey(connector, reply string) string { return connector + "\x00" + reply }

// upstreams looks at the configured smarthosts' last failures
// (delivery.HostHealth): a refusal of Sluice's credentials is UPSTREAM-AUTH
// at once; a host failing repeatedly while others of its connector work is
// UPSTREAM-DOWN (when none works, the queue rule HOP-FAILING says so). A
// smarthost given by name fails when all its addresses do; one address
// failing among working ones is an info (addressDown). Hosts that are no
// connector's smarthost nor one's address (MX hosts) are left to the
// queues.
func upstreams(c *config.Config, hosts []delivery.HostHealth, now time.Time) upstreamResult {
	res := upstreamResult{seen: map[string]bool{}}
	failing := map[string]bool{}
	for i := range hosts {
		failing[hosts[i].Host] = hosts[i].Failures > 0
	}
	for i := range hosts {
		h := &hosts[i]
		if h.Failures == 0 || h.LastError == "" || h.LastSuccess.After(h.LastFailure) {
			continue
		}
		sc := smarthostOf(c, h.Host)
		if sc == nil {
			if f, ok := addressDown(c, h, failing, now); ok {
				res.findings = append(res.findings, f)
			}
			continue
		}
		subject := "send connector " + sc.Name + ", smarthost " + h.Host
		if f, ok := authFinding(subject, h.LastError, sc); ok {
			res.findings = append(res.findings, f)
			// A smarthost's last error names the address that refused,
			// as the queue's does: "host [ip:port] said: ...".
			res.seen[seenKey(sc.Name, afterSaid(h.LastError))] = true
			continue
		}
		if h.Failures >= upstreamDownAfter && anyWorking(sc, failing) {
			res.findings = append(res.findings, Finding{Rule: RuleUpstreamDown, Severity: Warning, Subject: subject,
				Problem: fmt.Sprintf("failed %d times in a row, last %s ago: %s; mail goes through the connector's other smarthosts meanwhile", h.Failures, ago(now, h.LastFailure), h.LastError),
				Fix:     failingFix(h.LastError, "") + "; until it is back the connector has no failover"})
		}
	}
	return res
}

// addressDown reports an address of a smarthost given by name (h) that
// keeps failing while the smarthost works, its other addresses taking
// the mail. Info, not a warning: mail flows, and a name such as
// smtp.office365.com has addresses that are no admin's to mend; but an
// Exchange DAG's name with a dead node's address in it has less failover
// than it seems, and each session may try that address first.
func addressDown(c *config.Config, h *delivery.HostHealth, failing map[string]bool, now time.Time) (Finding, bool) {
	if h.Smarthost == "" || failing[h.Smarthost] || h.Failures < upstreamDownAfter {
		return Finding{}, false
	}
	sc := smarthostOf(c, h.Smarthost)
	if sc == nil {
		return Finding{}, false
	}
	name, _, _ := net.SplitHostPort(h.Smarthost)
	ip, _, _ := net.SplitHostPort(h.Host)
	return Finding{Rule: RuleUpstreamDown, Severity: Info, Subject: "send connector " + sc.Name + ", smarthost " + h.Smarthost,
		Problem: fmt.Sprintf("address %s failed %d times in a row, last %s ago: %s; the smarthost's other addresses take the mail",
			h.Host, h.Failures, ago(now, h.LastFailure), h.LastError),
		Fix: failingFix(h.LastError, "") + "; if " + ip + " no longer serves " + name + ", take it out of the name's DNS records"}, true
}

// smarthostOf finds the send connector that lists addr ("host:port", as
// delivery dials it).
func smarthostOf(c *config.Config, addr string) *config.SendConnector {
	for i := range c.SendConnectors {
		sc := &c.SendConnectors[i]
		for _, s := range sc.Smarthosts {
			if hostAddr(s) == addr {
				return sc
			}
		}
	}
	return nil
}

// anyWorking reports whether another of sc's smarthosts is not failing:
// untried, or its last attempt worked.
func anyWorking(sc *config.SendConnector, failing map[string]bool) bool {
	for _, s := range sc.Smarthosts {
		if !failing[hostAddr(s)] {
			return true
		}
	}
	return false
}

func hostAddr(s config.HostPort) string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// upstreamReply is the SMTP reply in a last error: "host said: 535 5.7.139 ...".
type upstreamReply struct {
	code     int    // 535; 0 when the error is not an SMTP reply
	enhanced string // "5.7.139"; "" when none
	text     string // the whole reply, lower case
}

var replyRE = regexp.MustCompile(`^([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3})\b)?`)

func parseReply(lastErr string) upstreamReply {
	s := lastErr
	if _, rest, ok := strings.Cut(s, " said: "); ok {
		s = rest
	}
	r := upstreamReply{text: strings.ToLower(s)}
	if m := replyRE.FindStringSubmatch(s); m != nil {
		r.code, _ = strconv.Atoi(m[1])
		r.enhanced = m[2]
	}
	return r
}

// authFinding recognises an upstream's refusal of Sluice's credentials
// (RFC 4954 §6: 535 5.7.8, 534 5.7.9, 530 5.7.0) and Microsoft's and
// Google's variants, and says what each means. sc, when known, tells
// whether Sluice used a password or an OAuth2 token.
func authFinding(subject, lastErr string, sc *config.SendConnector) (Finding, bool) {
	r := parseReply(lastErr)
	oauth := sc != nil && strings.EqualFold(sc.Auth.Mechanism, "XOAUTH2")
	mailbox := "the mailbox"
	if sc != nil && sc.Auth.Username != "" {
		mailbox = sc.Auth.Username
	}
	f := Finding{Rule: RuleUpstreamAuth, Severity: Error, Subject: subject, Problem: "the upstream refuses Sluice's credentials: " + lastErr}
	switch {
	case r.code == 0:
		return Finding{}, false
	case r.code == 504 && strings.Contains(r.text, "does not offer auth "):
		// Sluice's own finding (delivery words it, no "said:"): the
		// credentials were never sent.
		f.Problem = "the upstream does not offer the AUTH mechanism the send connector logs in with: " + lastErr
		f.Fix = "set the send connector's auth.mechanism to one the upstream offers (the last error lists them; sluice test connect HOST:PORT shows them too) and reload; if it offers none, it may offer AUTH only after STARTTLS: set tls.mode to required or verify"
	case strings.Contains(r.text, "smtpclientauthentication is disabled"):
		// Microsoft: SMTP AUTH must be on for the mailbox even with OAuth2.
		f.Fix = fmt.Sprintf("Microsoft 365 has SMTP AUTH (authenticated client submission) turned off for %s or the whole tenant, which OAuth2 needs too: in Exchange Online PowerShell run Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $false (or, tenant-wide, Set-TransportConfig -SmtpClientAuthenticationDisabled $false)", mailbox, mailbox)
	case strings.Contains(r.text, "security defaults"):
		f.Fix = "Entra ID security defaults block basic SMTP AUTH for this mailbox; switch the send connector to auth mechanism XOAUTH2 with an oauth2 client-credentials app registration (see README, Microsoft 365 with OAuth2)"
	case r.enhanced == "5.7.139" && strings.Contains(r.text, "credentials were incorrect"):
		f.Fix = fmt.Sprintf("Microsoft 365 says the password of %s is wrong or has expired: correct auth.password (encrypt the new one with sluice secret encrypt) and reload; better, switch to XOAUTH2 before basic AUTH is turned off", mailbox)
	case r.enhanced == "5.7.139" || r.enhanced == "5.7.30" || strings.Contains(r.text, "basic authentication is disabled") || strings.Contains(r.text, "basic authentication is not supported"):
		f.Fix = "Microsoft 365 has turned off basic SMTP AUTH for this tenant/mailbox; switch the send connector to auth mechanism XOAUTH2 with an oauth2 client-credentials app registration (see README, Microsoft 365 with OAuth2)"
	case r.code == 534 && (r.enhanced == "5.7.9" || r.enhanced == "5.7.14"):
		f.Fix = "Google refuses the account's normal password: create an app password for " + mailbox + " (needs 2-Step Verification) and put it in auth.password, or switch to XOAUTH2 with preset: google"
	case r.enhanced == "5.7.57" || r.code == 530 && (strings.Contains(r.text, "authentication required") || strings.Contains(r.text, "not authenticated")):
		f.Problem = "the upstream requires Sluice to authenticate: " + lastErr
		f.Fix = "give the send connector auth (mechanism, username and password, or XOAUTH2), or have the upstream accept this relay's address without AUTH (Exchange: a receive connector for this IP with anonymous permission)"
	case r.code == 535 && oauth:
		f.Problem = "the upstream refuses Sluice's OAuth2 token: " + lastErr
		f.Fix = fmt.Sprintf("Entra ID issued the token but Exchange Online does not let the app send as %s: give the app the Office 365 Exchange Online permission SMTP.SendAsApp with admin consent, register its service principal (New-ServicePrincipal) and grant it the mailbox (Add-MailboxPermission -Identity %s -User <service principal id> -AccessRights FullAccess); auth.username must be that mailbox", mailbox, mailbox)
	case r.code == 535 || r.enhanced == "5.7.8":
		f.Fix = fmt.Sprintf("the user name or password for %s is wrong or has expired: correct auth.username and auth.password in the send connector (encrypt the password with sluice secret encrypt) and reload Sluice", mailbox)
	default:
		return Finding{}, false
	}
	return f, true
}

// failingFix says what a next hop's last error means for an admin;
// identity is the queue's, "" for a host.
func failingFix(lastErr, identity string) string {
	retry := "sluice queue retry " + quote(identity)
	if identity == "" {
		retry = "Sluice tries the host again by itself"
	}
	r := parseReply(lastErr)
	switch t := r.text; {
	case strings.Contains(t, "certificate") && strings.Contains(t, "could not be found"):
		// Exchange's own wording when its connector's certificate is gone (seed 003).
		return "the upstream cannot find its own TLS certificate (Exchange: the TlsCertificateName of its connector no longer matches an installed certificate); its admin must bind a valid certificate and restart its transport service"
	case strings.Contains(t, "not valid for send connector") || strings.Contains(t, "x509:") || strings.Contains(t, "certificate"):
		return "a certificate problem: " + delivery.CertificateFix(lastErr)
	case strings.Contains(t, "is not an smtp server"):
		return "something other than an SMTP server answers there (a web server, a port that wants TLS first): check the host and port of the send connector's smarthosts (port 25 or 587; 465 with tls.implicit), with sluice test connect HOST:PORT"
	case strings.Contains(t, "no send connector serves"):
		return "add the recipients' domains (or \"*\") to a send connector's address_spaces and reload; then " + retry
	case strings.Contains(t, "must issue a starttls") || r.enhanced == "5.7.0" && strings.Contains(t, "tls"):
		return "the upstream wants TLS first: set the send connector's tls.mode to required or verify"
	case r.enhanced == "5.7.60" || strings.Contains(t, "send as"):
		return "the upstream refuses the sender address for this mailbox: grant the mailbox Send As for that sender, or set rewrite_sender: true on the send connector"
	case strings.Contains(t, "closed the connection before its greeting"):
		return "the upstream takes the connection and hangs up before its greeting: it refuses this server's address (an Exchange receive connector's RemoteIPRanges, a Microsoft 365 connector's sender IPs, a firewall or IPS) or is at its connection limit; add this server's address there, or lower the send connector's max_connections; then " + retry
	case strings.Contains(t, "cannot connect") || strings.Contains(t, "timed out") || strings.Contains(t, "connection refused") || strings.Contains(t, "no such host"):
		return "the upstream cannot be reached: check that it is up, the host name and port, DNS and firewalls (sluice test connect HOST:PORT)"
	case strings.Contains(t, "permission denied") || strings.Contains(t, "access is denied"):
		return "Sluice may not write where the send connector delivers: give the account Sluice runs as write access to that directory; then " + retry
	case strings.Contains(t, "oauth2") || strings.Contains(t, "token endpoint"):
		return "Sluice cannot get an OAuth2 token: see the OAUTH2-TOKEN finding"
	case r.code == 452 || r.enhanced == "4.3.1":
		return "the upstream is out of storage; its admin must free space. Sluice keeps retrying"
	case r.code/100 == 4:
		return "the upstream refuses for now (greylisting, load, a limit); Sluice retries by itself. If it persists, read the upstream's reply and ask its admin"
	}
	return "fix what the upstream's reply complains about; then " + retry
}

// ago says how long before now t was, for people: "2h05m", "12m", "under a minute".
func ago(now, t time.Time) string { return span(now.Sub(t)) }

func span(d time.Duration) string {
	d = d.Round(time.Minute)
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// basicAuthToMicrosoft warns of a send connector that logs in to Exchange
// Online with a password: Microsoft is turning basic SMTP AUTH off for
// every tenant, and from then on each message is refused with
// 535 5.7.139 or 550 5.7.30 (seed 002's smtp.office365.com relay). Said
// before the first refusal, like a certificate about to expire; once
// Microsoft refuses, the UPSTREAM-AUTH error among found says it instead.
func basicAuthToMicrosoft(c *config.Config, found []Finding) []Finding {
	var out []Finding
	for i := range c.SendConnectors {
		sc := &c.SendConnectors[i]
		if m := sc.Auth.Mechanism; m != "PLAIN" && m != "LOGIN" || !toMicrosoft365(sc) || refused(found, sc.Name) {
			continue
		}
		out = append(out, Finding{Rule: RuleUpstreamAuth, Severity: Warning, Subject: "send connector " + sc.Name,
			Problem: fmt.Sprintf("logs in to Microsoft 365 with a password (AUTH %s as %s): Microsoft is turning basic authentication off, after which every message is refused with 535 5.7.139 Authentication unsuccessful, basic authentication is disabled",
				sc.Auth.Mechanism, sc.Auth.Username),
			Fix: "switch the send connector to auth mechanism XOAUTH2 with an oauth2 client-credentials app registration that has the SMTP.SendAsApp permission (see README, Microsoft 365 with OAuth2)"})
	}
	return out
}

// toMicrosoft365 reports whether sc delivers to Exchange Online's client
// submission endpoint.
func toMicrosoft365(sc *config.SendConnector) bool {
	if sc.Preset == config.PresetMicrosoft365 {
		return true
	}
	for _, h := range sc.Smarthosts {
		if host := strings.ToLower(strings.TrimSuffix(h.Host, ".")); host == "smtp.office365.com" || host == "smtp-legacy.office365.com" {
			return true
		}
	}
	return false
}

// refused reports whether found has an UPSTREAM-AUTH error about the send
// connector called name: its queue, one of its smarthosts.
func refused(found []Finding, name string) bool {
	for _, f := range found {
		if f.Rule == RuleUpstreamAuth && f.Severity == Error && (f.Subject == "queue "+name ||
			strings.HasPrefix(f.Subject, "send connector "+name+", ") || strings.HasSuffix(f.Subject, "(send connector "+name+")")) {
			return true
		}
	}
	return false
}
