package health_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/delivery"
	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/queue"
)

func TestUpstreamAuth(t *testing.T) {
	cfg := upstreamCfg(t)
	now := time.Now()
	cases := []struct {
		name      string
		connector string
		lastErr   string
		want      string // "" for no UPSTREAM-AUTH finding
		fix       string
	}{
		{name: "Microsoft basic auth off", connector: "Office 365",
			lastErr: "smtp.office365.com:587 said: 535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [AM0PR02CA0001.eurprd02.prod.outlook.com]",
			want:    "error: 535 5.7.139", fix: "switch the send connector to auth mechanism XOAUTH2 with an oauth2 client-credentials app registration"},
		{name: "Microsoft basic auth not supported", connector: "Office 365",
			lastErr: "smtp.office365.com:587 said: 550 5.7.30 Basic authentication is not supported for Client Submission.",
			want:    "error: 550 5.7.30", fix: "XOAUTH2"},
		{name: "Microsoft SMTP AUTH off for the mailbox", connector: "Office 365",
			lastErr: "smtp.office365.com:587 said: 535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.",
			want:    "error: SmtpClientAuthentication", fix: "Set-CASMailbox -Identity relay@contoso.com -SmtpClientAuthenticationDisabled $false"},
		{name: "Microsoft wrong password", connector: "Office 365",
			lastErr: "smtp.office365.com:587 said: 535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.",
			want:    "error: the user credentials were incorrect", fix: "password of relay@contoso.com is wrong"},
		{name: "Exchange wrong password", connector: "Office 365",
			lastErr: "exch1.contoso.com:587 said: 535 5.7.3 Authentication unsuccessful",
			want:    "error: 535 5.7.3", fix: "user name or password for relay@contoso.com is wrong"},
		{name: "Postfix wrong password", connector: "Office 365",
			lastErr: "mail.contoso.com:587 said: 535 5.7.8 Error: authentication failed: authentication failure",
			want:    "error: 535 5.7.8", fix: "user name or password"},
		{name: "Google wants an app password", connector: "Office 365",
			lastErr: "smtp.gmail.com:587 said: 534 5.7.9 Application-specific password required.",
			want:    "error: 534 5.7.9", fix: "app password"},
		{name: "upstream wants AUTH", connector: "Exchange",
			lastErr: "exch1.contoso.com:25 said: 530 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM",
			want:    "error: requires Sluice to authenticate", fix: "give the send connector auth"},
		{name: "upstream wants AUTH, older Exchange wording (seed 000)", connector: "Exchange",
			lastErr: "exch1.contoso.com:25 said: 530 5.7.1 Client was not authenticated",
			want:    "error: requires Sluice to authenticate", fix: "give the send connector auth"},
		{name: "OAuth2 token refused by Exchange Online", connector: "Office 365 OAuth",
			lastErr: "smtp.office365.com:587 said: 535 5.7.3 Authentication unsuccessful",
			want:    "error: refuses Sluice's OAuth2 token", fix: "SMTP.SendAsApp"},
		{name: "mechanism not offered: Sluice's finding, no \"said:\"", connector: "Office 365",
			lastErr: "504 5.5.4 smtp.office365.com [52.97.146.178:587] does not offer AUTH PLAIN; it offers: LOGIN XOAUTH2",
			want:    "error: does not offer AUTH PLAIN", fix: "auth.mechanism"},
		{name: "no mechanism offered", connector: "Exchange",
			lastErr: "504 5.5.4 exch1.contoso.com [192.0.2.10:25] does not offer AUTH LOGIN; it offers no AUTH mechanism (some offer it only after STARTTLS: check the send connector's tls.mode)",
			want:    "error: does not offer AUTH LOGIN", fix: "tls.mode"},
		{name: "not an auth problem: connection refused", connector: "Exchange", lastErr: "cannot connect to exch1.contoso.com:25: connection refused"},
		{name: "not an auth problem: unknown user", connector: "Exchange", lastErr: "exch1.contoso.com:25 said: 550 5.1.1 User unknown"},
		{name: "not an auth problem: 5.7.3 outside AUTH", connector: "Exchange", lastErr: "exch1.contoso.com:25 said: 554 5.7.1 Relay access denied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A new failure: UPSTREAM-AUTH does not wait for hop_failing_for.
			qi := queue.QueueInfo{Identity: c.connector, Connector: c.connector, Status: queue.HopRetry, MessageCount: 1,
				RetryCount: 1, OldestMessage: now.Add(-time.Minute), LastError: c.lastErr}
			fs := check(t, withoutBasicAuthWarning(health.Evaluate(health.Input{Config: cfg, Queues: []queue.QueueInfo{qi}, Now: now})), health.RuleUpstreamAuth, c.want)
			if c.fix != "" && (len(fs) != 1 || !strings.Contains(fs[0].Fix, c.fix)) {
				t.Errorf("want one finding whose fix has %q: %+v", c.fix, fs)
			}
		})
	}
}

