package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// Microsoft 365 and Google, as presets: what their documentation asks of
// an application that sends mail with OAuth2.
const (
	microsoftHost  = "smtp.office365.com"
	microsoftScope = "https://outlook.office365.com/.default"
	googleHost     = "smtp.gmail.com"
	googleTokenURL = "https://oauth2.googleapis.com/token"
	googleScope    = "https://mail.google.com/"
)

// MicrosoftTokenURL is the Microsoft identity platform's token endpoint
// for a tenant.
func MicrosoftTokenURL(tenant string) string {
	return "https://login.microsoftonline.com/" + tenant + "/oauth2/v2.0/token"
}

func (k *checker) sendDefaults(sc *SendConnector, p string) {
	switch sc.Preset {
	case PresetMicrosoft365:
		k.preset(sc, p, microsoftHost, "client_credentials", microsoftScope, "")
		if !k.set(p + ".rate_limit") {
			sc.RateLimit = Rate{N: 30, Per: time.Minute} // Exchange Online's SMTP AUTH limit per mailbox
		}
		if !k.set(p + ".max_connections") {
			sc.MaxConnections = 3 // Exchange Online allows few concurrent SMTP AUTH sessions per mailbox
		}
		if sc.Auth.OAuth2.TokenURL == "" && sc.Auth.OAuth2.Tenant != "" {
			sc.Auth.OAuth2.TokenURL = MicrosoftTokenURL(sc.Auth.OAuth2.Tenant)
		}
	case PresetGoogle:
		k.preset(sc, p, googleHost, "refresh_token", googleScope, googleTokenURL)
	}
	if sc.Delivery == "" {
		switch {
		case len(sc.Smarthosts) > 0:
			sc.Delivery = DeliverySmarthost
		case sc.Directory != "":
			sc.Delivery = DeliveryDirectory
		}
	}
	if !k.set(p + ".port") {
		sc.Port = 25
	}
	for i := range sc.Smarthosts {
		if sc.Smarthosts[i].Port == 0 {
			sc.Smarthosts[i].Port = sc.Port
		}
	}
	if sc.HELO == "" {
		sc.HELO = k.c.Node.Hostname
	}
	if sc.TLS.Mode == "" {
		sc.TLS.Mode = SendTLSOpportunistic
	}
	if sc.TLS.MinVersion == 0 {
		sc.TLS.MinVersion = TLSVersion(tls.VersionTLS12)
	}
	if sc.MaxConnections == 0 && !k.set(p+".max_connections") {
		sc.MaxConnections = 20
	}
	if sc.MaxMessagesPerConnection == 0 && !k.set(p+".max_messages_per_connection") {
		sc.MaxMessagesPerConnection = 20
	}
	if !k.set(p + ".connect_timeout") {
		sc.ConnectTimeout = Duration(30 * time.Second)
	}
	r := &sc.Retry
	for _, d := range []struct {
		key string
		dst *Duration
		def time.Duration
	}{{"first", &r.First, time.Minute}, {"max_interval", &r.MaxInterval, time.Hour},
		{"expire", &r.Expire, 48 * time.Hour}, {"delay_notice", &r.DelayNotice, 4 * time.Hour}} {
		if !k.set(p + ".retry." + d.key) {
			*d.dst = Duration(d.def)
		}
	}
	if sc.Auth.Mechanism != "" {
		sc.Auth.Mechanism = strings.ToUpper(sc.Auth.Mechanism)
	}
	if sc.Auth.Mechanism == "XOAUTH2" && sc.Auth.OAuth2.Flow == "" {
		sc.Auth.OAuth2.Flow = "client_credentials"
	}
}

