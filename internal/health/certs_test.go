package health_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/health"
)

func receiveTLS(c *certtest.Cert, fqdn string) string {
	return fmt.Sprintf(`node: {hostname: relay.test}
receive_connectors:
  - name: Submission
    bindings: ["0.0.0.0:587"]
    remote_ip_ranges: [10.0.0.0/8]
    fqdn: %s
    tls: {mode: starttls, certificate: %q, key: %q}
    auth_mechanisms: [LOGIN]
admin: {listen: "off"}
`, fqdn, c.CertFile, c.KeyFile)
}

func sendTLS(c *certtest.Cert) string {
	return fmt.Sprintf(`node: {hostname: relay.test}
receive_connectors: [{name: Apps, bindings: ["0.0.0.0:25"], remote_ip_ranges: [10.0.0.0/8], permissions: [anonymous]}]
send_connectors:
  - name: Exchange
    address_spaces: ["*"]
    delivery: smarthost
    smarthosts: [exch1.contoso.com:25]
    tls: {mode: required, client_certificate: %q, client_key: %q}
admin: {listen: "off"}
`, c.CertFile, c.KeyFile)
}

func adminTLS(c *certtest.Cert) string {
	return fmt.Sprintf(`node: {hostname: relay.test}
receive_connectors: [{name: Apps, bindings: ["0.0.0.0:25"], remote_ip_ranges: [10.0.0.0/8], permissions: [anonymous]}]
admin: {listen: "127.0.0.1:8025", certificate: %q, key: %q}
`, c.CertFile, c.KeyFile)
}

