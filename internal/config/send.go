package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// SendConnector is one way out: which recipient domains it serves
// (address spaces; the most specific match wins) and how it delivers —
// through smarthosts in order, by MX lookup, or into a directory.
type SendConnector struct {
	Name string `yaml:"name"`
	// AddressSpaces are the recipient domains this connector serves:
	// "*" (everything), "contoso.com", "*.contoso.com" (its subdomains,
	// not contoso.com itself: list both for both).
	AddressSpaces []AddressSpace `yaml:"address_spaces"`
	// Delivery is smarthost, mx or directory.
	Delivery DeliveryKind `yaml:"delivery"`
	// Preset fills in Microsoft 365's or Google's host, port, TLS, AUTH and
	// rate limit; keys given here override it: microsoft365, google.
	Preset Preset `yaml:"preset"`
	// Smarthosts are tried in order: on a connection failure or a 4xx
	// reply to the connection, the next one. "host:port" or "host"
	// (port 25, or Port).
	Smarthosts []HostPort `yaml:"smarthosts"`
	// Port for MX delivery and for smarthosts given without one. Default 25.
	Port int `yaml:"port"`
	// Directory for directory delivery (drop folder): one .eml per message,
	// relative to node.data_dir.
	Directory string `yaml:"directory"`
	// HELO is the name Sluice gives in EHLO. Default: node.hostname.
	HELO string   `yaml:"helo"`
	TLS  SendTLS  `yaml:"tls"`
	Auth SendAuth `yaml:"auth"`
	// RewriteSender makes the envelope sender and the From field the
	// authenticated mailbox (auth.username), keeping the original From in
	// Reply-To: for upstreams that refuse to send as anyone else
	// (Microsoft 365 without SendAs rights).
	RewriteSender bool `yaml:"rewrite_sender"`
	// MaxConnections is how many sessions at once to one next hop.
	// Default 20 (Exchange's MaxPerDomainOutboundConnections).
	MaxConnections int `yaml:"max_connections"`
	// MaxMessagesPerConnection before a session is closed and a new one
	// opened. Default 20 (Exchange's SmtpMaxMessagesPerConnection).
	MaxMessagesPerConnection int `yaml:"max_messages_per_connection"`
	// RateLimit caps messages per time to one next hop: "30/m", "1000/h",
	// or "none". Default: none; microsoft365 preset: 30/m.
	RateLimit Rate `yaml:"rate_limit"`
	// ConnectTimeout bounds a TCP connect (and an implicit TLS handshake);
	// the greeting has RFC 5321's 5 minutes. Default 30s.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	Retry          Retry    `yaml:"retry"`
	ProtocolLog    bool     `yaml:"protocol_log"`

	tlsConfig  *tls.Config
	clientCert *tls.Certificate
}

// SendTLS is the TLS level towards the next hop.
type SendTLS struct {
	// Mode: none, opportunistic (STARTTLS when offered, any certificate),
	// required (STARTTLS or fail, any certificate), verify (required, and
	// the certificate must be valid for the host name). Default:
	// opportunistic for mx and directory, verify with a preset.
	Mode SendTLSMode `yaml:"mode"`
	// Implicit speaks TLS from the first byte (port 465) instead of STARTTLS.
	Implicit bool `yaml:"implicit"`
	// ServerName is the name the certificate must match in verify mode.
	// Default: the smarthost's or MX host's name.
	ServerName string `yaml:"server_name"`
	// CAFile adds trusted CA certificates (PEM) to the system's, for an
	// internal CA.
	CAFile string `yaml:"ca_file"`
	// ClientCertificate and ClientKey (PEM files) are presented when the
	// upstream asks, e.g. for Exchange's mutual TLS (seed 003).
	ClientCertificate string     `yaml:"client_certificate"`
	ClientKey         string     `yaml:"client_key"`
	MinVersion        TLSVersion `yaml:"min_version"`
}

