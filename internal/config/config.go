// Package config owns Sluice's configuration: the YAML file, its strict
// decoding with line numbers, defaults, cross-checks and the embedded
// default. A loaded *Config is immutable; the daemon swaps whole snapshots on
// reload and every session keeps the one it started with.
package config

import (
	"crypto/tls"
	"net/netip"

	"github.com/sluice-relay/sluice/internal/secret"
)

// Config is one loaded, checked configuration.
type Config struct {
	Node              Node               `yaml:"node"`
	Log               Log                `yaml:"log"`
	AcceptedDomains   []AcceptedDomain   `yaml:"accepted_domains"`
	ReceiveConnectors []ReceiveConnector `yaml:"receive_connectors"`
	Users             []User             `yaml:"users"`
	SendConnectors    []SendConnector    `yaml:"send_connectors"`
	Queue             Queue              `yaml:"queue"`
	Secrets           Secrets            `yaml:"secrets"`
	Logs              Logs               `yaml:"logs"`
	Admin             Admin              `yaml:"admin"`
	Health            Health             `yaml:"health"`

	// File is the path the config was read from, "" for the embedded default.
	File string `yaml:"-"`
	// Source is the text it was read from, kept to compare farm nodes.
	Source []byte `yaml:"-"`

	key   *secret.Key
	lines map[string]int // key path → line, for ErrorAt
}

// Node is what is particular to this Sluice instance.
type Node struct {
	// Hostname is the FQDN in banners, EHLO replies and Received headers.
	// Default: the machine's host name.
	Hostname string `yaml:"hostname"`
	// DataDir holds the queue, logs and delivered files. Relative paths are
	// relative to the config file. Default: ./sluice-data.
	DataDir string `yaml:"data_dir"`
	// DNSServers are the resolvers for MX lookups and for the addresses
	// of MX hosts and smarthosts: IP addresses, with a port if not 53
	// ("10.0.0.2", "10.0.0.2:5353", "[2001:db8::53]:53"). Default: the
	// system's.
	DNSServers []DNSServer `yaml:"dns_servers"`
}

// Log configures the operational log (stderr).
type Log struct {
	Level  LogLevel  `yaml:"level"`  // debug, info (default), warn, error
	Format LogFormat `yaml:"format"` // text (default) or json
}

// AcceptedDomain is a domain Sluice accepts mail for without the relay
// right. "*.contoso.com" also covers every subdomain of contoso.com.
type AcceptedDomain struct {
	Domain string     `yaml:"domain"`
	Type   DomainType `yaml:"type"` // authoritative (default) or relay
}

// ReceiveConnector is one way in: where clients connect, which clients it
// serves, and what they may do. On a shared binding the connector with the
// most specific remote IP range matching the client serves it (Exchange's
// rule).
type ReceiveConnector struct {
	Name string `yaml:"name"`
	// Bindings are the local addr:port pairs to listen on.
	Bindings []Binding `yaml:"bindings"`
	// RemoteIPRanges are the clients this connector serves; required. Write
	// 0.0.0.0/0 and ::/0 for every client.
	RemoteIPRanges []CIDR `yaml:"remote_ip_ranges"`
	// FQDN is the name in the banner and EHLO reply. Default: node.hostname.
	FQDN string `yaml:"fqdn"`
	// Banner is the text after "220 <fqdn>". Default: "ESMTP Sluice ready".
	Banner string `yaml:"banner"`
	TLS    TLS    `yaml:"tls"`
	// RequireTLSForAuth refuses AUTH before TLS. Default: true when TLS is
	// offered.
	RequireTLSForAuth *bool `yaml:"require_tls_for_auth"`
	// RequireTLSForMail refuses MAIL before TLS. Default: false.
	RequireTLSForMail bool `yaml:"require_tls_for_mail"`
	// AuthMechanisms are advertised in EHLO: PLAIN, LOGIN. Empty: no AUTH.
	AuthMechanisms []AuthMechanism `yaml:"auth_mechanisms"`
	// Permissions are granted to every client this connector serves, before
	// any AUTH: anonymous, relay, accept-any-sender, externally-secured.
	Permissions []Permission `yaml:"permissions"`
	Limits      Limits       `yaml:"limits"`
	// BareLineEndings: reject (default) or normalize.
	BareLineEndings BareLineEndings `yaml:"bare_line_endings"`
	// ProtocolLog records each session's SMTP conversation (AUTH masked).
	ProtocolLog bool `yaml:"protocol_log"`

	tlsConfig *tls.Config
}

