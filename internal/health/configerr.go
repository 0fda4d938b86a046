package health

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-relay/sluice/internal/config"
)

// configFindings turns a failed load into findings: a secret this node
// cannot decrypt is SECRET-KEY (seed 002), a certificate, key or CA file
// that cannot be used is CERT-MISSING (seed 003), anything else CONFIG.
func configFindings(err error) []Finding {
	if err == nil {
		return nil
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		return []Finding{{Rule: RuleConfig, Severity: Error, Subject: "config", Problem: err.Error(),
			Fix: "fix the config file; sluice config check FILE explains each problem"}}
	}
	var out []Finding
	for _, e := range errs {
		f := Finding{Rule: RuleConfig, Severity: Error, Subject: where(e), Problem: e.Msg,
			Fix: "change " + place(e) + " as the problem says; sluice config check -config " + e.File + " lists every problem"}
		switch {
		case isSecretError(e):
			f.Rule = RuleSecretKey
			f.Fix = "install the application credential key the secrets were encrypted with on this node: copy the key file from the node that encrypted them to secrets.key_file (or set $SLUICE_CREDENTIAL_KEY), the same on every node; or encrypt the secrets again here with sluice secret encrypt and copy the config to the other nodes"
		case isCertError(e):
			f.Rule = RuleCertMissing
			f.Fix = "put the PEM file at that path, readable by the account Sluice runs as (with the key that belongs to the certificate), or correct the path at " + place(e)
		}
		out = append(out, f)
	}
	return out
}

// where names a config problem's place: "sluice.yaml:14 receive_connectors[0].tls.certificate".
func where(e config.Error) string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Key != "" {
		s += " " + e.Key
	}
	return s
}

func place(e config.Error) string {
	if e.Key == "" {
		return e.File
	}
	return e.Key
}

// isSecretError: the key file cannot be had, the config's key_id is not
// this node's, or a secret does not decrypt (internal/config/secrets.go).
func isSecretError(e config.Error) bool {
	if strings.HasPrefix(e.Key, "secrets.") {
		return true
	}
	secretKey := strings.HasSuffix(e.Key, ".password") || strings.HasSuffix(e.Key, ".client_secret") || strings.HasSuffix(e.Key, ".refresh_token")
	return secretKey && (strings.Contains(e.Msg, "application credential key") || strings.Contains(e.Msg, "cannot be decrypted"))
}

// isCertError: certs.Load's and the admin/CA readers' complaints about a
// file (internal/config/check.go, sendcheck.go, ops.go), not about
// settings such as a missing key path, which stay CONFIG.
func isCertError(e config.Error) bool {
	certKey := false
	for _, k := range []string{".tls.certificate", ".tls.key", ".tls.client_certificate", ".tls.client_key", ".tls.ca_file",
		"admin.certificate", "admin.key", "admin.client_ca"} {
		if strings.HasSuffix(e.Key, k) {
			certKey = true
		}
	}
	if !certKey {
		return false
	}
	for _, m := range []string{"does not exist", "cannot read", "cannot be read", "no PEM", "does not belong to", "permission denied", " / key "} {
		if strings.Contains(e.Msg, m) {
			return true
		}
	}
	return false
}
