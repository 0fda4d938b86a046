package probe

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// advise adds what an experienced admin would say about the findings.
func (r *Report) advise(o Options) {
	add := func(format string, args ...any) { r.Advice = append(r.Advice, fmt.Sprintf(format, args...)) }
	if r.Banner == "" && r.Error != "" {
		var dns *net.DNSError
		switch {
		case errors.As(r.dialErr, &dns) && dns.IsNotFound:
			add("the name %s does not exist in DNS: check its spelling, or give the server's IP address", dns.Name)
		case errors.As(r.dialErr, &dns):
			add("the name %s could not be looked up (%s): check this machine's DNS servers, or give the server's IP address", dns.Name, dns.Err)
		case strings.Contains(r.Error, "refused"):
			add("nothing listens on %s, or a firewall rejects the connection", o.Addr)
		case r.dialErr != nil && isTimeout(r.dialErr):
			add("nothing answered at %s within %s: the host is down, or a firewall drops the connection", o.Addr, o.Timeout)
		case r.tlsFirst:
			add("the server waits for a TLS handshake before its greeting (port 465 style): run again with --tls")
		case r.plainFirst != "":
			add("the server speaks plain SMTP first (it began %q), not TLS: run again with --starttls instead of --tls", r.plainFirst+"…")
		case !o.ImplicitTLS && r.Remote != "":
			add("the server sent no SMTP greeting: a port that wants TLS from the first byte (465) waits like this; try --tls. Else it is not an SMTP server")
		}
		return
	}
	if !o.StartTLS && !o.ImplicitTLS && r.StartTLSOffer && len(r.AuthOffered) == 0 {
		add("AUTH is not offered before TLS; many servers offer it only after STARTTLS: run again with --starttls")
	}
	if (o.StartTLS || o.ImplicitTLS) && r.TLS != nil && len(r.AuthOffered) == 0 {
		add("no AUTH mechanism is offered even after TLS: this port or connector does not take logins (clients that send credentials anyway, like .NET's SmtpClient, fall back to anonymous)")
	}
	if r.TLS != nil {
		if !r.TLS.Verified {
			add("the certificate does not verify for %s: %s; clients that check certificates will refuse to send", r.TLS.ServerName, r.TLS.VerifyError)
		}
		if len(r.TLS.Chain) > 0 {
			if d := r.TLS.Chain[0].DaysLeft; d < 0 {
				add("the certificate has expired")
			} else if d < 30 {
				add("the certificate expires in %d days", d)
			}
		}
		if r.TLS.Version == "TLS 1.0" || r.TLS.Version == "TLS 1.1" {
			add("the server negotiated %s, which is obsolete; only legacy devices should need it", r.TLS.Version)
		}
	}
	if r.Auth != nil && !r.Auth.OK {
		reply := r.Auth.Reply
		lower := strings.ToLower(reply)
		// Microsoft 365 gives 5.7.139 for SMTP AUTH turned off, wrong
		// credentials and basic authentication turned off alike; the
		// text tells them apart (as health's UPSTREAM-AUTH does).
		switch {
		case strings.Contains(lower, "smtpclientauthentication"):
			add("Microsoft 365 has SMTP AUTH (authenticated client submission) turned off for this mailbox or the whole tenant, which OAuth2 needs too: in Exchange Online PowerShell run Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false (or, tenant-wide, Set-TransportConfig -SmtpClientAuthenticationDisabled $false)")
		case strings.Contains(reply, "5.7.139") && strings.Contains(lower, "credentials were incorrect"):
			add("the server refused the user name or password")
		case strings.Contains(reply, "5.7.139") || strings.Contains(reply, "5.7.30") || strings.Contains(lower, "basic authentication is disabled"):
			add("Microsoft 365 has basic authentication turned off for this tenant or mailbox: use OAuth2 (a send connector with preset: microsoft365 and auth.oauth2)")
		case strings.Contains(reply, "5.7.57"):
			add("the mailbox is not allowed to use SMTP AUTH (client submission): enable Authenticated SMTP for it or use OAuth2")
		case strings.HasPrefix(reply, "535"):
			add("the server refused the user name or password")
		case strings.HasPrefix(reply, "504") || strings.HasPrefix(reply, "502"):
			add("the server does not take %s here; it offers %s", r.Auth.Mechanism, strings.Join(r.AuthOffered, ", "))
		case (strings.HasPrefix(reply, "530") || strings.HasPrefix(reply, "538")) && r.TLS == nil:
			add("the server wants TLS before AUTH: run again with --starttls")
		case strings.HasPrefix(reply, "530") || strings.HasPrefix(reply, "538"):
			add("the server refused AUTH although the session is encrypted (%s): it may want a stronger TLS version or a client certificate; its reply says which", r.TLS.Version)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