// preset fills what the file left out for a known upstream.
func (k *checker) preset(sc *SendConnector, p, host, flow, scope, tokenURL string) {
	if len(sc.Smarthosts) == 0 {
		sc.Smarthosts = []HostPort{{Host: host, Port: 587}}
	}
	if sc.Delivery == "" {
		sc.Delivery = DeliverySmarthost
	}
	if sc.TLS.Mode == "" {
		sc.TLS.Mode = SendTLSVerify
	}
	if sc.Auth.Mechanism == "" {
		sc.Auth.Mechanism = "XOAUTH2"
	}
	o := &sc.Auth.OAuth2
	if o.Flow == "" {
		o.Flow = flow
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{scope}
	}
	if o.TokenURL == "" {
		o.TokenURL = tokenURL
	}
}

func (k *checker) checkSendConnectors() {
	c := k.c
	if len(c.SendConnectors) == 0 {
		k.errorf("send_connectors", "no send connector, so accepted mail could go nowhere; add one, e.g. name: Drop, address_spaces: [\"*\"], delivery: directory, directory: drop")
	}
	names := map[string]int{}
	spaces := map[AddressSpace]int{}
	dirs := map[string]int{}
	for i := range c.SendConnectors {
		sc := &c.SendConnectors[i]
		p := fmt.Sprintf("send_connectors[%d]", i)
		if sc.Name == "" {
			k.errorf(p+".name", "missing; give the connector a name, e.g. \"Microsoft 365\"")
		} else if j, dup := names[strings.ToLower(sc.Name)]; dup {
			k.errorf(p+".name", "%q is also the name of send_connectors[%d]; names must be unique (case does not count)", sc.Name, j)
		} else if strings.EqualFold(sc.Name, "Unreachable") {
			// route.Unreachable; queue identities match in any case.
			k.errorf(p+".name", "%q is the name of the queue for recipients no connector serves; give the connector another name", sc.Name)
		} else if strings.EqualFold(sc.Name, "Poison") {
			// queue.Poison, which config cannot import.
			k.errorf(p+".name", "%q is the name of the queue for messages whose record cannot be read; give the connector another name", sc.Name)
		}
		names[strings.ToLower(sc.Name)] = i
		if len(sc.AddressSpaces) == 0 {
			k.errorf(p+".address_spaces", "missing; list the recipient domains this connector serves, e.g. [\"*\"] for everything")
		}
		for j, a := range sc.AddressSpaces {
			if o, dup := spaces[a]; dup && o != i {
				k.errorf(fmt.Sprintf("%s.address_spaces[%d]", p, j), "%q is also an address space of %q; the most specific space picks one connector, so the same space twice is ambiguous", a, c.SendConnectors[o].Name)
			}
			spaces[a] = i
		}
		k.checkDelivery(sc, p)
		if sc.Delivery == DeliveryDirectory && sc.Directory != "" {
			// Files are named by message id: a message with recipients
			// on both connectors would be written twice to one name, the
			// second copy over the first.
			d := filepath.Clean(sc.Directory)
			if o, dup := dirs[d]; dup {
				k.errorf(p+".directory", "send connector %q writes to the same directory; a message with recipients on both would be written there twice under one name, the second copy over the first: give each connector its own directory", c.SendConnectors[o].Name)
			} else {
				dirs[d] = i
			}
		}
		k.checkSendTLS(sc, p)
		k.checkSendAuth(sc, p)
	}
	for i, ad := range c.AcceptedDomains {
		if ad.Type != DomainAuthoritative || len(c.SendConnectors) == 0 {
			continue
		}
		if parent, ok := strings.CutPrefix(ad.Domain, "*."); ok {
			// "*.contoso.com" accepts the subdomains only (AcceptedDomain).
			// Looking the pattern itself up matches exactly the address
			// spaces that serve every one of them: "*", "*.contoso.com",
			// "*.com"; not contoso.com nor one named subdomain.
			if c.SendConnector(ad.Domain) == nil {
				k.errorf(fmt.Sprintf("accepted_domains[%d].domain", i), "no send connector serves the subdomains of %s, so their mail could not be delivered; add %q (or \"*\") to a send connector's address_spaces", parent, ad.Domain)
			}
		} else if c.SendConnector(ad.Domain) == nil {
			k.errorf(fmt.Sprintf("accepted_domains[%d].domain", i), "no send connector serves %s, so its mail could not be delivered; add it (or \"*\") to a send connector's address_spaces", ad.Domain)
		}
	}
}

