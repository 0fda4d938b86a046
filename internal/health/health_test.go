package health_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/token"
)

func load(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml+`
send_connectors: [{name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}]
admin: {listen: "off"}
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// rules returns "RULE severity" for each finding.
func rules(fs []health.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Rule+" "+string(f.Severity))
	}
	return out
}

func want(t *testing.T, fs []health.Finding, rule string, sev health.Severity, problem string) health.Finding {
	t.Helper()
	for _, f := range fs {
		if f.Rule == rule && f.Severity == sev && strings.Contains(f.Problem, problem) {
			if f.Fix == "" {
				t.Errorf("%s has no fix", rule)
			}
			return f
		}
	}
	t.Fatalf("no %s %s finding mentioning %q; got %v\n%+v", sev, rule, problem, rules(fs), fs)
	return health.Finding{}
}

func none(t *testing.T, fs []health.Finding, rule string) {
	t.Helper()
	for _, f := range fs {
		if f.Rule == rule {
			t.Fatalf("unexpected %s finding: %+v", rule, f)
		}
	}
}

func tlsConnector(cert *certtest.Cert, fqdn string) string {
	return fmt.Sprintf(`node: {hostname: relay.test, data_dir: %s}
receive_connectors:
  - name: Submission
    bindings: ["127.0.0.1:587"]
    remote_ip_ranges: [10.0.0.0/8]
    fqdn: %s
    tls: {mode: starttls, certificate: %s, key: %s}
    auth_mechanisms: [LOGIN]
`, os.TempDir(), fqdn, cert.CertFile, cert.KeyFile)
}

func TestCertificates(t *testing.T) {
	now := time.Now()
	good := certtest.New(t, "relay.contoso.com")
	soon := certtest.NewWith(t, certtest.Options{NotAfter: now.Add(10 * 24 * time.Hour)}, "relay.contoso.com")

	fs := health.Evaluate(health.Input{Config: load(t, tlsConnector(good, "relay.contoso.com")), Now: now})
	none(t, fs, "CERT-EXPIRING")
	none(t, fs, "CERT-NAME")
	none(t, fs, "CERT-MISSING")

	fs = health.Evaluate(health.Input{Config: load(t, tlsConnector(soon, "relay.contoso.com")), Now: now})
	want(t, fs, "CERT-EXPIRING", health.Warning, "in 9 days")

	fs = health.Evaluate(health.Input{Config: load(t, tlsConnector(good, "relay.contoso.com")), Now: now.Add(400 * 24 * time.Hour)})
	want(t, fs, "CERT-EXPIRED", health.Error, "expired on")

	fs = health.Evaluate(health.Input{Config: load(t, tlsConnector(good, "smtp.contoso.com")), Now: now})
	want(t, fs, "CERT-NAME", health.Warning, "not for the connector's name smtp.contoso.com")

	// Loaded fine, then the file went away (seed 003): found at runtime.
	gone := certtest.New(t, "relay.contoso.com")
	cfg := load(t, tlsConnector(gone, "relay.contoso.com"))
	if err := os.Remove(gone.CertFile); err != nil {
		t.Fatal(err)
	}
	fs = health.Evaluate(health.Input{Config: cfg, Now: now})
	want(t, fs, "CERT-MISSING", health.Error, gone.CertFile)
}

func TestConfigErrorsBecomeFindings(t *testing.T) {
	_, err := config.Load("../config/testdata/config/secrets_wrong_node.yaml")
	if err == nil {
		t.Fatal("the wrong-node config loaded")
	}
	fs := health.Evaluate(health.Input{ConfigErr: err})
	f := want(t, fs, "SECRET-KEY", health.Error, "encrypted with key ac6de0c3")
	if !strings.Contains(f.Fix, "key") {
		t.Errorf("SECRET-KEY fix: %q", f.Fix)
	}

	_, err = config.Parse("x.yaml", []byte("node: {hostname: relay.test}\nreceive_connectors:\n  - {name: A, bindings: [\"127.0.0.1:25\"], remote_ip_ranges: [10.0.0.0/8], tls: {mode: starttls, certificate: /nonexistent/c.pem, key: /nonexistent/c.key}, permissions: [anonymous]}\nsend_connectors: [{name: Drop, address_spaces: [\"*\"], delivery: directory, directory: drop}]\n"))
	want(t, health.Evaluate(health.Input{ConfigErr: err}), "CERT-MISSING", health.Error, "/nonexistent/c.pem")

	fs = health.Evaluate(health.Input{ConfigErr: errors.New("cannot read x.yaml: permission denied")})
	want(t, fs, "CONFIG", health.Error, "permission denied")
}

func TestOpenRelay(t *testing.T) {
	open := load(t, `node: {hostname: relay.test}
receive_connectors:
  - {name: Everyone, bindings: ["0.0.0.0:25"], remote_ip_ranges: [0.0.0.0/0], permissions: [anonymous, relay]}
  - {name: App, bindings: ["0.0.0.0:2525"], remote_ip_ranges: [10.0.0.15], permissions: [anonymous, relay]}
  - {name: Inbound, bindings: ["0.0.0.0:26"], remote_ip_ranges: ["::/0"], permissions: [anonymous]}
`)
	fs := health.Evaluate(health.Input{Config: open})
	f := want(t, fs, "OPEN-RELAY", health.Error, "0.0.0.0/0")
	if f.Subject != "receive connector Everyone" {
		t.Errorf("subject %q", f.Subject)
	}
	if n := len(rules(fs)); n != 1 {
		t.Errorf("findings %v; want only Everyone's (App is one host, Inbound has no relay right)", rules(fs))
	}
}

func TestDiskSpace(t *testing.T) {
	cfg := load(t, `node: {hostname: relay.test}
receive_connectors: [{name: A, bindings: ["127.0.0.1:25"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
queue: {min_free_space: 100MB}
`)
	free := func(n int64) func(string) (int64, error) { return func(string) (int64, error) { return n, nil } }
	none(t, health.Evaluate(health.Input{Config: cfg, FreeSpace: free(1 << 40)}), "DISK-SPACE")
	want(t, health.Evaluate(health.Input{Config: cfg, FreeSpace: free(150 << 20)}), "DISK-SPACE", health.Warning, "150 MB free")
	want(t, health.Evaluate(health.Input{Config: cfg, FreeSpace: free(50 << 20)}), "DISK-SPACE", health.Error, "452 4.3.1")
}

func TestQueueRules(t *testing.T) {
	cfg := load(t, `node: {hostname: relay.test}
receive_connectors: [{name: A, bindings: ["127.0.0.1:25"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
health: {queue_backlog: 100, hop_failing_for: 30m}
`)
	now := time.Now()
	q := func(status string, count int, age time.Duration, lastErr string) queue.QueueInfo {
		return queue.QueueInfo{Identity: "Office 365", NextHop: "smtp.office365.com:587", Status: status, MessageCount: count,
			RetryCount: 3, OldestMessage: now.Add(-age), LastError: lastErr}
	}
	cases := []struct {
		name string
		q    queue.QueueInfo
		rule string
		sev  health.Severity
		text string
	}{
		{"backlog", q(queue.HopActive, 500, time.Minute, ""), "QUEUE-BACKLOG", health.Warning, "500 messages"},
		{"failing long", q(queue.HopRetry, 3, 2*time.Hour, "cannot connect to exch1:25: connection refused"), "HOP-FAILING", health.Error, "connection refused"},
		{"basic auth off", q(queue.HopRetry, 3, time.Minute, "smtp.office365.com [52.97.1.1] said: 535 5.7.139 Authentication unsuccessful, basic authentication is disabled."), "UPSTREAM-AUTH", health.Error, "5.7.139"},
		{"wrong password", q(queue.HopRetry, 3, time.Minute, "mail.contoso.com said: 535 5.7.8 Error: authentication failed"), "UPSTREAM-AUTH", health.Error, "5.7.8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := health.Evaluate(health.Input{Config: cfg, Queues: []queue.QueueInfo{tc.q}, Now: now})
			f := want(t, fs, tc.rule, tc.sev, tc.text)
			if tc.rule == "UPSTREAM-AUTH" && strings.Contains(tc.text, "5.7.139") && !strings.Contains(f.Fix, "oauth2") {
				t.Errorf("the fix for Microsoft's basic-auth refusal should point at OAuth2: %q", f.Fix)
			}
		})
	}
	// A young failure is not (yet) a finding.
	none(t, health.Evaluate(health.Input{Config: cfg, Queues: []queue.QueueInfo{q(queue.HopRetry, 1, time.Minute, "cannot connect to exch1:25: connection refused")}, Now: now}), "HOP-FAILING")
}

func TestOAuth2Token(t *testing.T) {
	fs := health.Evaluate(health.Input{Config: load(t, "node: {hostname: relay.test}\nreceive_connectors: [{name: A, bindings: [\"127.0.0.1:25\"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]\n"),
		Tokens: map[string]token.Status{
			"Office 365": {LastError: "invalid_client: AADSTS7000215: Invalid client secret provided."},
			"Gmail":      {OK: true},
		}})
	f := want(t, fs, "OAUTH2-TOKEN", health.Error, "AADSTS7000215")
	if !strings.Contains(f.Fix, "new client secret") {
		t.Errorf("fix %q", f.Fix)
	}
	if len(fs) != 1 {
		t.Errorf("findings %v; the working connector must not be one", rules(fs))
	}
}

func TestRenderAndWorst(t *testing.T) {
	var b bytes.Buffer
	health.Render(&b, nil)
	if !strings.Contains(b.String(), "healthy") || health.Worst(nil) != health.Healthy {
		t.Errorf("empty: %q %s", b.String(), health.Worst(nil))
	}
	fs := []health.Finding{{Rule: "DISK-SPACE", Severity: health.Warning, Subject: "d", Problem: "p", Fix: "f"},
		{Rule: "OPEN-RELAY", Severity: health.Error, Subject: "s", Problem: "q", Fix: "g"}}
	b.Reset()
	health.Render(&b, fs)
	for _, w := range []string{"ERROR", "OPEN-RELAY", "fix: g", "1 error(s), 1 warning(s)"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("render lacks %q:\n%s", w, b.String())
		}
	}
	if health.Worst(fs) != health.Error || health.Worst(fs[:1]) != health.Warning {
		t.Error("Worst")
	}
}
