package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/certs"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/password"
)

// checker applies defaults and cross-checks a decoded config, recording
// problems with the line of the key they concern.
type checker struct {
	d    *decoder
	c    *Config
	base string // directory relative paths start from
}

// errorf records a problem at key path; the line is that of the key, or of
// its nearest ancestor that appears in the file.
func (k *checker) errorf(path, format string, args ...any) {
	k.d.errs = append(k.d.errs, Error{File: k.d.file, Line: k.lineOf(path), Key: path, Msg: fmt.Sprintf(format, args...)})
}

func (k *checker) lineOf(path string) int { return lineOf(k.d.lines, path) }

// set reports whether the file gave a value for path. A key with an empty
// value keeps the default, as if it were left out.
func (k *checker) set(path string) bool { return k.d.given[path] }

// Exchange's receive connector defaults where they exist.
var defaultLimits = Limits{
	MaxMessageSize:      36 << 20,
	MaxHeaderSize:       256 << 10,
	MaxRecipients:       200,
	MaxConnections:      5000,
	MaxConnectionsPerIP: 20,
	MaxLineLength:       65536,
	MaxCommandsNoMail:   100,
	MaxErrors:           20,
	MaxAuthFailures:     5,
	Tarpit:              Duration(5 * time.Second),
	IdleTimeout:         Duration(5 * time.Minute),
	DataTimeout:         Duration(10 * time.Minute),
}

func (k *checker) applyDefaults() {
	c := k.c
	if c.Node.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		c.Node.Hostname = h
	}
	if c.Node.DataDir == "" {
		c.Node.DataDir = "sluice-data"
	}
	k.resolvePaths()
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	for i := range c.AcceptedDomains {
		ad := &c.AcceptedDomains[i]
		ad.Domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(ad.Domain), "."))
		if ad.Type == "" {
			ad.Type = DomainAuthoritative
		}
	}
	for i := range c.ReceiveConnectors {
		rc := &c.ReceiveConnectors[i]
		p := fmt.Sprintf("receive_connectors[%d]", i)
		if rc.FQDN == "" {
			rc.FQDN = c.Node.Hostname
		}
		if rc.Banner == "" {
			rc.Banner = "ESMTP Sluice ready"
		}
		if rc.TLS.Mode == "" {
			rc.TLS.Mode = TLSNone
		}
		if rc.TLS.MinVersion == 0 {
			rc.TLS.MinVersion = TLSVersion(tls.VersionTLS12)
		}
		if rc.BareLineEndings == "" {
			rc.BareLineEndings = BareReject
		}
		k.limitDefaults(&rc.Limits, p+".limits")
	}
	for i := range c.Users {
		u := &c.Users[i]
		if len(u.SendAs) == 0 && strings.Contains(u.Name, "@") {
			u.SendAs = []string{u.Name}
		}
		if !k.set(fmt.Sprintf("users[%d].permissions", i)) {
			u.Permissions = []Permission{PermRelay}
		}
	}
	for i := range c.SendConnectors {
		k.sendDefaults(&c.SendConnectors[i], fmt.Sprintf("send_connectors[%d]", i))
	}
	if c.Queue.MinFreeSpace == 0 && !k.set("queue.min_free_space") {
		c.Queue.MinFreeSpace = 100 << 20
	}
	k.opsDefaults()
	for i := range c.Node.DNSServers {
		if c.Node.DNSServers[i].Port == 0 {
			c.Node.DNSServers[i].Port = 53
		}
	}
}

