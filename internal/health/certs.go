package health

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/certs"
	"github.com/sluice-relay/sluice/internal/config"
)

// certUse is one certificate the config names, with what depends on it.
type certUse struct {
	subject   string // "receive connector Default"
	cert, key string // PEM files
	fqdn      string // a receive connector's name clients verify; "" for others
	impact    string // what breaks when the certificate does
	// served is the chain Sluice loaded with the config and uses now,
	// leaf first; nil when the config does not keep it (admin API).
	served []*x509.Certificate
}

func certUses(c *config.Config) []certUse {
	var out []certUse
	for i := range c.ReceiveConnectors {
		rc := &c.ReceiveConnectors[i]
		if rc.TLS.Certificate == "" {
			continue
		}
		out = append(out, certUse{subject: "receive connector " + rc.Name, cert: rc.TLS.Certificate, key: rc.TLS.Key, fqdn: rc.FQDN,
			impact: "clients that check certificates refuse STARTTLS or TLS on this connector and cannot send",
			served: chainOf(rc.TLSConfig())})
	}
	for i := range c.SendConnectors {
		sc := &c.SendConnectors[i]
		if sc.TLS.ClientCertificate == "" {
			continue
		}
		out = append(out, certUse{subject: "send connector " + sc.Name + " (client certificate)", cert: sc.TLS.ClientCertificate, key: sc.TLS.ClientKey,
			impact: "an upstream that requires the client certificate refuses Sluice, and mail waits in the queue (seed 003)",
			served: chainOf(sc.TLSConfig())})
	}
	if c.Admin.Certificate != "" {
		out = append(out, certUse{subject: "admin API", cert: c.Admin.Certificate, key: c.Admin.Key,
			impact: "the CLI, the console and monitoring refuse the admin API's certificate"})
	}
	return out
}

func chainOf(cfg *tls.Config) []*x509.Certificate {
	if cfg == nil || len(cfg.Certificates) == 0 {
		return nil
	}
	return chain(&cfg.Certificates[0])
}

// chain parses the certificates a pair sends, leaf first; nil when the
// leaf cannot be parsed, and without any later one that cannot.
func chain(pair *tls.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for i, der := range pair.Certificate {
		if i == 0 && pair.Leaf != nil {
			out = append(out, pair.Leaf)
			continue
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			break
		}
		out = append(out, c)
	}
	return out
}

func sameChain(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return bytes.Equal(x.Raw, y.Raw) })
}

// certificates reads every certificate file again: it may have been
// deleted, replaced or have expired since the config was loaded. Expiry and
// name are judged on the certificate in use and, when the file now holds
// another one, on that too (it is what the next reload serves).
func certificates(c *config.Config, now time.Time) []Finding {
	within := c.Health.CertificateExpiry.D()
	var out []Finding
	for _, u := range certUses(c) {
		var file []*x509.Certificate
		pair, err := certs.Load(u.cert, u.key)
		if err != nil {
			problem := err.Error()
			if u.served != nil {
				problem += fmt.Sprintf("; Sluice still uses the copy it loaded (valid until %s), but the next reload or restart will fail", day(u.served[0].NotAfter))
			}
			out = append(out, Finding{Rule: RuleCertMissing, Severity: Error, Subject: u.subject, Problem: problem,
				Fix: fmt.Sprintf("put the certificate chain at %s and its private key at %s (PEM, readable by the account Sluice runs as), or correct the paths in the config; otherwise %s", u.cert, u.key, u.impact)})
		} else {
			file = chain(pair)
		}
		inUse := u.served
		if inUse == nil {
			inUse = file
		}
		if inUse == nil {
			continue
		}
		fs := judge(u, inUse, "", now, within)
		if file != nil && !sameChain(file, inUse) {
			next := judge(u, file, "the certificate now in the file, which Sluice uses after the next reload, ", now, within)
			for i := range fs {
				if !hasRule(next, fs[i].Rule) {
					fs[i].Fix = fmt.Sprintf("%s already holds a certificate without this problem (valid until %s): reload Sluice (sluice reload, or SIGHUP) or restart it to use it", u.cert, day(file[0].NotAfter))
				}
			}
			fs = append(fs, next...)
		}
		out = append(out, fs...)
	}
	return out
}

