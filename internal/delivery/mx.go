package delivery

import (
	"context"
	"errors"
	"net"
	"sort"
	"strings"

	"golang.org/x/net/idna"

	"github.com/sluice-relay/sluice/internal/reply"
)

// lookupMX returns the hosts to try for domain, in preference order
// (RFC 5321 §5.1): its MX hosts, or the domain itself when it has none.
// A null MX (RFC 7505) or a domain that does not exist is a permanent
// failure for its recipients; any other DNS failure is temporary.
func (d *Deliverer) lookupMX(ctx context.Context, domain string) ([]string, *reply.Reply, error) {
	r := d.resolver()
	// DNS knows an internationalised domain by its A-labels (RFC 5890
	// §2.3.2.1; RFC 6531 §3.2): bücher.example is xn--bcher-kva.example.
	name := domain
	if a, err := idna.Lookup.ToASCII(domain); err == nil {
		name = a
	}
	mxs, err := r.LookupMX(ctx, name)
	var dnsErr *net.DNSError
	// With records whose names are not host names, Go returns the others
	// and an error: those others are the domain's MX all the same.
	if err != nil && len(mxs) == 0 && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		return nil, nil, reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 3}, Text: "DNS lookup of the MX of " + domain + " failed: " + err.Error()}
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return nil, &reply.Reply{Code: 556, Enhanced: [3]int{5, 1, 10}, Text: domain + " does not accept mail (null MX, RFC 7505)"}, nil
	}
	if len(mxs) == 0 {
		// No MX: the domain itself is the host (RFC 5321 §5.1), if it has
		// an address at all.
		addrs, err := r.LookupHost(ctx, name)
		if err != nil || len(addrs) == 0 {
			if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
				return nil, &reply.Reply{Code: 550, Enhanced: [3]int{5, 1, 2}, Text: domain + " has no MX and no address: the domain does not exist"}, nil
			}
			return nil, nil, reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 3}, Text: "DNS lookup of " + domain + " failed: " + errString(err)}
		}
		return []string{name}, nil, nil
	}
	sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
	hosts := make([]string, 0, len(mxs))
	for _, mx := range mxs {
		// A null MX among others (RFC 7505 §3 forbids that) names no
		// host; as "" it would become ":25", this machine.
		if h := strings.TrimSuffix(mx.Host, "."); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts, nil, nil
}

// resolver uses node.dns_servers when set, else the system's.
func (d *Deliverer) resolver() *net.Resolver {
	servers := d.cfg.Load().Node.DNSServers
	if len(servers) == 0 {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var last error
			for _, s := range servers {
				c, err := (&net.Dialer{}).DialContext(ctx, network, s.String())
				if err == nil {
					return c, nil
				}
				last = err
			}
			return nil, last
		},
	}
}

func errString(err error) string {
	if err == nil {
		return "no addresses"
	}
	return err.Error()
}