// SendAuth is the AUTH Sluice does at the next hop.
type SendAuth struct {
	// Mechanism: PLAIN, LOGIN or XOAUTH2. Empty: no AUTH.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  Secret `yaml:"password"`
	OAuth2    OAuth2 `yaml:"oauth2"`
}

// OAuth2 is how Sluice gets an access token for XOAUTH2.
type OAuth2 struct {
	// Flow: client_credentials (Microsoft 365 app registration) or
	// refresh_token (Google). Default: client_credentials.
	Flow         string   `yaml:"flow"`
	Tenant       string   `yaml:"tenant"`    // Microsoft: directory (tenant) id or domain
	TokenURL     string   `yaml:"token_url"` // default from the preset/tenant
	ClientID     string   `yaml:"client_id"`
	ClientSecret Secret   `yaml:"client_secret"`
	RefreshToken Secret   `yaml:"refresh_token"`
	Scopes       []string `yaml:"scopes"`
}

// Retry is the schedule for a message the next hop did not take.
type Retry struct {
	First       Duration `yaml:"first"`        // 1m: first retry after this
	MaxInterval Duration `yaml:"max_interval"` // 1h: the wait doubles up to this
	Expire      Duration `yaml:"expire"`       // 2d: then the message bounces (5.4.7)
	DelayNotice Duration `yaml:"delay_notice"` // 4h: the sender is told once; 0: never
}

// DeliveryKind is how a send connector delivers.
type DeliveryKind string

const (
	DeliverySmarthost DeliveryKind = "smarthost"
	DeliveryMX        DeliveryKind = "mx"
	DeliveryDirectory DeliveryKind = "directory"
)

func (d *DeliveryKind) setScalar(v string) error {
	s, err := oneOf(v, "smarthost", "mx", "directory")
	*d = DeliveryKind(s)
	return err
}

// Preset is a known upstream.
type Preset string

const (
	PresetMicrosoft365 Preset = "microsoft365"
	PresetGoogle       Preset = "google"
)

func (p *Preset) setScalar(v string) error {
	s, err := oneOf(v, "microsoft365", "google")
	*p = Preset(s)
	return err
}

// SendTLSMode is the TLS level of a send connector.
type SendTLSMode string

const (
	SendTLSNone          SendTLSMode = "none"
	SendTLSOpportunistic SendTLSMode = "opportunistic"
	SendTLSRequired      SendTLSMode = "required"
	SendTLSVerify        SendTLSMode = "verify"
)

func (m *SendTLSMode) setScalar(v string) error {
	s, err := oneOf(v, "none", "opportunistic", "required", "verify")
	*m = SendTLSMode(s)
	return err
}

// AddressSpace is a recipient domain pattern of a send connector.
type AddressSpace string

func (a *AddressSpace) setScalar(v string) error {
	s := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(v), "."))
	d := strings.TrimPrefix(s, "*.")
	if s != "*" && !mail.ValidDomain(d) {
		return fmt.Errorf("%q is not an address space; write *, contoso.com or *.contoso.com", v)
	}
	*a = AddressSpace(s)
	return nil
}

// Matches reports how specifically the space covers domain: -1 not at
// all, 0 for "*", otherwise the number of labels matched (an exact name
// beats a wildcard of the same length).
func (a AddressSpace) Matches(domain string) int {
	s, d := string(a), strings.ToLower(domain)
	switch {
	case s == "*":
		return 0
	case s == d:
		return 2 * (strings.Count(s, ".") + 1)
	case strings.HasPrefix(s, "*.") && strings.HasSuffix(d, s[1:]):
		return 2*(strings.Count(s, ".")) - 1
	}
	return -1
}

// HostPort is "host:port" or "host"; IPv6 addresses in brackets.
type HostPort struct {
	Host string
	Port int // 0: the connector's port
}

func (h *HostPort) setScalar(v string) error {
	t := strings.TrimSpace(v)
	host, port, err := net.SplitHostPort(t)
	if err != nil {
		host, port = strings.Trim(t, "[]"), ""
	}
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("%q has no valid port; write host:port, e.g. smtp.office365.com:587", v)
		}
		h.Port = p
	}
	if net.ParseIP(host) == nil && !mail.ValidDomain(host) {
		return fmt.Errorf("%q is not a host name or address; write e.g. smtp.office365.com:587 or 10.0.0.5", v)
	}
	h.Host = strings.ToLower(host)
	return nil
}