// limitDefaults fills every limit the file left out. A limit written as 0
// stays 0 where 0 means "none" (tarpit) and is refused where it would stop
// all mail.
func (k *checker) limitDefaults(l *Limits, path string) {
	d := defaultLimits
	fill := func(key string, dst *int, def int) {
		if !k.set(path + "." + key) {
			*dst = def
		} else if *dst == 0 {
			k.errorf(path+"."+key, "0 would refuse every client; give a positive number or leave the key out for the default %d", def)
		}
	}
	fill("max_recipients", &l.MaxRecipients, d.MaxRecipients)
	fill("max_connections", &l.MaxConnections, d.MaxConnections)
	fill("max_connections_per_ip", &l.MaxConnectionsPerIP, d.MaxConnectionsPerIP)
	fill("max_line_length", &l.MaxLineLength, d.MaxLineLength)
	fill("max_commands_before_mail", &l.MaxCommandsNoMail, d.MaxCommandsNoMail)
	fill("max_errors", &l.MaxErrors, d.MaxErrors)
	fill("max_auth_failures", &l.MaxAuthFailures, d.MaxAuthFailures)
	// RFC 5321 §4.5.3.1.6: a line of text is up to 1000 octets with its
	// CRLF, which max_line_length does not count.
	if l.MaxLineLength > 0 && l.MaxLineLength < 998 {
		k.errorf(path+".max_line_length", "%d would refuse mail that follows the standard (RFC 5321 §4.5.3.1.6 allows lines of 998 octets plus CRLF); give at least 998, or leave the key out for %d", l.MaxLineLength, d.MaxLineLength)
	}
	if !k.set(path + ".max_message_size") {
		l.MaxMessageSize = d.MaxMessageSize
	} else if l.MaxMessageSize < 1024 {
		k.errorf(path+".max_message_size", "%v is too small for any real message; give at least 1KB", l.MaxMessageSize)
	}
	if !k.set(path + ".max_header_size") {
		l.MaxHeaderSize = d.MaxHeaderSize
	} else if l.MaxHeaderSize < 1024 {
		k.errorf(path+".max_header_size", "%v is too small for any real header; give at least 1KB", l.MaxHeaderSize)
	}
	if !k.set(path + ".tarpit") {
		l.Tarpit = d.Tarpit
	}
	if !k.set(path + ".idle_timeout") {
		l.IdleTimeout = d.IdleTimeout
	} else if l.IdleTimeout.D() < time.Second {
		k.errorf(path+".idle_timeout", "%v is too short for any client; give at least 1s", l.IdleTimeout)
	}
	if !k.set(path + ".data_timeout") {
		l.DataTimeout = d.DataTimeout
	} else if l.DataTimeout.D() < time.Second {
		k.errorf(path+".data_timeout", "%v is too short for any client; give at least 1s", l.DataTimeout)
	}
}

func (k *checker) check() {
	k.checkDomains()
	k.checkConnectors()
	k.checkBindings()
	k.checkUsers()
	k.checkSendConnectors()
	k.checkSecrets()
	k.checkOps()
	k.checkDirs()
	if !mail.ValidDomain(k.c.Node.Hostname) {
		k.errorf("node.hostname", "%q is not a host name; give this machine's fully qualified name, e.g. relay.contoso.com", k.c.Node.Hostname)
	}
}

func (k *checker) checkDomains() {
	seen := map[string]int{}
	for i, ad := range k.c.AcceptedDomains {
		p := fmt.Sprintf("accepted_domains[%d].domain", i)
		name := strings.TrimPrefix(ad.Domain, "*.")
		switch {
		case ad.Domain == "":
			k.errorf(p, "missing; give the domain, e.g. contoso.com or *.contoso.com")
		case !mail.ValidDomain(name):
			k.errorf(p, "%q is not a domain name; write e.g. contoso.com or *.contoso.com", ad.Domain)
		}
		if j, dup := seen[ad.Domain]; dup {
			k.errorf(p, "%q is listed twice (also accepted_domains[%d]); keep one", ad.Domain, j)
		}
		seen[ad.Domain] = i
	}
}