func (k *checker) checkDelivery(sc *SendConnector, p string) {
	switch sc.Delivery {
	case "":
		k.errorf(p+".delivery", "missing; write smarthost (with smarthosts), mx, or directory (with directory)")
	case DeliverySmarthost:
		if len(sc.Smarthosts) == 0 {
			k.errorf(p+".smarthosts", "delivery smarthost needs at least one smarthost, e.g. [relay.contoso.com:25]")
		}
	case DeliveryMX:
		if len(sc.Smarthosts) > 0 {
			k.errorf(p+".smarthosts", "delivery mx looks up the recipient's MX hosts; remove smarthosts or set delivery: smarthost")
		}
	case DeliveryDirectory:
		if sc.Directory == "" {
			k.errorf(p+".directory", "delivery directory needs the directory to write .eml files to, e.g. drop")
		}
	}
	if sc.Delivery != DeliveryDirectory && sc.Directory != "" {
		k.errorf(p+".directory", "a directory is given but delivery is %s; set delivery: directory or remove it", sc.Delivery)
	}
	if sc.Port < 1 || sc.Port > 65535 {
		k.errorf(p+".port", "%d is not a TCP port; give 1 to 65535, or leave the key out for 25", sc.Port)
	}
	if k.set(p+".helo") && !mail.ValidDomain(sc.HELO) {
		k.errorf(p+".helo", "%q is not a host name; give this relay's fully qualified name, e.g. relay.contoso.com, or leave the key out for node.hostname", sc.HELO)
	}
	// The timeout bounds the connect and the greeting together: 0 would
	// not mean "no timeout" but fail every attempt at once.
	if sc.ConnectTimeout.D() < time.Second {
		k.errorf(p+".connect_timeout", "%v is too short to connect to any host; give at least 1s, or leave the key out for 30s", sc.ConnectTimeout)
	}
	if sc.MaxConnections < 1 {
		k.errorf(p+".max_connections", "must be at least 1")
	}
	if sc.MaxMessagesPerConnection < 1 {
		k.errorf(p+".max_messages_per_connection", "must be at least 1")
	}
	if r := sc.Retry; r.First.D() <= 0 || r.MaxInterval.D() < r.First.D() || r.Expire.D() < r.First.D() {
		k.errorf(p+".retry", "the schedule must have first > 0, max_interval ≥ first and expire ≥ first (now first %v, max_interval %v, expire %v)", r.First, r.MaxInterval, r.Expire)
	}
	// Only when written: with a short expire and the default delay_notice
	// there is simply no notice, which is what such a connector wants.
	if r := sc.Retry; k.set(p+".retry.delay_notice") && r.DelayNotice > 0 && r.DelayNotice >= r.Expire {
		k.errorf(p+".retry.delay_notice", "%v is not shorter than expire (%v): the message bounces before the delay notice would go out; make it shorter, or 0 for no notice", r.DelayNotice, r.Expire)
	}
}

// checkSendTLS reads the client certificate and CA file now: a certificate
// that cannot be found must stop the config, not strand mail in a queue
// behind "454 4.7.5 The certificate specified ... could not be found"
// (seed 003).
func (k *checker) checkSendTLS(sc *SendConnector, p string) {
	t := &sc.TLS
	cfg := &tls.Config{MinVersion: uint16(t.MinVersion)}
	if (t.ClientCertificate == "") != (t.ClientKey == "") {
		k.errorf(p+".tls", "client_certificate and client_key go together; give both PEM files or neither")
	} else if t.ClientCertificate != "" {
		if pair := k.loadPair(t.ClientCertificate, t.ClientKey, p+".tls.client_certificate", p+".tls.client_key"); pair != nil {
			sc.clientCert = pair
			cfg.Certificates = []tls.Certificate{*pair}
		}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			k.errorf(p+".tls.ca_file", "cannot read %s: %v", t.CAFile, pathErr(err))
		} else {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				k.errorf(p+".tls.ca_file", "%s has no PEM certificate", t.CAFile)
			}
			cfg.RootCAs = pool
		}
	}
	if t.Mode != SendTLSVerify {
		cfg.InsecureSkipVerify = true // opportunistic and required take any certificate (RFC 7435)
		if t.CAFile != "" {
			// An admin who names the internal CA expects the upstream to
			// be checked against it; without verify nothing is.
			k.errorf(p+".tls.ca_file", "is used only to verify the upstream's certificate, and with mode %s any certificate is taken; set mode: verify, or remove ca_file", t.Mode)
		}
	}
	if t.Implicit && (t.Mode == SendTLSNone || t.Mode == SendTLSOpportunistic) {
		k.errorf(p+".tls.mode", "implicit TLS is always TLS; set mode: required or verify")
	}
	if t.ServerName != "" && !mail.ValidDomain(t.ServerName) {
		k.errorf(p+".tls.server_name", "%q is not a host name", t.ServerName)
	}
	sc.tlsConfig = cfg
}

