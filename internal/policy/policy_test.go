package policy

import (
	"net/netip"
	"testing"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
)

// The organisation of seeds 000, 001 and 004: contoso.com is ours; an
// internal default connector for anonymous submission, a client connector
// that requires AUTH, a SharePoint connector scoped to one server that is
// externally secured, and a relay connector with only the relay right.
const testConfig = `
node: {hostname: relay.contoso.com}
accepted_domains:
  - domain: contoso.com
  - domain: "*.partner.example"
    type: relay
receive_connectors:
  - name: Default
    bindings: [0.0.0.0:25]
    remote_ip_ranges: [0.0.0.0/0]
    permissions: [anonymous]
    limits: {max_message_size: 10MB, max_recipients: 3}
  - name: SharePoint
    bindings: [0.0.0.0:25]
    remote_ip_ranges: [10.0.0.20]
    permissions: [externally-secured]
    limits: {max_message_size: 10MB, max_recipients: 3}
  - name: Relay
    bindings: [0.0.0.0:25]
    remote_ip_ranges: [10.0.1.0/24]
    permissions: [relay]
  - name: ERP
    bindings: [0.0.0.0:25]
    remote_ip_ranges: [10.0.1.7]
    permissions: [anonymous, accept-any-sender]
  - name: Client
    bindings: [0.0.0.0:587]
    remote_ip_ranges: [0.0.0.0/0, ::/0]
    auth_mechanisms: [LOGIN, PLAIN]
    require_tls_for_auth: false # TestAuth turns it on to model a STARTTLS connector
  - name: Loopback submission
    bindings: [127.0.0.1:2525]
    remote_ip_ranges: [127.0.0.0/8]
    auth_mechanisms: [PLAIN]
    require_tls_for_auth: false
    require_tls_for_mail: false
send_connectors:
  - {name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}
users:
  - name: app@contoso.com
    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$5mkv4XDtBVjkmcD7x1i4C8LmEp5Q6o5sCvOEQmHkSjI"
  - name: scanner
    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$5mkv4XDtBVjkmcD7x1i4C8LmEp5Q6o5sCvOEQmHkSjI"
    send_as: ["*@contoso.com"]
    permissions: []
`