func (k *checker) checkConnectors() {
	if len(k.c.ReceiveConnectors) == 0 {
		k.errorf("receive_connectors", "no receive connector; add at least one, e.g. name: Default, bindings: [0.0.0.0:25], remote_ip_ranges: [10.0.0.0/8]")
	}
	names := map[string]int{}
	for i := range k.c.ReceiveConnectors {
		rc := &k.c.ReceiveConnectors[i]
		p := fmt.Sprintf("receive_connectors[%d]", i)
		if rc.Name == "" {
			k.errorf(p+".name", "missing; give the connector a name, e.g. \"SharePoint relay\"")
		} else if j, dup := names[strings.ToLower(rc.Name)]; dup {
			k.errorf(p+".name", "%q is also the name of receive_connectors[%d]; names must be unique (case does not count)", rc.Name, j)
		}
		names[strings.ToLower(rc.Name)] = i
		if len(rc.Bindings) == 0 {
			k.errorf(p+".bindings", "missing; give the addresses to listen on, e.g. [0.0.0.0:25]")
		}
		if len(rc.RemoteIPRanges) == 0 {
			k.errorf(p+".remote_ip_ranges", "missing; list the client ranges this connector serves, e.g. [10.0.0.0/24], or [0.0.0.0/0, ::/0] for every client")
		}
		// Only when given: a default taken from a bad node.hostname is
		// reported there, once.
		if k.set(p+".fqdn") && !mail.ValidDomain(rc.FQDN) {
			k.errorf(p+".fqdn", "%q is not a host name; give the name for the banner and EHLO reply, e.g. relay.contoso.com, or leave the key out for node.hostname", rc.FQDN)
		}
		if strings.ContainsAny(rc.Banner, "\r\n") {
			k.errorf(p+".banner", "the banner must be one line")
		}
		for j, m := range rc.AuthMechanisms {
			if slices.Index(rc.AuthMechanisms, m) < j {
				k.errorf(fmt.Sprintf("%s.auth_mechanisms[%d]", p, j), "%s is listed twice; keep one", m)
			}
		}
		k.checkTLS(rc, p)
		if len(rc.Permissions) == 0 && len(rc.AuthMechanisms) == 0 {
			k.errorf(p+".permissions", "the connector grants no permissions and offers no AUTH, so no client could send through it; add e.g. permissions: [anonymous] or auth_mechanisms: [LOGIN, PLAIN]")
		}
		if len(rc.AuthMechanisms) > 0 && !rc.OffersTLS() && rc.RequiresTLSForAuth() {
			k.errorf(p+".require_tls_for_auth", "AUTH is offered only after TLS, but the connector has no TLS; set tls.mode: starttls, or require_tls_for_auth: false for a trusted network")
		}
		if rc.RequireTLSForMail && !rc.OffersTLS() {
			k.errorf(p+".require_tls_for_mail", "MAIL is allowed only after TLS, but the connector has no TLS; set tls.mode: starttls or remove this key")
		}
	}
}

func (k *checker) checkTLS(rc *ReceiveConnector, p string) {
	t := &rc.TLS
	if t.Mode == TLSNone {
		if t.Certificate != "" || t.Key != "" {
			k.errorf(p+".tls.mode", "a certificate is given but tls.mode is none; set mode: starttls (or implicit for port 465), or remove the certificate")
		}
		return
	}
	if t.Certificate == "" || t.Key == "" {
		k.errorf(p+".tls", "tls.mode %s needs certificate and key (PEM files)", t.Mode)
		return
	}
	if pair := k.loadPair(t.Certificate, t.Key, p+".tls.certificate", p+".tls.key"); pair != nil {
		rc.tlsConfig = serverTLS(pair, uint16(t.MinVersion))
	}
}

// loadPair loads a certificate and its key, or reports why not under the
// setting at fault: the key's when the key file is, else the
// certificate's, and then the key's too if its file has faults of its
// own, so that one run of config check names both.
func (k *checker) loadPair(certFile, keyFile, certSetting, keySetting string) *tls.Certificate {
	pair, err := certs.Load(certFile, keyFile)
	switch {
	case err == nil:
		return pair
	case errors.Is(err, certs.ErrKey):
		k.errorf(keySetting, "%v", err)
	default:
		k.errorf(certSetting, "%v", err)
		if kerr := certs.CheckKey(keyFile); kerr != nil {
			k.errorf(keySetting, "%v", kerr)
		}
	}
	return nil
}

// serverTLS builds a receive connector's TLS configuration. Below TLS 1.2
// it also enables the CBC suites with RSA key exchange that Go leaves out by
// default: the old .NET and printer stacks that need TLS 1.0 speak nothing
// else.
func serverTLS(pair *tls.Certificate, minVersion uint16) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{*pair}, MinVersion: minVersion}
	if minVersion < tls.VersionTLS12 {
		for _, s := range tls.CipherSuites() {
			cfg.CipherSuites = append(cfg.CipherSuites, s.ID)
		}
		cfg.CipherSuites = append(cfg.CipherSuites, tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA)
	}
	return cfg
}