// replace copies from's certificate or key file over to's, as an admin
// renewing (or breaking) a certificate in place would.
func replace(t *testing.T, to, from string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCertificates(t *testing.T) {
	now := time.Now()
	const day = 24 * time.Hour
	type tc struct {
		name string
		cfg  func(t *testing.T) *config.Config // loads, then may change files
		now  time.Time
		rule string
		want string // "severity: problem text", "" for no finding of rule
		fix  string // text the fix contains
	}
	good := func(names ...string) func(t *testing.T) *config.Config {
		return func(t *testing.T) *config.Config {
			return load(t, receiveTLS(certtest.New(t, names...), "relay.contoso.com"))
		}
	}
	expiring := func(t *testing.T) *config.Config {
		return load(t, receiveTLS(certtest.NewWith(t, certtest.Options{NotAfter: now.Add(10 * day)}, "relay.contoso.com"), "relay.contoso.com"))
	}
	cases := []tc{
		{name: "valid certificate for the fqdn", cfg: good("relay.contoso.com"), rule: health.RuleCertExpiring},
		{name: "valid certificate: not expired", cfg: good("relay.contoso.com"), rule: health.RuleCertExpired},
		{name: "valid certificate: files present", cfg: good("relay.contoso.com"), rule: health.RuleCertMissing},
		{name: "expires in 10 days", cfg: expiring, rule: health.RuleCertExpiring,
			want: "warning: for relay.contoso.com", fix: "renew it before then"},
		{name: "expires in 10 days, threshold 7 days", rule: health.RuleCertExpiring, cfg: func(t *testing.T) *config.Config {
			c := certtest.NewWith(t, certtest.Options{NotAfter: now.Add(10 * day)}, "relay.contoso.com")
			return load(t, receiveTLS(c, "relay.contoso.com")+"health: {certificate_expiry: 7d}\n")
		}},
		{name: "expired", cfg: good("relay.contoso.com"), now: now.Add(400 * day), rule: health.RuleCertExpired,
			want: "error: expired on " + now.Add(365*day).UTC().Format("2006-01-02"), fix: "clients that check certificates refuse"},
		{name: "not valid yet (a clock behind)", cfg: good("relay.contoso.com"), now: now.Add(-2 * day), rule: health.RuleCertExpired,
			want: "error: is not valid until", fix: "check this machine's clock"},
		{name: "fqdn not among the names", cfg: good("mail.contoso.com", "10.0.0.25"), rule: health.RuleCertName,
			want: "warning: (for mail.contoso.com, 10.0.0.25, ", fix: "include relay.contoso.com"},
		{name: "wildcard covers the fqdn", cfg: good("*.contoso.com"), rule: health.RuleCertName},
		{name: "certificate deleted after load (seed 003)", rule: health.RuleCertMissing, cfg: func(t *testing.T) *config.Config {
			c := certtest.New(t, "relay.contoso.com")
			cfg := load(t, receiveTLS(c, "relay.contoso.com"))
			if err := os.Remove(c.CertFile); err != nil {
				t.Fatal(err)
			}
			return cfg
		}, want: "error: does not exist; check the path; Sluice still uses the copy it loaded", fix: "put the certificate chain at"},
		{name: "key replaced by another certificate's", rule: health.RuleCertMissing, cfg: func(t *testing.T) *config.Config {
			c := certtest.New(t, "relay.contoso.com")
			cfg := load(t, receiveTLS(c, "relay.contoso.com"))
			replace(t, c.KeyFile, certtest.New(t, "relay.contoso.com").KeyFile)
			return cfg
		}, want: "error: does not belong to certificate"},
		{name: "renewed on disk, not yet reloaded", rule: health.RuleCertExpiring, cfg: func(t *testing.T) *config.Config {
			c := certtest.NewWith(t, certtest.Options{NotAfter: now.Add(10 * day)}, "relay.contoso.com")
			cfg := load(t, receiveTLS(c, "relay.contoso.com"))
			renewed := certtest.New(t, "relay.contoso.com")
			replace(t, c.CertFile, renewed.CertFile)
			replace(t, c.KeyFile, renewed.KeyFile)
			return cfg
		}, want: "warning: expires on", fix: "reload Sluice (sluice reload, or SIGHUP) or restart it to use it"},
		{name: "replaced on disk by an expired one", rule: health.RuleCertExpired, now: now.Add(2 * time.Hour), cfg: func(t *testing.T) *config.Config {
			c := certtest.New(t, "relay.contoso.com")
			cfg := load(t, receiveTLS(c, "relay.contoso.com"))
			old := certtest.NewWith(t, certtest.Options{NotAfter: now.Add(time.Hour)}, "relay.contoso.com")
			replace(t, c.CertFile, old.CertFile)
			replace(t, c.KeyFile, old.KeyFile)
			return cfg
		}, want: "error: the certificate now in the file, which Sluice uses after the next reload"},
		{name: "send connector client certificate expiring", rule: health.RuleCertExpiring, cfg: func(t *testing.T) *config.Config {
			return load(t, sendTLS(certtest.NewWith(t, certtest.Options{NotAfter: now.Add(3 * day)}, "relay.contoso.com")))
		}, want: "warning: in 3 days", fix: "upstream that requires the client certificate refuses Sluice"},
		{name: "send connector client certificate valid", rule: health.RuleCertExpiring, cfg: func(t *testing.T) *config.Config {
			return load(t, sendTLS(certtest.New(t, "relay.contoso.com")))
		}},
		{name: "admin certificate deleted", rule: health.RuleCertMissing, cfg: func(t *testing.T) *config.Config {
			c := certtest.New(t, "localhost")
			cfg := load(t, adminTLS(c))
			os.Remove(c.KeyFile)
			return cfg
		}, want: "error: key file", fix: "admin API"},
		{name: "admin certificate present", rule: health.RuleCertMissing, cfg: func(t *testing.T) *config.Config {
			return load(t, adminTLS(certtest.New(t, "localhost")))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at := c.now
			if at.IsZero() {
				at = now
			}
			fs := check(t, health.Evaluate(health.Input{Config: c.cfg(t), Now: at}), c.rule, c.want)
			if c.fix != "" && (len(fs) == 0 || !strings.Contains(fs[0].Fix, c.fix)) {
				t.Errorf("fix lacks %q: %+v", c.fix, fs)
			}
		})
	}
}

func TestCertificateSubjects(t *testing.T) {
	c := certtest.NewWith(t, certtest.Options{NotAfter: time.Now().Add(24 * time.Hour)}, "relay.contoso.com")
	for yaml, want := range map[string]string{
		receiveTLS(c, "relay.contoso.com"): "receive connector Submission",
		sendTLS(c):                         "send connector Exchange (client certificate)",
		adminTLS(c):                        "admin API",
	} {
		fs := only(health.Evaluate(health.Input{Config: load(t, yaml)}), health.RuleCertExpiring)
		if len(fs) != 1 || fs[0].Subject != want || !strings.Contains(fs[0].Problem, "in 24 hours") {
			t.Errorf("want one CERT-EXPIRING about %s in 24 hours, got %+v", want, fs)
		}
	}
}
