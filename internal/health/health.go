// Package health owns Sluice's health rules: each looks at one thing an
// admin would otherwise find out from a stuck queue or a network trace
// (certificates, the application credential key, open relays, queues,
// upstream hosts and their replies, OAuth2 tokens, disk space) and, when it
// is wrong, says what and how to fix it.
//
// It only evaluates a snapshot (Input) and does no I/O of its own beyond
// reading the certificate files the config names, again at each Evaluate:
// a file can vanish or be replaced after the config was loaded (seed 003).
// The daemon fills Input from its queue and delivery and serves the result
// on the admin API; `sluice health` prints it with Render, also from a
// config file alone when no daemon runs (then Queues, Tokens and Hosts are
// nil and only the config rules run).
package health

import (
	"cmp"
	"slices"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/delivery"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/token"
)

// Severity of a finding.
type Severity string

const (
	Error   Severity = "error"   // mail is or will be stuck, or Sluice is unsafe
	Warning Severity = "warning" // needs attention soon
	Info    Severity = "info"    // worth knowing; nothing to do yet
	Healthy Severity = "healthy" // (Worst only) nothing above info
)

func (s Severity) rank() int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	case Info:
		return 2
	}
	return 3
}

// Rule ids: stable, documented in the README, searched for by admins.
const (
	RuleCertMissing  = "CERT-MISSING"  // error: a certificate or key file is missing, unreadable or mismatched, or a broken chain
	RuleCertExpired  = "CERT-EXPIRED"  // error: a certificate has expired
	RuleCertExpiring = "CERT-EXPIRING" // warning: expires within health.certificate_expiry
	RuleCertName     = "CERT-NAME"     // warning: a receive connector's certificate lacks its FQDN
	RuleSecretKey    = "SECRET-KEY"    // error: a secret this node's key cannot decrypt
	RuleSecretFile   = "SECRET-FILE"   // warning: a token, key or private key file others may read
	RuleOpenRelay    = "OPEN-RELAY"    // error: relay granted to the whole Internet
	RuleQueueBacklog = "QUEUE-BACKLOG" // warning: more than health.queue_backlog messages
	RuleQueueContent = "QUEUE-CONTENT" // error: messages whose content the queue store cannot give
	RuleHopFailing   = "HOP-FAILING"   // error (info while young): a next hop not taking mail
	RuleUpstreamAuth = "UPSTREAM-AUTH" // error: an upstream refuses Sluice's credentials; warning: a password login to Microsoft 365
	RuleUpstreamDown = "UPSTREAM-DOWN" // warning: one smarthost of several keeps failing
	RuleOAuth2Token  = "OAUTH2-TOKEN"  // error (warning while a cached token lasts): no OAuth2 token
	RuleDiskSpace    = "DISK-SPACE"    // warning, error: free space near or below queue.min_free_space
	RuleConfig       = "CONFIG"        // error: any other config problem
)

// Finding is one rule that fired.
type Finding struct {
	Rule     string   `json:"rule"`     // stable id, e.g. CERT-EXPIRING
	Severity Severity `json:"severity"` // error, warning or info
	Subject  string   `json:"subject"`  // what it is about: "send connector Office 365"
	Problem  string   `json:"problem"`  // what is wrong, concretely: paths, dates, the upstream's reply
	Fix      string   `json:"fix"`      // what to do about it
}

// Input is what the rules look at. Config (or ConfigErr) is all an offline
// check has; the rest comes from a running daemon.
type Input struct {
	Config *config.Config // nil when the config failed to load
	// ConfigErr is a failed load (config.Errors): each problem becomes a
	// finding, SECRET-KEY or CERT-MISSING where it is one of those.
	ConfigErr error
	Queues    []queue.QueueInfo       // queue.Queue.Queues()
	Tokens    map[string]token.Status // per send connector: delivery.Deliverer.TokenStatus()
	Hosts     []delivery.HostHealth   // upstream hosts: delivery.Deliverer.Hosts()
	// FreeSpace reports the bytes free on the file system holding a
	// directory (safeio.FreeSpace); nil skips the disk rule.
	FreeSpace func(dir string) (int64, error)
	Now       time.Time // zero: time.Now()
}

// Evaluate runs every rule and returns the findings: errors first, then
// warnings, then info; within a severity in rule order and, within a rule,
// in config order.
func Evaluate(in Input) []Finding {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	var fs []Finding
	fs = append(fs, configFindings(in.ConfigErr)...)
	if c := in.Config; c != nil {
		fs = append(fs, certificates(c, in.Now)...)
		fs = append(fs, openRelays(c)...)
		fs = append(fs, secretFiles(c)...)
		fs = append(fs, diskSpace(c, in.FreeSpace)...)
		up := upstreams(c, in.Hosts, in.Now)
		fs = append(fs, up.findings...)
		fs = append(fs, queues(c, in.Queues, in.Now, up.seen)...)
		fs = append(fs, tokens(in.Tokens, in.Now)...)
		fs = append(fs, basicAuthToMicrosoft(c, fs)...)
	}
	slices.SortStableFunc(fs, func(a, b Finding) int { return cmp.Compare(a.Severity.rank(), b.Severity.rank()) })
	return fs
}

// Worst is the highest severity among fs: Error, Warning, or Healthy when
// there are only info findings or none. `sluice health` exits 1 on Error.
func Worst(fs []Finding) Severity {
	w := Healthy
	for _, f := range fs {
		switch f.Severity {
		case Error:
			return Error
		case Warning:
			w = Warning
		}
	}
	return w
}