func load(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func connector(t *testing.T, cfg *config.Config, name string) *config.ReceiveConnector {
	for i := range cfg.ReceiveConnectors {
		if cfg.ReceiveConnectors[i].Name == name {
			return &cfg.ReceiveConnectors[i]
		}
	}
	t.Fatalf("no connector %q", name)
	return nil
}

func user(t *testing.T, cfg *config.Config, name string) *config.User {
	for i := range cfg.Users {
		if cfg.Users[i].Name == name {
			return &cfg.Users[i]
		}
	}
	t.Fatalf("no user %q", name)
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestSelect(t *testing.T) {
	cfg := load(t)
	tests := []struct {
		local, remote string
		want          string // connector name, or the reply line
	}{
		{"10.0.0.1:25", "192.0.2.1", "Default"},
		{"10.0.0.1:25", "10.0.0.20", "SharePoint"}, // /32 beats /0 on a shared binding
		{"10.0.0.1:25", "10.0.0.21", "Default"},
		{"10.0.0.1:25", "10.0.1.5", "Relay"}, // /24 beats /0
		{"10.0.0.1:25", "10.0.1.7", "ERP"},   // /32 beats /24
		{"[::ffff:10.0.0.1]:25", "::ffff:10.0.0.20", "SharePoint"},
		{"10.0.0.1:25", "2001:db8::1", "554 5.7.1 Client host is not allowed to connect to this server"}, // no IPv6 range on port 25
		{"10.0.0.1:587", "2001:db8::1", "Client"},
		{"127.0.0.1:2525", "127.0.0.3", "Loopback submission"},
		{"127.0.0.1:2525", "10.0.0.20", "554 5.7.1 Client host is not allowed to connect to this server"},
		{"10.0.0.1:2525", "127.0.0.3", "554 5.7.1 Client host is not allowed to connect to this server"}, // bound to 127.0.0.1 only
	}
	for _, tc := range tests {
		rc, err := Select(cfg, netip.MustParseAddrPort(tc.local), netip.MustParseAddr(tc.remote))
		got := errText(err)
		if rc != nil {
			got = rc.Name
		}
		if got != tc.want {
			t.Errorf("client %s at %s: got %q, want %q", tc.remote, tc.local, got, tc.want)
		}
	}
}

func TestMailAndRcpt(t *testing.T) {
	cfg := load(t)
	tests := []struct {
		name string
		conn string
		user string // authenticated user, "" anonymous
		tls  bool
		from string
		size int64
		rcpt string
		n    int    // recipients already in the transaction
		want string // reply line of MAIL, then of RCPT; "" = accepted
	}{
		{name: "anonymous to accepted domain", conn: "Default", from: "alerts@fabrikam.example", rcpt: "bob@contoso.com"},
		{name: "anonymous to subdomain of wildcard relay domain", conn: "Default", from: "x@fabrikam.example", rcpt: "bob@eu.partner.example"},
		{name: "anonymous relay outside accepted domains", conn: "Default", from: "x@fabrikam.example", rcpt: "bob@fabrikam.example",
			want: "550 5.7.54 Unable to relay recipient in non-accepted domain"},
		// RFC 2505 §2.1: sender-specified routing through an accepted domain is relaying.
		{name: "anonymous percent hack through accepted domain", conn: "Default", from: "x@fabrikam.example", rcpt: "bob%fabrikam.example@contoso.com",
			want: "550 5.7.54 Unable to relay recipient in non-accepted domain; % ! or @ in the local part would route it onward, so write the final address instead"},
		{name: "anonymous bang path through accepted domain", conn: "Default", from: "x@fabrikam.example", rcpt: "fabrikam.example!bob@eu.partner.example",
			want: "550 5.7.54 Unable to relay recipient in non-accepted domain; % ! or @ in the local part would route it onward, so write the final address instead"},
		{name: "anonymous quoted @ through accepted domain", conn: "Default", from: "x@fabrikam.example", rcpt: `"bob@fabrikam.example"@contoso.com`,
			want: "550 5.7.54 Unable to relay recipient in non-accepted domain; % ! or @ in the local part would route it onward, so write the final address instead"},
		{name: "user without relay permission, percent hack", conn: "Client", user: "scanner", from: "copier7@contoso.com", rcpt: "bob%fabrikam.example@contoso.com",
			want: "550 5.7.54 Unable to relay recipient in non-accepted domain; % ! or @ in the local part would route it onward, so write the final address instead"},
		{name: "relay right may use routing characters", conn: "Relay", from: "x@fabrikam.example", rcpt: "bob%fabrikam.example@contoso.com"},
		{name: "anonymous spoofing our own domain", conn: "Default", from: "ceo@contoso.com", rcpt: "bob@contoso.com",
			want: "550 5.7.60 Client does not have permissions to send as this sender"},
		{name: "anonymous null sender", conn: "Default", from: "", rcpt: "bob@contoso.com"},
		{name: "SharePoint may send as users and relay (seed 000)", conn: "SharePoint", from: "ceo@contoso.com", rcpt: "bob@fabrikam.example"},
		{name: "externally secured skips size limit", conn: "SharePoint", from: "x@contoso.com", size: 100 << 20, rcpt: "bob@contoso.com"},
		{name: "externally secured skips recipient limit", conn: "SharePoint", from: "x@contoso.com", rcpt: "bob@contoso.com", n: 500},
		{name: "size over limit", conn: "Default", from: "x@fabrikam.example", size: 11 << 20,
			want: "552 5.3.4 Message size exceeds fixed maximum message size of 10485760 bytes"},
		{name: "recipient limit", conn: "Default", from: "x@fabrikam.example", rcpt: "bob@contoso.com", n: 3,
			want: "452 4.5.3 Too many recipients; at most 3 per message, send the rest in another message"},
		{name: "relay right may relay", conn: "Relay", from: "x@fabrikam.example", rcpt: "bob@fabrikam.example"},
		{name: "relay right may not spoof", conn: "Relay", from: "ceo@contoso.com", rcpt: "bob@fabrikam.example",
			want: "550 5.7.60 Client does not have permissions to send as this sender"},
		{name: "accept-any-sender may spoof but not relay", conn: "ERP", from: "ceo@contoso.com", rcpt: "bob@fabrikam.example",
			want: "550 5.7.54 Unable to relay recipient in non-accepted domain"},
		{name: "client connector without AUTH", conn: "Client", from: "app@contoso.com",
			want: "530 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM"},
		{name: "authenticated user as itself, relaying (default permission)", conn: "Client", user: "app@contoso.com", from: "app@contoso.com", rcpt: "bob@fabrikam.example"},
		{name: "authenticated user as someone else", conn: "Client", user: "app@contoso.com", from: "ceo@contoso.com",
			want: "550 5.7.60 Client does not have permissions to send as this sender"},
		{name: "send-as is case-insensitive", conn: "Client", user: "app@contoso.com", from: "App@Contoso.com", rcpt: "bob@contoso.com"},
		{name: "send-as pattern", conn: "Client", user: "scanner", from: "copier7@contoso.com", rcpt: "bob@contoso.com"},
		{name: "send-as pattern other domain", conn: "Client", user: "scanner", from: "copier7@fabrikam.example",
			want: "550 5.7.60 Client does not have permissions to send as this sender"},
		{name: "user without relay permission to accepted domain", conn: "Client", user: "scanner", from: "copier7@contoso.com", rcpt: "bob@contoso.com"},
		{name: "user without relay permission outside", conn: "Client", user: "scanner", from: "copier7@contoso.com", rcpt: "bob@fabrikam.example",
			want: "550 5.7.54 Unable to relay recipient in non-accepted domain"},
		{name: "authenticated null sender", conn: "Client", user: "app@contoso.com", from: "",
			want: "550 5.7.60 Client does not have permissions to send as this sender"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Session{Connector: connector(t, cfg, tc.conn), TLS: tc.tls}
			if tc.user != "" {
				s.User = user(t, cfg, tc.user)
			}
			got := errText(Mail(cfg, s, mail.Address(tc.from), tc.size))
			if got == "" && tc.rcpt != "" {
				got = errText(Rcpt(cfg, s, mail.Address(tc.rcpt), tc.n))
			}
			if got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestRequireTLSForMail(t *testing.T) {
	cfg := load(t)
	rc := *connector(t, cfg, "Default")
	rc.RequireTLSForMail = true
	s := &Session{Connector: &rc}
	if got := errText(Mail(cfg, s, "x@fabrikam.example", 0)); got != "530 5.7.0 Must issue a STARTTLS command first" {
		t.Errorf("without TLS: %q", got)
	}
	s.TLS = true
	if got := errText(Mail(cfg, s, "x@fabrikam.example", 0)); got != "" {
		t.Errorf("with TLS: %q", got)
	}
}

func TestAuth(t *testing.T) {
	cfg := load(t)
	client := *connector(t, cfg, "Client")
	yes := true
	client.RequireTLSForAuth = &yes
	tests := []struct {
		name      string
		rc        *config.ReceiveConnector
		mech      string
		tls, user bool
		inMail    bool
		want      string
		advertise bool
	}{
		{name: "LOGIN after TLS", rc: &client, mech: "LOGIN", tls: true, advertise: true},
		{name: "PLAIN after TLS", rc: &client, mech: "PLAIN", tls: true, advertise: true},
		{name: "before TLS", rc: &client, mech: "LOGIN",
			want: "538 5.7.11 Encryption required for requested authentication mechanism; send STARTTLS first"},
		{name: "mechanism not offered", rc: &client, mech: "CRAM-MD5", tls: true, advertise: true,
			want: "504 5.5.4 Unrecognized authentication type; this connector offers LOGIN PLAIN"},
		{name: "connector without AUTH", rc: connector(t, cfg, "Default"), mech: "LOGIN", tls: true,
			want: "504 5.5.4 Unrecognized authentication type; this connector offers no AUTH"},
		{name: "twice", rc: &client, mech: "LOGIN", tls: true, user: true, want: "503 5.5.1 Already authenticated"},
		{name: "in transaction", rc: &client, mech: "LOGIN", tls: true, inMail: true, advertise: true,
			want: "503 5.5.1 AUTH is not allowed during a mail transaction"},
		{name: "TLS not required on loopback", rc: connector(t, cfg, "Loopback submission"), mech: "PLAIN", advertise: true},
	}
	for _, tc := range tests {
		s := &Session{Connector: tc.rc, TLS: tc.tls, InMail: tc.inMail}
		if tc.user {
			s.User = user(t, cfg, "app@contoso.com")
		}
		if got := errText(Auth(s, tc.mech)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if got := AdvertiseAuth(s); got != tc.advertise {
			t.Errorf("%s: advertise AUTH = %v, want %v", tc.name, got, tc.advertise)
		}
	}
}

func TestTarpit(t *testing.T) {
	cfg := load(t)
	anon := &Session{Connector: connector(t, cfg, "Default")}
	if Tarpit(anon) == 0 {
		t.Error("anonymous client is not tarpitted")
	}
	if d := Tarpit(&Session{Connector: connector(t, cfg, "SharePoint")}); d != 0 {
		t.Errorf("externally secured client tarpitted for %v", d)
	}
	if d := Tarpit(&Session{Connector: connector(t, cfg, "Client"), User: user(t, cfg, "scanner")}); d != 0 {
		t.Errorf("authenticated client tarpitted for %v", d)
	}
}
