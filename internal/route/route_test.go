package route

import (
	"testing"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
)

func TestFor(t *testing.T) {
	cfg, err := config.Parse("", []byte(`
accepted_domains: [{domain: contoso.com}]
receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:25"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}
send_connectors:
  - {name: Exchange, address_spaces: [contoso.com, "*.contoso.com"], smarthosts: [exch1.contoso.com, "exch2.contoso.com:2525"]}
  - {name: EU, address_spaces: [eu.contoso.com], delivery: directory, directory: eu}
  - {name: Internet, address_spaces: ["*.example"], delivery: mx}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ rcpt, key, typ, nextHop string }{
		{"bob@contoso.com", "Exchange", "SmartHostConnectorDelivery", "exch1.contoso.com:25, exch2.contoso.com:2525"},
		{"bob@sales.contoso.com", "Exchange", "SmartHostConnectorDelivery", "exch1.contoso.com:25, exch2.contoso.com:2525"},
		{"bob@eu.contoso.com", "EU", "NonSmtpGatewayDelivery", cfg.SendConnectors[1].Directory}, // exact beats *.contoso.com
		{"bob@fabrikam.example", "Internet/fabrikam.example", "DnsConnectorDelivery", "fabrikam.example"},
		{"bob@Mail.Fabrikam.example", "Internet/mail.fabrikam.example", "DnsConnectorDelivery", "mail.fabrikam.example"},
		{"bob@elsewhere.org", "Unreachable", "Unreachable", "(no send connector)"},
	}
	for _, tc := range tests {
		h := For(cfg, mailAddr(tc.rcpt))
		if h.Key != tc.key || h.DeliveryType() != tc.typ || h.NextHop() != tc.nextHop {
			t.Errorf("%s: %q %q %q; want %q %q %q", tc.rcpt, h.Key, h.DeliveryType(), h.NextHop(), tc.key, tc.typ, tc.nextHop)
		}
	}
}

// Via routes through the named connector whatever the address spaces say;
// the name matches in any case, as config refuses two that differ only
// in case, so a message queued for "Archive" still finds its connector
// after a reload that writes "ARCHIVE".
func TestVia(t *testing.T) {
	cfg, err := config.Parse("", []byte(`
receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:25"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}
send_connectors:
  - {name: Exchange, address_spaces: [contoso.com], smarthosts: [exch1.contoso.com]}
  - {name: ARCHIVE, address_spaces: [archive.example], delivery: directory, directory: archive}
  - {name: Internet, address_spaces: ["*"], delivery: mx}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ via, rcpt, key string }{
		{"", "bob@contoso.com", "Exchange"},
		{"ARCHIVE", "bob@contoso.com", "ARCHIVE"},
		{"Archive", "bob@contoso.com", "ARCHIVE"},
		{"internet", "bob@contoso.com", "Internet/contoso.com"},
		{"Nope", "bob@contoso.com", "Unreachable"},
	}
	for _, tc := range tests {
		if h := Via(cfg, tc.via, mailAddr(tc.rcpt)); h.Key != tc.key {
			t.Errorf("Via(%q, %s) = %q; want %q", tc.via, tc.rcpt, h.Key, tc.key)
		}
	}
}

func mailAddr(s string) mail.Address {
	a, err := mail.ParseMailbox(s, true)
	if err != nil {
		panic(err)
	}
	return a
}
