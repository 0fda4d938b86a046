package delivery

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/reply"
)

// tlsError explains a failed TLS handshake, naming what to check. A server
// that refused STARTTLS itself (454) keeps its own reply: there was no
// handshake to fail.
func tlsError(sc *config.SendConnector, name string, err error) error {
	if isSMTP(err) {
		return err
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		problem := certProblem(cv.Err, name, sc)
		return reply.Reply{Code: 454, Enhanced: [3]int{4, 7, 5},
			Text: fmt.Sprintf("certificate of %s is not valid for send connector %q (tls.mode verify): %s; %s", name, sc.Name, problem, CertificateFix(problem))}
	}
	r := reply.Reply{Code: 454, Enhanced: [3]int{4, 7, 0}, Text: fmt.Sprintf("TLS handshake with %s failed: %v", name, err)}
	if strings.Contains(err.Error(), "protocol version") && sc.TLS.MinVersion > config.TLSVersion(tls.VersionTLS10) {
		// The alert has no exported type to test for; its text is
		// fixed by crypto/tls. Old Exchange and appliances speak TLS 1.0.
		r = r.With(fmt.Sprintf("the server may speak only an older TLS version than the connector's tls.min_version (%v)", sc.TLS.MinVersion))
	}
	return r
}

// certProblem says in an admin's words why the upstream's certificate
// does not verify; CertificateFix recognises each wording.
func certProblem(err error, name string, sc *config.SendConnector) string {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		issuer := ""
		if ua.Cert != nil {
			issuer = fmt.Sprintf(" (issuer %q)", ua.Cert.Issuer.String())
		}
		if sc.TLS.CAFile != "" {
			return fmt.Sprintf("it is not trusted: not signed by a trusted CA%s, and tls.ca_file %s does not hold the CA that signed it", issuer, sc.TLS.CAFile)
		}
		return fmt.Sprintf("it is not trusted: not signed by a trusted CA%s", issuer)
	case errors.As(err, &he) && he.Certificate != nil:
		names := append([]string{}, he.Certificate.DNSNames...)
		for _, ip := range he.Certificate.IPAddresses {
			names = append(names, ip.String())
		}
		carries := "no names"
		if len(names) > 0 {
			carries = strings.Join(names, ", ")
		}
		return fmt.Sprintf("the name does not match: it does not carry the name %s (it carries %s)", he.Host, carries)
	case errors.As(err, &ci) && ci.Reason == x509.Expired && ci.Cert != nil:
		return fmt.Sprintf("it has expired or is not valid yet (valid %s to %s)", ci.Cert.NotBefore.UTC().Format("2006-01-02"), ci.Cert.NotAfter.UTC().Format("2006-01-02"))
	}
	return err.Error()
}

// CertificateFix says what to change when an upstream's certificate does
// not verify, given the queue's last error (the words of certProblem, or
// crypto/x509's in one recorded by an older Sluice). The last error
// carries it, and health's HOP-FAILING gives the same.
func CertificateFix(lastErr string) string {
	t := strings.ToLower(lastErr)
	switch {
	case strings.Contains(t, "not trusted") || strings.Contains(t, "unknown authority"):
		return "set the send connector's tls.ca_file to the certificate of the CA that issued it (an internal CA), or tls.mode required to encrypt without checking"
	case strings.Contains(t, "name does not match") || strings.Contains(t, "certificate is valid for"):
		return "set the send connector's tls.server_name to a name the certificate carries, or give the smarthost by that name"
	case strings.Contains(t, "expired") || strings.Contains(t, "not valid yet") || strings.Contains(t, "not yet valid"):
		return "the upstream's admin must renew its certificate; if it is not valid yet, check this machine's clock"
	}
	return "check the upstream's certificate with sluice test connect --starttls HOST:PORT, and the send connector's tls settings (server_name, ca_file for an internal CA, client_certificate); tls.mode required encrypts without checking the name"
}
