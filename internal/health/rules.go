package health

import (
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/token"
)

// certFile is one certificate the config uses, with what it is for.
type certFile struct {
	subject, cert, key string
	name               string // a receive connector's FQDN the certificate must carry
}

// certificates checks every certificate file again: it may have been
// deleted, replaced or have expired since the config was loaded.
func certificates(c *config.Config, now time.Time) []Finding {
	var files []certFile
	for _, rc := range c.ReceiveConnectors {
		if rc.TLS.Certificate != "" {
			files = append(files, certFile{"receive connector " + rc.Name, rc.TLS.Certificate, rc.TLS.Key, rc.FQDN})
		}
	}
	for _, sc := range c.SendConnectors {
		if sc.TLS.ClientCertificate != "" {
			files = append(files, certFile{"send connector " + sc.Name + " (client certificate)", sc.TLS.ClientCertificate, sc.TLS.ClientKey, ""})
		}
	}
	if c.Admin.Certificate != "" {
		files = append(files, certFile{"admin API", c.Admin.Certificate, c.Admin.Key, ""})
	}
	warnWithin := c.Health.CertificateExpiry.D()
	var out []Finding
	for _, f := range files {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			out = append(out, Finding{Rule: "CERT-MISSING", Severity: Error, Subject: f.subject,
				Problem: fmt.Sprintf("the certificate %s with key %s cannot be used: %v", f.cert, f.key, err),
				Fix:     "put a readable PEM certificate and its matching key at these paths (or correct the config), then reload with SIGHUP; until then mail that needs it waits in the queue"})
			continue
		}
		leaf := pair.Leaf
		left := leaf.NotAfter.Sub(now)
		switch {
		case left <= 0:
			out = append(out, Finding{Rule: "CERT-EXPIRED", Severity: Error, Subject: f.subject,
				Problem: fmt.Sprintf("the certificate %s (%s) expired on %s", f.cert, leaf.Subject.CommonName, leaf.NotAfter.Format("2006-01-02")),
				Fix:     "renew the certificate, replace the file and reload Sluice (SIGHUP)"})
		case left < warnWithin:
			out = append(out, Finding{Rule: "CERT-EXPIRING", Severity: Warning, Subject: f.subject,
				Problem: fmt.Sprintf("the certificate %s (%s) expires on %s, in %d days", f.cert, leaf.Subject.CommonName, leaf.NotAfter.Format("2006-01-02"), int(left.Hours()/24)),
				Fix:     "renew it before then, replace the file and reload Sluice (SIGHUP)"})
		}
		if f.name != "" && leaf.VerifyHostname(f.name) != nil {
			out = append(out, Finding{Rule: "CERT-NAME", Severity: Warning, Subject: f.subject,
				Problem: fmt.Sprintf("the certificate %s is for %s, not for the connector's name %s: clients that verify will refuse it", f.cert, strings.Join(names(leaf.DNSNames, leaf.Subject.CommonName), ", "), f.name),
				Fix:     "get a certificate whose subject alternative names include " + f.name + ", or set the connector's fqdn to a name the certificate carries"})
		}
	}
	return out
}

func names(sans []string, cn string) []string {
	if len(sans) > 0 {
		return sans
	}
	return []string{cn}
}

// openRelays finds connectors that let the whole Internet relay.
func openRelays(c *config.Config) []Finding {
	var out []Finding
	for _, rc := range c.ReceiveConnectors {
		if !rc.Has(config.PermRelay) && !rc.Has(config.PermExternallySecured) {
			continue
		}
		for _, r := range rc.RemoteIPRanges {
			if r.Bits() == 0 {
				out = append(out, Finding{Rule: "OPEN-RELAY", Severity: Error, Subject: "receive connector " + rc.Name,
					Problem: fmt.Sprintf("grants relay to %s: anyone who can reach %v can send mail anywhere through Sluice", r, rc.Bindings),
					Fix:     "limit remote_ip_ranges to the hosts that must relay (e.g. 10.0.0.15/32), or remove the relay right and require AUTH"})
				break
			}
		}
	}
	return out
}

// diskSpace warns before Sluice has to refuse mail for lack of space.
func diskSpace(c *config.Config, free func(string) (int64, error)) []Finding {
	if free == nil || c.Queue.MinFreeSpace <= 0 {
		return nil
	}
	n, err := free(c.Node.DataDir)
	if err != nil {
		return nil
	}
	min := int64(c.Queue.MinFreeSpace)
	switch {
	case n < min:
		return []Finding{{Rule: "DISK-SPACE", Severity: Error, Subject: "data directory " + c.Node.DataDir,
			Problem: fmt.Sprintf("%d MB free, below queue.min_free_space (%d MB): Sluice refuses new mail with 452 4.3.1", n>>20, min>>20),
			Fix:     "free space on that disk (old logs, other files) or move node.data_dir to a larger disk; Sluice accepts mail again by itself"}}
	case n < 2*min:
		return []Finding{{Rule: "DISK-SPACE", Severity: Warning, Subject: "data directory " + c.Node.DataDir,
			Problem: fmt.Sprintf("%d MB free; below %d MB (queue.min_free_space) Sluice will refuse new mail", n>>20, min>>20),
			Fix:     "free space on that disk or move node.data_dir to a larger disk"}}
	}
	return nil
}