func (h HostPort) String() string {
	if h.Port == 0 {
		return h.Host
	}
	return net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
}

// DNSServer is a resolver's IP address with an optional port (0: 53).
// A host name is refused: it would itself need a resolver to be found.
type DNSServer struct{ HostPort }

func (d *DNSServer) setScalar(v string) error {
	const fix = "write an IP address, optionally with :port, e.g. 10.0.0.2:53 or [2001:db8::53]:53"
	t := strings.TrimSpace(v)
	host, port, err := net.SplitHostPort(t)
	if err != nil {
		host, port = strings.Trim(t, "[]"), ""
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		if mail.ValidDomain(host) && strings.Contains(host, ".") {
			return fmt.Errorf("%q is a host name: a resolver is given by address, since finding it by name would need a resolver; %s", v, fix)
		}
		return fmt.Errorf("%q is not an IP address; %s", v, fix)
	}
	d.Port = 0
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("%q has no valid port (1 to 65535); %s", v, fix)
		}
		d.Port = p
	}
	d.Host = ip.Unmap().String()
	return nil
}

// Rate is a number of messages per time unit, "30/m".
type Rate struct {
	N   int
	Per time.Duration
}

func (r *Rate) setScalar(v string) error {
	if strings.EqualFold(strings.TrimSpace(v), "none") {
		*r = Rate{} // lifts a preset's limit (microsoft365: 30/m)
		return nil
	}
	n, unit, ok := strings.Cut(strings.TrimSpace(v), "/")
	count, err := strconv.Atoi(strings.TrimSpace(n))
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[strings.TrimSpace(unit)]
	if !ok || err != nil || count < 1 || per == 0 {
		return fmt.Errorf("%q is not a rate; write messages per unit, e.g. 30/m, 1000/h, or none", v)
	}
	r.N, r.Per = count, per
	return nil
}

// Interval is the time between messages at this rate, 0 for no limit.
func (r Rate) Interval() time.Duration {
	if r.N == 0 {
		return 0
	}
	return r.Per / time.Duration(r.N)
}

func (r Rate) String() string {
	if r.N == 0 {
		return "none"
	}
	return fmt.Sprintf("%d/%s", r.N, map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h", 24 * time.Hour: "d"}[r.Per])
}

// TLSConfig is the client TLS configuration for the connector, with the
// client certificate loaded and CA file read at load; the caller sets
// ServerName per host.
func (sc *SendConnector) TLSConfig() *tls.Config { return sc.tlsConfig }

// HasAddressSpace reports whether the connector serves domain at all, and
// how specifically (see AddressSpace.Matches).
func (sc *SendConnector) HasAddressSpace(domain string) int {
	best := -1
	for _, a := range sc.AddressSpaces {
		best = max(best, a.Matches(domain))
	}
	return best
}

// Queue holds node-wide queue settings.
type Queue struct {
	// MinFreeSpace: below this much free disk space under data_dir,
	// messages are refused with 452 4.3.1 until space returns. Default 100MB.
	MinFreeSpace Size `yaml:"min_free_space"`
}

// SendConnectorNamed returns the send connector called name, in any case
// (the check refuses two names that differ only in case, and admins type
// them as queue identities are typed), or nil.
func (c *Config) SendConnectorNamed(name string) *SendConnector {
	for i := range c.SendConnectors {
		if strings.EqualFold(c.SendConnectors[i].Name, name) {
			return &c.SendConnectors[i]
		}
	}
	return nil
}

// SendConnectorNames lists the send connectors' names in config order.
func (c *Config) SendConnectorNames() []string {
	out := make([]string, len(c.SendConnectors))
	for i, sc := range c.SendConnectors {
		out[i] = sc.Name
	}
	return out
}