// judge checks one chain: the expiry of each certificate in it (clients
// verify them all) and the leaf's name. which is "" for the one in use,
// or says which other one it is.
func judge(u certUse, chain []*x509.Certificate, which string, now time.Time, within time.Duration) []Finding {
	l := chain[0]
	var out []Finding
	desc := fmt.Sprintf("%s(%s, %s)", which, describe(l), u.cert)
	switch left := l.NotAfter.Sub(now); {
	case now.Before(l.NotBefore):
		// Clients refuse it as they refuse an expired one: a certificate
		// issued for later, or this machine's clock behind.
		out = append(out, Finding{Rule: RuleCertExpired, Severity: Error, Subject: u.subject,
			Problem: fmt.Sprintf("the certificate %s is not valid until %s", desc, l.NotBefore.UTC().Format(time.RFC3339)),
			Fix:     fmt.Sprintf("check this machine's clock; if it is right, put a certificate valid now in %s and %s and reload Sluice (sluice reload, or SIGHUP); until then %s", u.cert, u.key, u.impact)})
	case left <= 0:
		out = append(out, Finding{Rule: RuleCertExpired, Severity: Error, Subject: u.subject,
			Problem: fmt.Sprintf("the certificate %s expired on %s", desc, day(l.NotAfter)),
			Fix:     fmt.Sprintf("renew it, replace %s and %s, and reload Sluice (sluice reload, or SIGHUP); until then %s", u.cert, u.key, u.impact)})
	case left < within:
		out = append(out, Finding{Rule: RuleCertExpiring, Severity: Warning, Subject: u.subject,
			Problem: fmt.Sprintf("the certificate %s expires on %s, %s", desc, day(l.NotAfter), in(left)),
			Fix:     fmt.Sprintf("renew it before then, replace %s and %s, and reload Sluice (sluice reload, or SIGHUP); once it has expired %s", u.cert, u.key, u.impact)})
	}
	for i := 1; i < len(chain); i++ {
		if chain[i-1].CheckSignatureFrom(chain[i]) == nil {
			continue
		}
		out = append(out, Finding{Rule: RuleCertMissing, Severity: Error, Subject: u.subject,
			Problem: fmt.Sprintf("the chain of the certificate %s is broken: certificate %d in the file (CN=%s) did not issue certificate %d (CN=%s, issued by %s), so clients cannot verify it", desc, i+1, chain[i].Subject.CommonName, i, chain[i-1].Subject.CommonName, chain[i-1].Issuer.CommonName),
			Fix:     fmt.Sprintf("put after the certificate in %s the intermediate certificates that issued it, in order (the CA delivers them with the certificate), and reload Sluice (sluice reload, or SIGHUP); until then %s", u.cert, u.impact)})
		break
	}
	for _, c := range chain[1:] {
		desc := fmt.Sprintf("%sCN=%s, sent after the certificate %s in %s", which, c.Subject.CommonName, describe(l), u.cert)
		fix := fmt.Sprintf("get the intermediate certificate the CA issues certificates under now (it comes with a renewed certificate), put it after the certificate in %s in place of the old one, and reload Sluice (sluice reload, or SIGHUP)", u.cert)
		switch left := c.NotAfter.Sub(now); {
		case left <= 0:
			out = append(out, Finding{Rule: RuleCertExpired, Severity: Error, Subject: u.subject,
				Problem: fmt.Sprintf("the intermediate certificate (%s) expired on %s: clients verify the whole chain", desc, day(c.NotAfter)),
				Fix:     fmt.Sprintf("%s; until then %s", fix, u.impact)})
		case left < within:
			out = append(out, Finding{Rule: RuleCertExpiring, Severity: Warning, Subject: u.subject,
				Problem: fmt.Sprintf("the intermediate certificate (%s) expires on %s, %s: clients verify the whole chain", desc, day(c.NotAfter), in(left)),
				Fix:     fmt.Sprintf("before then, %s; once it has expired %s", fix, u.impact)})
		}
	}
	if u.fqdn != "" && l.VerifyHostname(u.fqdn) != nil {
		out = append(out, Finding{Rule: RuleCertName, Severity: Warning, Subject: u.subject,
			Problem: fmt.Sprintf("the certificate %s does not carry the connector's fqdn %s among its subject alternative names: clients that verify the name refuse it", desc, u.fqdn),
			Fix:     fmt.Sprintf("get a certificate whose subject alternative names include %s (a wildcard such as *.%s also does), or set the connector's fqdn to a name the certificate carries", u.fqdn, parent(u.fqdn))})
	}
	return out
}

// describe names a certificate by what it covers: "for relay.contoso.com, smtp.contoso.com".
func describe(l *x509.Certificate) string {
	names := append([]string(nil), l.DNSNames...)
	for _, ip := range l.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return fmt.Sprintf("CN=%s, no subject alternative names", l.Subject.CommonName)
	}
	return "for " + strings.Join(names, ", ")
}

func parent(host string) string {
	if _, p, ok := strings.Cut(host, "."); ok && strings.Contains(p, ".") {
		return p
	}
	return host
}

func hasRule(fs []Finding, rule string) bool {
	for _, f := range fs {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// in says how far off d is, for people: "in 9 days", "in 5 hours".
func in(d time.Duration) string {
	// Rounded: a certificate made to last 10 days is "in 10 days" a
	// second later.
	if d < 47*time.Hour {
		return fmt.Sprintf("in %d hours", int(d.Round(time.Hour).Hours()))
	}
	return fmt.Sprintf("in %d days", int(d.Round(24*time.Hour).Hours()/24))
}