// withoutBasicAuthWarning leaves out the warning that the fixture's
// "Office 365" logs in with a password (TestBasicAuthToMicrosoft), so the
// other tests see only the findings they are about.
func withoutBasicAuthWarning(fs []health.Finding) []health.Finding {
	var out []health.Finding
	for _, f := range fs {
		if f.Rule != health.RuleUpstreamAuth || f.Severity != health.Warning {
			out = append(out, f)
		}
	}
	return out
}

// TestBasicAuthToMicrosoft: a password login to Microsoft 365 is a warning
// before Microsoft refuses it, and no longer once the refusal is an error.
func TestBasicAuthToMicrosoft(t *testing.T) {
	cfg := upstreamCfg(t)
	now := time.Now()
	fs := check(t, health.Evaluate(health.Input{Config: cfg, Now: now}), health.RuleUpstreamAuth,
		"warning: logs in to Microsoft 365 with a password (AUTH LOGIN as relay@contoso.com)")
	if len(fs) != 1 || fs[0].Subject != "send connector Office 365" || !strings.Contains(fs[0].Fix, "XOAUTH2") {
		t.Errorf("want one warning about send connector Office 365 that says XOAUTH2: %+v", fs)
	}
	qi := queue.QueueInfo{Identity: "Office 365", Connector: "Office 365", Status: queue.HopRetry, MessageCount: 1, RetryCount: 1,
		OldestMessage: now.Add(-time.Minute), LastError: "smtp.office365.com:587 said: 535 5.7.139 Authentication unsuccessful, basic authentication is disabled."}
	fs = only(health.Evaluate(health.Input{Config: cfg, Queues: []queue.QueueInfo{qi}, Now: now}), health.RuleUpstreamAuth)
	if len(fs) != 1 || fs[0].Severity != health.Error {
		t.Errorf("once Microsoft refuses, want only the error: %+v", fs)
	}
}

