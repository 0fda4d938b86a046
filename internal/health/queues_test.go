package health_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/queue"
)

// upstreamConfig has a send connector per kind of upstream.
const upstreamConfig = `node: {hostname: relay.contoso.com}
receive_connectors: [{name: Apps, bindings: ["0.0.0.0:25"], remote_ip_ranges: [10.0.0.0/8], permissions: [anonymous, relay]}]
` + upstreamConnectors

const upstreamConnectors = `admin: {listen: "off"}
health: {queue_backlog: 100, hop_failing_for: 30m}
send_connectors:
  - name: Office 365
    address_spaces: [contoso.com]
    delivery: smarthost
    smarthosts: [smtp.office365.com:587]
    tls: {mode: verify}
    auth: {mechanism: LOGIN, username: relay@contoso.com, password: "not the real one"}
  - name: Office 365 OAuth
    preset: microsoft365
    address_spaces: [fabrikam.com]
    auth:
      username: relay@fabrikam.com
      oauth2: {tenant: fabrikam.onmicrosoft.com, client_id: 11111111-2222-3333-4444-555555555555, client_secret: "not the real one"}
  - name: Exchange
    address_spaces: ["*.contoso.com"]
    delivery: smarthost
    smarthosts: [exch1.contoso.com:25, exch2.contoso.com]
    tls: {mode: required}
  - name: Internet
    address_spaces: ["*"]
    delivery: mx
`

func upstreamCfg(t *testing.T) *config.Config { return load(t, upstreamConfig) }

