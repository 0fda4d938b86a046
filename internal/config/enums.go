package config

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// oneOf checks v against the allowed words, case-insensitively, and says
// which words are allowed when it is none of them.
func oneOf(v string, allowed ...string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(v))
	if slices.Contains(allowed, t) {
		return t, nil
	}
	return "", fmt.Errorf("%q is not allowed here; write one of: %s", v, strings.Join(allowed, ", "))
}

// TLSMode is how a receive connector offers TLS.
type TLSMode string

const (
	TLSNone     TLSMode = "none"     // plain SMTP only
	TLSStartTLS TLSMode = "starttls" // STARTTLS offered (RFC 3207)
	TLSImplicit TLSMode = "implicit" // TLS from the first byte, port 465 (RFC 8314)
)

func (m *TLSMode) setScalar(v string) error {
	s, err := oneOf(v, "none", "starttls", "implicit")
	*m = TLSMode(s)
	return err
}

// TLSVersion is a minimum TLS protocol version: "1.0", "1.1", "1.2", "1.3".
type TLSVersion uint16

func (t *TLSVersion) setScalar(v string) error {
	s, err := oneOf(v, "1.0", "1.1", "1.2", "1.3")
	if err != nil {
		return err
	}
	*t = TLSVersion(map[string]uint16{"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11,
		"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}[s])
	return nil
}

func (t TLSVersion) String() string {
	switch uint16(t) {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS13:
		return "1.3"
	}
	return "1.2"
}

// Permission is a right a receive connector grants its clients or a user
// holds once authenticated (the Exchange permission groups, simplified).
type Permission string

const (
	// PermAnonymous: may send to recipients in accepted domains without
	// authenticating.
	PermAnonymous Permission = "anonymous"
	// PermRelay: may send to any recipient, also outside the accepted
	// domains (Exchange's Ms-Exch-SMTP-Accept-Any-Recipient).
	PermRelay Permission = "relay"
	// PermAcceptAnySender: may use any MAIL FROM, also addresses in the
	// accepted domains (Exchange's Ms-Exch-SMTP-Accept-Any-Sender).
	PermAcceptAnySender Permission = "accept-any-sender"
	// PermExternallySecured: the network is trusted as if every client had
	// authenticated: all of the above, and the connector's message size,
	// recipient count and tarpit limits are NOT applied (Exchange's
	// ExternalAuthoritative; seeds 000 and 004).
	PermExternallySecured Permission = "externally-secured"
)

var permissionWords = []string{"anonymous", "relay", "accept-any-sender", "externally-secured"}

func (p *Permission) setScalar(v string) error {
	s, err := oneOf(v, permissionWords...)
	*p = Permission(s)
	return err
}

// AuthMechanism is a SASL mechanism a receive connector advertises.
type AuthMechanism string

const (
	AuthPlain AuthMechanism = "PLAIN" // RFC 4616
	AuthLogin AuthMechanism = "LOGIN" // draft-murchison-sasl-login; .NET SmtpClient's only choice
)

func (a *AuthMechanism) setScalar(v string) error {
	switch m := AuthMechanism(strings.ToUpper(strings.TrimSpace(v))); m {
	case AuthPlain, AuthLogin:
		*a = m
		return nil
	case "NONE":
		// The README once wrote "none: no AUTH" for a key left out.
		return fmt.Errorf("%q is not a mechanism; to offer no AUTH leave auth_mechanisms out or write [], else write PLAIN or LOGIN", v)
	}
	return fmt.Errorf("%q is not allowed here; write one of: PLAIN, LOGIN", v)
}

// BareLineEndings is what a receive connector does with a bare CR or LF in
// message data, the raw material of SMTP smuggling.
type BareLineEndings string

const (
	BareReject    BareLineEndings = "reject"    // 550 5.6.11 after the end of data (default)
	BareNormalize BareLineEndings = "normalize" // rewrite to CRLF, for old devices that send LF
)

func (b *BareLineEndings) setScalar(v string) error {
	s, err := oneOf(v, "reject", "normalize")
	*b = BareLineEndings(s)
	return err
}

// DomainType says what Sluice does with mail for an accepted domain.
type DomainType string

const (
	// DomainAuthoritative: the organisation's own mailboxes live behind a
	// send connector for this domain (Exchange's Authoritative).
	DomainAuthoritative DomainType = "authoritative"
	// DomainRelay: accepted and forwarded elsewhere, e.g. to a partner or
	// a hybrid tenant (Exchange's Internal/External Relay).
	DomainRelay DomainType = "relay"
)

func (d *DomainType) setScalar(v string) error {
	s, err := oneOf(v, "authoritative", "relay")
	*d = DomainType(s)
	return err
}

// LogFormat is the operational log's line format.
type LogFormat string

func (f *LogFormat) setScalar(v string) error {
	s, err := oneOf(v, "text", "json")
	*f = LogFormat(s)
	return err
}

// LogLevel is the operational log's minimum level.
type LogLevel string

func (l *LogLevel) setScalar(v string) error {
	s, err := oneOf(v, "debug", "info", "warn", "error")
	*l = LogLevel(s)
	return err
}