func TestUpstreamHosts(t *testing.T) {
	cfg := upstreamCfg(t)
	now := time.Now()
	const basicOff = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
	failed := func(host string, n int, lastErr string) delivery.HostHealth {
		return delivery.HostHealth{Host: host, Failures: n, LastError: lastErr, LastFailure: now.Add(-2 * time.Minute), LastSuccess: now.Add(-time.Hour)}
	}
	// addr is failed for an address of smarthost.
	addr := func(host, smarthost string, n int, lastErr string) delivery.HostHealth {
		return delivery.HostHealth{Host: host, Smarthost: smarthost, Failures: n, LastError: lastErr, LastFailure: now.Add(-2 * time.Minute), LastSuccess: now.Add(-time.Hour)}
	}
	working := func(host string) delivery.HostHealth {
		return delivery.HostHealth{Host: host, LastSuccess: now.Add(-time.Minute)}
	}
	cases := []struct {
		name  string
		hosts []delivery.HostHealth
		rule  string
		want  string
	}{
		{"smarthost refuses credentials", []delivery.HostHealth{failed("smtp.office365.com:587", 1, basicOff)}, health.RuleUpstreamAuth, "error: 535 5.7.139"},
		{"smarthost accepted since", []delivery.HostHealth{{Host: "smtp.office365.com:587", Failures: 0, LastError: basicOff,
			LastFailure: now.Add(-time.Hour), LastSuccess: now.Add(-time.Minute)}}, health.RuleUpstreamAuth, ""},
		{"one of two smarthosts down", []delivery.HostHealth{failed("exch2.contoso.com:25", 5, "451 4.4.1 cannot connect to exch2.contoso.com:25: connection refused")},
			health.RuleUpstreamDown, "warning: failed 5 times in a row, last 2m ago: 451 4.4.1 cannot connect"},
		{"both smarthosts down is the queue's business", []delivery.HostHealth{failed("exch1.contoso.com:25", 5, "451 4.4.1 cannot connect"), failed("exch2.contoso.com:25", 5, "451 4.4.1 cannot connect")},
			health.RuleUpstreamDown, ""},
		{"one of two smarthosts failed twice", []delivery.HostHealth{failed("exch2.contoso.com:25", 2, "451 4.4.1 cannot connect")}, health.RuleUpstreamDown, ""},
		{"the only smarthost down is the queue's business", []delivery.HostHealth{failed("smtp.office365.com:587", 9, "451 4.4.1 cannot connect")}, health.RuleUpstreamDown, ""},
		{"an MX host is not a smarthost", []delivery.HostHealth{failed("mx.fabrikam.example:25", 9, "451 4.4.1 cannot connect")}, health.RuleUpstreamDown, ""},
		// A smarthost given by name is tried address by address; it
		// fails when all its addresses do, and says which failed last.
		{"one of two smarthosts down, all its addresses", []delivery.HostHealth{
			failed("exch2.contoso.com:25", 5, "exch2.contoso.com [10.0.0.6:25] said: 421 4.3.2 busy"),
			addr("10.0.0.6:25", "exch2.contoso.com:25", 5, "421 4.3.2 busy"),
			addr("10.0.0.7:25", "exch2.contoso.com:25", 5, "421 4.3.2 busy")},
			health.RuleUpstreamDown, "warning: failed 5 times in a row, last 2m ago: exch2.contoso.com [10.0.0.6:25] said: 421 4.3.2 busy"},
		// One address of a smarthost whose others take the mail: said,
		// as the smarthost has less failover than it seems, but no more
		// than info (a name like smtp.office365.com has many addresses,
		// none of them the admin's).
		{"one address of a working smarthost keeps failing", []delivery.HostHealth{
			working("exch2.contoso.com:25"), addr("10.0.0.6:25", "exch2.contoso.com:25", 3, "451 4.4.1 cannot connect to exch2.contoso.com [10.0.0.6:25]: connection refused")},
			health.RuleUpstreamDown, "info: address 10.0.0.6:25 failed 3 times in a row, last 2m ago: 451 4.4.1 cannot connect to exch2.contoso.com [10.0.0.6:25]: connection refused; the smarthost's other addresses take the mail"},
		{"one address of a working smarthost failed twice", []delivery.HostHealth{
			working("exch2.contoso.com:25"), addr("10.0.0.6:25", "exch2.contoso.com:25", 2, "451 4.4.1 cannot connect")},
			health.RuleUpstreamDown, ""},
		{"an address of a failing smarthost is the smarthost's business", []delivery.HostHealth{
			failed("smtp.office365.com:587", 4, "smtp.office365.com [52.96.0.7:587] said: 421 4.3.2 busy"),
			addr("52.96.0.7:587", "smtp.office365.com:587", 4, "421 4.3.2 busy")},
			health.RuleUpstreamDown, ""},
		{"an address of an MX host is not a smarthost's", []delivery.HostHealth{failed("192.0.2.25:25", 9, "451 4.4.1 cannot connect")}, health.RuleUpstreamDown, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := check(t, withoutBasicAuthWarning(health.Evaluate(health.Input{Config: cfg, Hosts: c.hosts, Now: now})), c.rule, c.want)
			if c.want != "" && (len(fs) != 1 || !strings.HasPrefix(fs[0].Subject, "send connector ")) {
				t.Errorf("want one finding about a send connector: %+v", fs)
			}
		})
	}

	// The host and its queue report the same refusal once.
	qi := queue.QueueInfo{Identity: "Office 365", Connector: "Office 365", Status: queue.HopRetry, MessageCount: 1, RetryCount: 1,
		OldestMessage: now.Add(-time.Minute), LastError: "smtp.office365.com:587 said: " + basicOff}
	fs := only(health.Evaluate(health.Input{Config: cfg, Now: now, Queues: []queue.QueueInfo{qi},
		Hosts: []delivery.HostHealth{failed("smtp.office365.com:587", 1, basicOff)}}), health.RuleUpstreamAuth)
	if len(fs) != 1 || fs[0].Subject != "send connector Office 365, smarthost smtp.office365.com:587" {
		t.Errorf("want the refusal once, about the smarthost; got %+v", fs)
	}

	// So with a smarthost given by name, whose last error names the
	// address that refused, as the queue's does.
	said := "smtp.office365.com [52.96.0.7:587] said: " + basicOff
	qi.LastError = said
	fs = only(health.Evaluate(health.Input{Config: cfg, Now: now, Queues: []queue.QueueInfo{qi},
		Hosts: []delivery.HostHealth{failed("smtp.office365.com:587", 1, said), addr("52.96.0.7:587", "smtp.office365.com:587", 1, basicOff)}}), health.RuleUpstreamAuth)
	if len(fs) != 1 || fs[0].Subject != "send connector Office 365, smarthost smtp.office365.com:587" || !strings.Contains(fs[0].Problem, said) {
		t.Errorf("want the refusal once, about the smarthost, naming the address; got %+v", fs)
	}
}