func TestQueues(t *testing.T) {
	cfg := upstreamCfg(t)
	now := time.Now()
	// q is a queue of count messages, the oldest waiting age, that last
	// failed with lastErr ("" for none).
	q := func(name, status string, count int, age time.Duration, lastErr string) queue.QueueInfo {
		qi := queue.QueueInfo{Identity: name, Connector: name, NextHop: "smtp.office365.com:587", Status: status, MessageCount: count,
			OldestMessage: now.Add(-age), LastError: lastErr}
		if lastErr != "" {
			qi.RetryCount, qi.LastRetryTime, qi.NextRetryTime = 4, now.Add(-time.Minute), now.Add(4*time.Minute)
		}
		return qi
	}
	const refused = "cannot connect to exch1.contoso.com:25: connection refused"
	const seed003 = "exch1.contoso.com:25 said: 454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found"
	cases := []struct {
		name string
		q    queue.QueueInfo
		rule string
		want string
		fix  string
	}{
		{name: "backlog", q: q("Exchange", queue.HopActive, 500, time.Minute, ""), rule: health.RuleQueueBacklog,
			want: "warning: 500 messages waiting (health.queue_backlog is 100)", fix: "sluice queue show Exchange"},
		{name: "no backlog", q: q("Exchange", queue.HopActive, 100, time.Minute, ""), rule: health.RuleQueueBacklog},
		{name: "unreadable content", q: func() queue.QueueInfo {
			qi := q("Exchange", queue.HopReady, 5, time.Hour, "")
			qi.Unreadable, qi.UnreadableError = 2, "queue store: content of 0ab1: content at 0 in /var/lib/sluice/queue/segments/0000000000000003.seg does not match its checksum"
			return qi
		}(), rule: health.RuleQueueContent, want: "error: 2 of 5 messages cannot be read from the queue store: queue store: content of 0ab1: content at 0", fix: "dmesg"},
		{name: "content readable", q: q("Exchange", queue.HopReady, 5, time.Hour, ""), rule: health.RuleQueueContent},
		{name: "failing for 2 hours", q: q("Exchange", queue.HopRetry, 3, 2*time.Hour, refused), rule: health.RuleHopFailing,
			want: "error: has not taken mail for 2h00m: 3 messages, the oldest waiting 2h00m, 4 failures in a row, next retry in 4m; last error: " + refused, fix: "cannot be reached"},
		{name: "failing between retries", q: func() queue.QueueInfo {
			qi := q("Exchange", queue.HopReady, 3, 2*time.Hour, refused)
			qi.NextRetryTime = time.Time{}
			return qi
		}(), rule: health.RuleHopFailing, want: "error: has not taken mail for 2h00m"},
		{name: "failing for a minute is info", q: q("Exchange", queue.HopRetry, 1, time.Minute, refused), rule: health.RuleHopFailing,
			want: "info: is failing (an error after 30m, health.hop_failing_for)"},
		{name: "recovered", q: func() queue.QueueInfo {
			qi := q("Exchange", queue.HopReady, 3, 2*time.Hour, refused)
			qi.RetryCount = 0
			return qi
		}(), rule: health.RuleHopFailing},
		{name: "suspended by an operator", q: q("Exchange", queue.HopSuspended, 3, 2*time.Hour, refused), rule: health.RuleHopFailing},
		{name: "nothing waiting", q: q("Exchange", queue.HopRetry, 0, 0, refused), rule: health.RuleHopFailing},
		{name: "upstream lost its certificate (seed 003)", q: q("Exchange", queue.HopRetry, 7, time.Hour, seed003), rule: health.RuleHopFailing,
			want: "error: last error: " + seed003, fix: "the upstream cannot find its own TLS certificate"},
		{name: "upstream certificate not valid", q: q("Exchange", queue.HopRetry, 7, time.Hour,
			`451 4.7.5 certificate of exch1.contoso.com is not valid for send connector "Exchange" (tls.mode verify): x509: certificate signed by unknown authority`),
			rule: health.RuleHopFailing, want: "error: x509: certificate signed by unknown authority", fix: "set the send connector's tls.ca_file to the certificate of the CA that issued it"},
		{name: "upstream certificate for another name", q: q("Exchange", queue.HopRetry, 7, time.Hour,
			`454 4.7.5 certificate of exch1.contoso.com is not valid for send connector "Exchange" (tls.mode verify): the name does not match: it does not carry the name exch1.contoso.com (it carries mail.contoso.com); set the send connector's tls.server_name to a name the certificate carries, or give the smarthost by that name`),
			rule: health.RuleHopFailing, want: "error: ", fix: "a certificate problem: set the send connector's tls.server_name"},
		{name: "not an SMTP server", q: q("Exchange", queue.HopRetry, 2, time.Hour,
			`451 4.4.0 127.0.0.1:2672 is not an SMTP server (it answered "HTTP/1.1 400 Bad Request"); check the smarthost's port`),
			rule: health.RuleHopFailing, want: "error: ", fix: "something other than an SMTP server answers there"},
		// One recipient the upstream keeps deferring while it takes the
		// others: the hop is not down, and health must not say it has
		// not taken mail.
		{name: "recipients deferred, hop up", q: func() queue.QueueInfo {
			qi := q("Exchange", queue.HopRetry, 1, 2*time.Hour, "exch1.contoso.com [10.0.0.5:25] said: 451 4.2.0 mailbox busy")
			qi.RetryCount = 0
			return qi
		}(), rule: health.RuleHopFailing, want: "warning: takes sessions but deferred recipients, who wait for their next attempt: 1 messages, the oldest waiting 2h00m, 0 failures in a row"},
		{name: "recipients deferred a moment ago", q: func() queue.QueueInfo {
			qi := q("Exchange", queue.HopRetry, 1, time.Minute, "exch1.contoso.com [10.0.0.5:25] said: 451 4.2.0 mailbox busy")
			qi.RetryCount = 0
			return qi
		}(), rule: health.RuleHopFailing, want: "info: takes sessions but deferred recipients"},
		{name: "hung up before the greeting", q: q("Exchange", queue.HopRetry, 2, time.Hour,
			`451 4.4.2 10.0.0.5:25 closed the connection before its greeting: it may not accept connections from this server's address, or be at its connection limit`),
			rule: health.RuleHopFailing, want: "error: ", fix: "RemoteIPRanges"},
		{name: "no send connector", q: queue.QueueInfo{Identity: "Unreachable", Status: queue.HopRetry, MessageCount: 2, OldestMessage: now.Add(-time.Hour),
			LastError: "no send connector serves these recipients' domains; add an address space that covers them"},
			rule: health.RuleHopFailing, want: "error: no send connector serves", fix: "address_spaces"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := check(t, health.Evaluate(health.Input{Config: cfg, Queues: []queue.QueueInfo{c.q}, Now: now}), c.rule, c.want)
			if c.fix != "" && (len(fs) == 0 || !strings.Contains(fs[0].Fix, c.fix)) {
				t.Errorf("fix lacks %q: %+v", c.fix, fs)
			}
		})
	}
}
