// Package health owns Sluice's health rules: each looks at one thing an
// admin would otherwise find out from a stuck queue or a network trace
// (certificates, the application credential key, open relays, queues,
// upstream credentials, OAuth2 tokens, disk space) and, when it is wrong,
// says what and how to fix it. It only evaluates a snapshot; the daemon
// serves the result on the admin API and `sluice health` prints it, also
// from a config file alone when no daemon runs.
package health

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/token"
)

// Severity of a finding.
type Severity string

const (
	Error   Severity = "error"   // mail is or will be stuck, or Sluice is unsafe
	Warning Severity = "warning" // needs attention soon
	Healthy Severity = "healthy" // (for Worst) no findings
)

// Finding is one rule that fired.
type Finding struct {
	Rule     string   `json:"rule"`     // stable id, e.g. CERT-EXPIRING
	Severity Severity `json:"severity"` // error or warning
	Subject  string   `json:"subject"`  // what it is about: "send connector Office 365"
	Problem  string   `json:"problem"`  // what is wrong, concretely
	Fix      string   `json:"fix"`      // what to do about it
}

// Input is what the rules look at. Only Config (or ConfigErr) is needed;
// the rest is there when a daemon runs.
type Input struct {
	Config    *config.Config
	ConfigErr error                   // a failed load: each problem becomes a finding
	Queues    []queue.QueueInfo       // the running queues
	Tokens    map[string]token.Status // OAuth2 state per send connector
	FreeSpace func(dir string) (int64, error)
	Now       time.Time
}

// Evaluate runs every rule and returns the findings, errors first.
func Evaluate(in Input) []Finding {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	var fs []Finding
	fs = append(fs, configFindings(in.ConfigErr)...)
	if in.Config != nil {
		fs = append(fs, certificates(in.Config, in.Now)...)
		fs = append(fs, openRelays(in.Config)...)
		fs = append(fs, diskSpace(in.Config, in.FreeSpace)...)
		fs = append(fs, queues(in.Config, in.Queues, in.Now)...)
		fs = append(fs, tokens(in.Tokens)...)
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Severity == Error && fs[j].Severity != Error })
	return fs
}

// Worst is the highest severity among fs, Healthy when there is none.
func Worst(fs []Finding) Severity {
	w := Healthy
	for _, f := range fs {
		if f.Severity == Error {
			return Error
		}
		w = Warning
	}
	return w
}

// Render prints findings for people.
func Render(w io.Writer, fs []Finding) {
	if len(fs) == 0 {
		fmt.Fprintln(w, "healthy: no findings")
		return
	}
	for _, f := range fs {
		fmt.Fprintf(w, "%-7s %-15s %s: %s\n", strings.ToUpper(string(f.Severity)), f.Rule, f.Subject, f.Problem)
		fmt.Fprintf(w, "        fix: %s\n", f.Fix)
	}
	errs, warns := 0, 0
	for _, f := range fs {
		if f.Severity == Error {
			errs++
		} else {
			warns++
		}
	}
	fmt.Fprintf(w, "%d error(s), %d warning(s)\n", errs, warns)
}

// configFindings turns a failed load into findings: a secret this node
// cannot decrypt is SECRET-KEY (seed 002), a missing certificate
// CERT-MISSING (seed 003), anything else CONFIG.
func configFindings(err error) []Finding {
	if err == nil {
		return nil
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		return []Finding{{Rule: "CONFIG", Severity: Error, Subject: "config", Problem: err.Error(),
			Fix: "fix the config file; sluice config check FILE explains each problem"}}
	}
	var out []Finding
	for _, e := range errs {
		f := Finding{Rule: "CONFIG", Severity: Error, Subject: e.Key, Problem: e.Error(),
			Fix: "change the key as the problem says; sluice config check FILE lists every problem"}
		switch {
		case strings.HasPrefix(e.Key, "secrets.") || strings.Contains(e.Msg, "application credential key") || strings.Contains(e.Msg, "cannot be decrypted"):
			f.Rule = "SECRET-KEY"
			f.Fix = "install the application credential key the secrets were encrypted with on this node (copy the key file from the node that encrypted them, same secrets.key_file path or $SLUICE_CREDENTIAL_KEY), or encrypt the secrets again here with sluice secret encrypt"
		case isCertKey(e.Key):
			f.Rule = "CERT-MISSING"
			f.Fix = "put the certificate and key files where the config says (readable by Sluice), or correct the path"
		}
		out = append(out, f)
	}
	return out
}

func isCertKey(key string) bool {
	for _, k := range []string{"certificate", "client_certificate", "client_key", ".key", "ca_file", "client_ca"} {
		if strings.HasSuffix(key, k) {
			return true
		}
	}
	return false
}
