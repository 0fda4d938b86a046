package health

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/sluice-relay/sluice/internal/config"
)

// openRelays finds receive connectors that let the whole Internet, IPv4 or
// IPv6, send anywhere without AUTH: the relay right (externally-secured
// includes it) granted to ranges that together cover every address of a
// family, 0.0.0.0/0 or ::/0 or pieces adding up to them. A connector that
// listens only on loopback is reachable from this machine alone and is
// left out (the embedded default is one).
func openRelays(c *config.Config) []Finding {
	var out []Finding
	for i := range c.ReceiveConnectors {
		rc := &c.ReceiveConnectors[i]
		if !rc.Has(config.PermRelay) || loopbackOnly(rc.Bindings) {
			continue
		}
		var open []string
		if coversAll(rc.RemoteIPRanges, netip.IPv4Unspecified()) {
			open = append(open, "every IPv4 address")
		}
		if coversAll(rc.RemoteIPRanges, netip.IPv6Unspecified()) {
			open = append(open, "every IPv6 address")
		}
		if len(open) == 0 {
			continue
		}
		right := "relay"
		if slices.Contains(rc.Permissions, config.PermExternallySecured) {
			right = "externally-secured (relay, any sender, and no size or rate limits)"
		}
		out = append(out, Finding{Rule: RuleOpenRelay, Severity: Error, Subject: "receive connector " + rc.Name,
			Problem: fmt.Sprintf("grants %s without AUTH to %s (remote_ip_ranges %s): anyone who can reach %s can send mail anywhere through Sluice, and its address soon lands on block lists",
				right, strings.Join(open, " and "), ranges(rc.RemoteIPRanges), bindings(rc.Bindings)),
			Fix: "limit remote_ip_ranges to the hosts that must relay (e.g. 10.0.0.15/32 for one application server), or remove relay from permissions and have clients authenticate (auth_mechanisms, users); for mail from the Internet to your own domains, anonymous alone is enough"})
	}
	return out
}

func loopbackOnly(bs []config.Binding) bool {
	for _, b := range bs {
		if !b.Addr().IsLoopback() {
			return false
		}
	}
	return len(bs) > 0
}

// coversAll reports whether the ranges of zero's family together contain
// every address of that family.
func coversAll(rs []config.CIDR, zero netip.Addr) bool {
	var ps []netip.Prefix
	for _, r := range rs {
		if r.Addr().Is4() == zero.Is4() {
			ps = append(ps, r.Masked())
		}
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	next := zero // the lowest address not yet covered
	for _, p := range ps {
		if next.Less(p.Addr()) {
			return false // a gap
		}
		end := lastAddr(p)
		if next.Compare(end) <= 0 {
			next = end.Next()
			if !next.IsValid() {
				return true // reached the family's last address
			}
		}
	}
	return false
}

// lastAddr is the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	end, _ := netip.AddrFromSlice(a)
	return end
}

func ranges(rs []config.CIDR) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func bindings(bs []config.Binding) string {
	s := make([]string, len(bs))
	for i, b := range bs {
		s[i] = b.String()
	}
	return strings.Join(s, ", ")
}
