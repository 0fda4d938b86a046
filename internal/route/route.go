// Package route decides where a recipient's mail goes: the send connector
// whose address space matches the recipient's domain most specifically,
// and the next hop — the queue — it waits in: one per smarthost or
// directory connector, one per recipient domain for MX delivery (as
// Exchange's queues are per next-hop domain).
package route

import (
	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
)

// Unreachable is the queue of recipients no send connector serves. They
// wait there, visible, until the config gains a connector for them or they
// expire — Exchange's Unreachable queue.
const Unreachable = "Unreachable"

// Hop is a next hop: the identity of the queue a recipient waits in.
type Hop struct {
	Key       string // queue identity: "<connector>" or "<connector>/<domain>"
	Connector *config.SendConnector
	Domain    string // for MX delivery, the recipient domain; else ""
}

// For routes one recipient with the given config.
func For(cfg *config.Config, rcpt mail.Address) Hop {
	domain := rcpt.Domain()
	sc := cfg.SendConnector(domain)
	if sc == nil {
		return Hop{Key: Unreachable}
	}
	if sc.Delivery == config.DeliveryMX {
		return Hop{Key: sc.Name + "/" + domain, Connector: sc, Domain: domain}
	}
	return Hop{Key: sc.Name, Connector: sc}
}

// Via routes a recipient through the send connector called name (in any
// case), whatever its address spaces say: for test messages sent through
// one connector on purpose. An unknown name routes to Unreachable.
func Via(cfg *config.Config, name string, rcpt mail.Address) Hop {
	if name == "" {
		return For(cfg, rcpt)
	}
	sc := cfg.SendConnectorNamed(name)
	if sc == nil {
		return Hop{Key: Unreachable}
	}
	if sc.Delivery == config.DeliveryMX {
		domain := rcpt.Domain()
		return Hop{Key: sc.Name + "/" + domain, Connector: sc, Domain: domain}
	}
	return Hop{Key: sc.Name, Connector: sc}
}

// DeliveryType names how a hop delivers, in Exchange's words.
func (h Hop) DeliveryType() string {
	if h.Connector == nil {
		return "Unreachable"
	}
	switch h.Connector.Delivery {
	case config.DeliveryMX:
		return "DnsConnectorDelivery"
	case config.DeliveryDirectory:
		return "NonSmtpGatewayDelivery"
	}
	return "SmartHostConnectorDelivery"
}

// NextHop is what the hop sends to, for people: the smarthosts, the
// domain whose MX hosts are used, or the directory.
func (h Hop) NextHop() string {
	if h.Connector == nil {
		return "(no send connector)"
	}
	switch h.Connector.Delivery {
	case config.DeliveryMX:
		return h.Domain
	case config.DeliveryDirectory:
		return h.Connector.Directory
	}
	s := ""
	for i, sh := range h.Connector.Smarthosts {
		if i > 0 {
			s += ", "
		}
		s += sh.String()
	}
	return s
}