// TLS is a receive connector's TLS setting.
type TLS struct {
	Mode        TLSMode    `yaml:"mode"`        // none (default), starttls, implicit
	Certificate string     `yaml:"certificate"` // PEM file: certificate chain
	Key         string     `yaml:"key"`         // PEM file: private key
	MinVersion  TLSVersion `yaml:"min_version"` // 1.0, 1.1, 1.2 (default), 1.3
}

// Limits protect the relay from clients. Defaults are Exchange's.
type Limits struct {
	MaxMessageSize      Size     `yaml:"max_message_size"`         // 36MB
	MaxHeaderSize       Size     `yaml:"max_header_size"`          // 256KB
	MaxRecipients       int      `yaml:"max_recipients"`           // 200 per message
	MaxConnections      int      `yaml:"max_connections"`          // 5000 at once
	MaxConnectionsPerIP int      `yaml:"max_connections_per_ip"`   // 20 at once from one address
	MaxLineLength       int      `yaml:"max_line_length"`          // 65536 octets per line of message data
	MaxCommandsNoMail   int      `yaml:"max_commands_before_mail"` // 100 commands since the last message accepted that bring none closer
	MaxErrors           int      `yaml:"max_errors"`               // 20 error replies, then 421
	MaxAuthFailures     int      `yaml:"max_auth_failures"`        // 5 per client IP in 10 minutes, then 421
	Tarpit              Duration `yaml:"tarpit"`                   // 5s delay on refusals to unauthenticated clients
	IdleTimeout         Duration `yaml:"idle_timeout"`             // 5m waiting for a command
	DataTimeout         Duration `yaml:"data_timeout"`             // 10m for the whole DATA transfer
}

// User is a login for AUTH on receive connectors.
type User struct {
	// Name is the login, "app@contoso.com" (UPN style) or "scanner".
	Name string `yaml:"name"`
	// PasswordHash is an argon2id ($argon2id$...) or bcrypt ($2b$...) hash;
	// make one with `sluice user hash`. Plain passwords are refused.
	PasswordHash string `yaml:"password_hash"`
	// SendAs lists the MAIL FROM addresses the user may use: addresses and
	// "*@domain" patterns. Default: the login name when it is an address.
	SendAs []string `yaml:"send_as"`
	// Permissions the user holds once authenticated, on top of the
	// connector's. Default: [relay].
	Permissions []Permission `yaml:"permissions"`
}

// TLSConfig returns the connector's server TLS configuration, nil when it
// offers no TLS. Certificates were read and checked at load.
func (rc *ReceiveConnector) TLSConfig() *tls.Config { return rc.tlsConfig }

// OffersTLS reports whether the connector speaks TLS at all.
func (rc *ReceiveConnector) OffersTLS() bool { return rc.TLS.Mode != TLSNone }

// RequiresTLSForAuth applies the default: on when TLS is offered.
func (rc *ReceiveConnector) RequiresTLSForAuth() bool {
	if rc.RequireTLSForAuth != nil {
		return *rc.RequireTLSForAuth
	}
	return rc.OffersTLS()
}

// Has reports whether the connector grants p to every client, counting
// externally-secured as all rights.
func (rc *ReceiveConnector) Has(p Permission) bool { return hasPermission(rc.Permissions, p) }

// Has reports whether the user holds p once authenticated.
func (u *User) Has(p Permission) bool { return hasPermission(u.Permissions, p) }

func hasPermission(ps []Permission, p Permission) bool {
	for _, x := range ps {
		if x == p || x == PermExternallySecured {
			return true
		}
		if x == PermRelay && p == PermAnonymous {
			return true // who may send anywhere may send to accepted domains
		}
	}
	return false
}

// Serves reports whether the connector's remote IP ranges include ip, and
// the prefix length of the most specific range that does (-1 if none).
func (rc *ReceiveConnector) Serves(ip netip.Addr) int {
	best := -1
	ip = ip.Unmap()
	for _, r := range rc.RemoteIPRanges {
		if r.Contains(ip) && r.Bits() > best {
			best = r.Bits()
		}
	}
	return best
}