// checkBindings enforces Exchange's rule that every client maps to one
// connector: connectors sharing a binding must differ in remote IP ranges,
// and a wildcard binding cannot share a port with an address it covers
// (the operating system cannot listen on both).
func (k *checker) checkBindings() {
	type owner struct {
		conn, bind int
	}
	byBinding := map[Binding][]owner{}
	var order []Binding // as they first appear, so the report reads top-down
	for i, rc := range k.c.ReceiveConnectors {
		for j, b := range rc.Bindings {
			if _, seen := byBinding[b]; !seen {
				order = append(order, b)
			}
			byBinding[b] = append(byBinding[b], owner{i, j})
		}
	}
	for _, b := range order {
		owners := byBinding[b]
		for x := 0; x < len(owners); x++ {
			for y := x + 1; y < len(owners); y++ {
				a, c := owners[x], owners[y]
				if a.conn == c.conn {
					continue
				}
				ra, rb := k.c.ReceiveConnectors[a.conn], k.c.ReceiveConnectors[c.conn]
				for _, r := range ra.RemoteIPRanges {
					if slices.ContainsFunc(rb.RemoteIPRanges, func(s CIDR) bool { return s.Prefix == r.Prefix }) {
						k.errorf(fmt.Sprintf("receive_connectors[%d].remote_ip_ranges", c.conn),
							"connectors %q and %q both listen on %s with remote range %s, so a client there cannot be told apart; give one of them a different binding or a more specific range",
							ra.Name, rb.Name, b, r.Prefix)
					}
				}
			}
		}
		for _, other := range order {
			if oowners := byBinding[other]; other != b && other.Port() == b.Port() && covers(other, b) {
				o := oowners[0]
				k.errorf(fmt.Sprintf("receive_connectors[%d].bindings[%d]", owners[0].conn, owners[0].bind),
					"%s overlaps %s of connector %q: the system cannot listen on both; use %s on both connectors and tell them apart by remote_ip_ranges",
					b, other, k.c.ReceiveConnectors[o.conn].Name, other)
			}
		}
	}
}

// covers reports whether listening on wildcard w takes b's port on b's
// address too: 0.0.0.0 takes every IPv4 address; [::] every IPv6 one
// and, dual-stack as Go opens it (and Linux and Windows allow), every
// IPv4 one, 0.0.0.0 included.
func covers(w, b Binding) bool {
	if !w.Wildcard() {
		return false
	}
	return w.Addr().Is6() || b.Addr().Is4()
}

func (k *checker) checkUsers() {
	names := map[string]int{}
	for i := range k.c.Users {
		u := &k.c.Users[i]
		p := fmt.Sprintf("users[%d]", i)
		if u.Name == "" {
			k.errorf(p+".name", "missing; give the login name, e.g. app@contoso.com")
		} else if j, dup := names[strings.ToLower(u.Name)]; dup {
			k.errorf(p+".name", "%q is also users[%d]; login names must be unique (case does not count)", u.Name, j)
		}
		names[strings.ToLower(u.Name)] = i
		if err := checkHash(u.PasswordHash); err != nil {
			k.errorf(p+".password_hash", "%v", err)
		}
		for j, s := range u.SendAs {
			if err := checkSendAs(s); err != nil {
				k.errorf(fmt.Sprintf("%s.send_as[%d]", p, j), "%v", err)
			}
		}
	}
}

// checkSendAs accepts "user@domain" and "*@domain".
func checkSendAs(s string) error {
	if d, ok := strings.CutPrefix(s, "*@"); ok {
		if mail.ValidDomain(d) {
			return nil
		}
	} else if _, err := mail.ParseMailbox(s, true); err == nil {
		return nil
	}
	return fmt.Errorf("%q is neither an address nor a *@domain pattern", s)
}

func checkHash(h string) error { return password.Check(h) }