// queues finds backlogs and next hops that keep failing, and says what
// the last error means.
func queues(c *config.Config, qs []queue.QueueInfo, now time.Time) []Finding {
	var out []Finding
	for _, q := range qs {
		subject := "queue " + q.Identity
		if q.MessageCount > c.Health.QueueBacklog {
			out = append(out, Finding{Rule: "QUEUE-BACKLOG", Severity: Warning, Subject: subject,
				Problem: fmt.Sprintf("%d messages waiting (threshold health.queue_backlog %d); status %s", q.MessageCount, c.Health.QueueBacklog, q.Status),
				Fix:     "see why with sluice queue show " + q.Identity + "; if the next hop is slow, raise max_connections or its rate limit"})
		}
		if q.LastError == "" || q.RetryCount == 0 && q.Status != queue.HopRetry {
			continue
		}
		if f, ok := credentialFinding(subject, q.LastError); ok {
			out = append(out, f)
			continue
		}
		since := q.OldestMessage
		if q.Status == queue.HopRetry && !since.IsZero() && now.Sub(since) > c.Health.HopFailingFor.D() {
			out = append(out, Finding{Rule: "HOP-FAILING", Severity: Error, Subject: subject,
				Problem: fmt.Sprintf("the next hop %s has not taken mail for %s; last error: %s", q.NextHop, now.Sub(since).Round(time.Minute), q.LastError),
				Fix:     failingFix(q.LastError)})
		}
	}
	return out
}

// credentialFinding recognises an upstream's refusal of Sluice's
// credentials, including Microsoft's basic-auth rejections.
func credentialFinding(subject, lastErr string) (Finding, bool) {
	f := Finding{Rule: "UPSTREAM-AUTH", Severity: Error, Subject: subject, Problem: "the upstream refuses Sluice's credentials: " + lastErr}
	switch {
	case strings.Contains(lastErr, "5.7.139") || strings.Contains(lastErr, "5.7.30") || strings.Contains(strings.ToLower(lastErr), "basic authentication is disabled"):
		f.Fix = "Microsoft 365 has turned off basic SMTP AUTH for this tenant or mailbox; switch the send connector to preset: microsoft365 with auth.oauth2 (an Entra ID app registration with SMTP.SendAsApp; see README, Microsoft 365 with OAuth2)"
	case strings.Contains(lastErr, "5.7.57") || strings.Contains(lastErr, "5.7.3 ") && strings.Contains(lastErr, "SmtpClientAuthentication"):
		f.Fix = "the mailbox may not use SMTP AUTH: enable Authenticated SMTP for it (Set-CASMailbox -SmtpClientAuthenticationDisabled $false) or use OAuth2"
	case strings.HasPrefix(afterSaid(lastErr), "535") || strings.Contains(lastErr, " 5.7.8"):
		f.Fix = "the user name or password in the send connector's auth is wrong or has expired; correct it (sluice secret encrypt for the new password) and reload"
	default:
		return Finding{}, false
	}
	return f, true
}

func afterSaid(s string) string {
	if _, rest, ok := strings.Cut(s, " said: "); ok {
		return rest
	}
	return s
}

func failingFix(lastErr string) string {
	l := strings.ToLower(lastErr)
	switch {
	case strings.Contains(l, "certificate"):
		return "a certificate problem: check the send connector's tls settings (server_name, ca_file, client_certificate) and the upstream's certificate with sluice test connect HOST:PORT --starttls"
	case strings.Contains(l, "cannot connect") || strings.Contains(l, "timed out"):
		return "the upstream cannot be reached: check it is up, the host and port, and firewalls (sluice test connect HOST:PORT)"
	case strings.Contains(l, "oauth2"):
		return "the OAuth2 token cannot be obtained: see the OAUTH2-TOKEN finding"
	}
	return "read the last error (sluice queue show); fix what the upstream complains about, then sluice queue retry"
}

// tokens reports connectors whose OAuth2 token cannot be obtained.
func tokens(ts map[string]token.Status) []Finding {
	var out []Finding
	for name, st := range ts {
		if st.OK || st.LastError == "" {
			continue
		}
		fix := "check the send connector's auth.oauth2 settings (tenant, client_id, client_secret) against the app registration"
		l := strings.ToLower(st.LastError)
		switch {
		case strings.Contains(l, "invalid_client") || strings.Contains(l, "aadsts7000215") || strings.Contains(l, "aadsts7000222"):
			fix = "the client secret is wrong or expired: create a new client secret for the app registration in Entra ID, encrypt it with sluice secret encrypt, put it in auth.oauth2.client_secret and reload"
		case strings.Contains(l, "invalid_grant"):
			fix = "the refresh token was revoked or expired: authorise the app again to get a new refresh token, then update auth.oauth2.refresh_token"
		case strings.Contains(l, "unauthorized_client") || strings.Contains(l, "aadsts700016"):
			fix = "the client id is not known in this tenant: check auth.oauth2.client_id and tenant"
		}
		out = append(out, Finding{Rule: "OAUTH2-TOKEN", Severity: Error, Subject: "send connector " + name,
			Problem: "cannot get an OAuth2 token: " + st.LastError, Fix: fix})
	}
	return out
}