func (k *checker) checkSendAuth(sc *SendConnector, p string) {
	a := &sc.Auth
	switch a.Mechanism {
	case "":
		if a.Username != "" || !a.Password.IsZero() {
			k.errorf(p+".auth.mechanism", "credentials are given but no mechanism; write PLAIN, LOGIN or XOAUTH2")
		}
		if sc.RewriteSender {
			k.errorf(p+".rewrite_sender", "rewrites to the authenticated mailbox, but the connector does not authenticate; configure auth")
		}
		return
	case "PLAIN", "LOGIN":
		if a.Username == "" || a.Password.IsZero() {
			k.errorf(p+".auth", "%s needs username and password", a.Mechanism)
		}
	case "XOAUTH2":
		o := a.OAuth2
		if a.Username == "" {
			k.errorf(p+".auth.username", "XOAUTH2 needs the mailbox to send as, e.g. relay@contoso.com")
		}
		switch o.Flow {
		case "client_credentials":
			if o.ClientID == "" || o.ClientSecret.IsZero() {
				k.errorf(p+".auth.oauth2", "the client_credentials flow needs client_id and client_secret (from the app registration)")
			}
			if o.TokenURL == "" {
				k.errorf(p+".auth.oauth2.tenant", "give the tenant (directory id or domain) or token_url")
			}
		case "refresh_token":
			if o.ClientID == "" || o.RefreshToken.IsZero() || o.TokenURL == "" {
				k.errorf(p+".auth.oauth2", "the refresh_token flow needs client_id, refresh_token and token_url (and client_secret when the app registration has one)")
			}
		default:
			k.errorf(p+".auth.oauth2.flow", "%q is not allowed here; write one of: client_credentials, refresh_token", o.Flow)
		}
		if len(o.Scopes) == 0 {
			k.errorf(p+".auth.oauth2.scopes", "give the token's scope, e.g. %s", microsoftScope)
		}
	default:
		k.errorf(p+".auth.mechanism", "%q is not allowed here; write one of: PLAIN, LOGIN, XOAUTH2", a.Mechanism)
		return
	}
	if sc.TLS.Mode == SendTLSNone || sc.TLS.Mode == SendTLSOpportunistic {
		k.errorf(p+".tls.mode", "the connector authenticates, so TLS must not be optional (a password or token would travel in clear); set mode: required or verify")
	}
	if sc.RewriteSender {
		if _, err := mail.ParseMailbox(a.Username, true); err != nil {
			k.errorf(p+".rewrite_sender", "rewrites the sender to auth.username, which must then be an address (now %q)", a.Username)
		}
	}
}

// SendConnector returns the send connector for recipient domain: the one
// with the most specific matching address space, or nil.
func (c *Config) SendConnector(domain string) *SendConnector {
	var best *SendConnector
	bestScore := -1
	for i := range c.SendConnectors {
		if s := c.SendConnectors[i].HasAddressSpace(domain); s > bestScore {
			best, bestScore = &c.SendConnectors[i], s
		}
	}
	return best
}
