package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
	servers := d.dnsServers()
	// DNS knows an internationalised domain by its A-labels (RFC 5890
	// §2.3.2.1; RFC 6531 §3.2): bücher.example is xn--bcher-kva.example.
	name := domain
	if a, err := idna.Lookup.ToASCII(domain); err == nil {
		name = a
	}
	mxs, err := ask(ctx, servers, func(r *net.Resolver) ([]*net.MX, error) { return r.LookupMX(ctx, name) })
	// With records whose names are not host names, Go returns the others
	// and an error: those others are the domain's MX all the same.
	if err != nil && len(mxs) == 0 && !notFound(err) {
		return nil, nil, reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 3}, Text: "DNS lookup of the MX of " + domain + " failed: " + err.Error()}
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return nil, &reply.Reply{Code: 556, Enhanced: [3]int{5, 1, 10}, Text: domain + " does not accept mail (null MX, RFC 7505)"}, nil
	}
	if len(mxs) == 0 {
		// No MX: the domain itself is the host (RFC 5321 §5.1), if it has
		// an address at all. A and AAAA are asked apart: LookupHost asks
		// both at once and reports the error of the answer that came
		// last, so an empty AAAA after an A that failed for now read as
		// "no such host", and the mail bounced.
		var found bool
		var temp error
		for _, network := range []string{"ip4", "ip6"} {
			addrs, err := ask(ctx, servers, func(r *net.Resolver) ([]netip.Addr, error) { return r.LookupNetIP(ctx, network, name) })
			switch {
			case len(addrs) > 0:
				found = true
			case err != nil && !notFound(err):
				temp = err
			}
		}
		switch {
		case found:
			return []string{name}, nil, nil
		case temp != nil:
			return nil, nil, reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 3}, Text: "DNS lookup of " + domain + " failed: " + temp.Error()}
		}
		return nil, &reply.Reply{Code: 550, Enhanced: [3]int{5, 1, 2}, Text: domain + " has no MX and no address: the domain does not exist"}, nil
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

// notFound reports whether err is DNS's answer that the name, or a
// record of the type asked, does not exist: final, unlike a failure.
func notFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && (dnsErr.IsNotFound || noData(dnsErr))
}

// dnsServer is one of node.dns_servers with a resolver that asks it
// alone, or the system's resolver (name "").
type dnsServer struct {
	name string
	r    *net.Resolver
}

// dnsServers are the servers to ask in turn: each of node.dns_servers
// on its own, so that one that fails sends the query to the next (a
// resolver given all of them dialled the first for every try), else the
// system's, which has its own list.
func (d *Deliverer) dnsServers() []dnsServer {
	servers := d.cfg.Load().Node.DNSServers
	if len(servers) == 0 {
		return []dnsServer{{r: net.DefaultResolver}}
	}
	out := make([]dnsServer, len(servers))
	for i, s := range servers {
		addr := s.String()
		out[i] = dnsServer{name: addr, r: &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}}
	}
	return out
}

// ask runs q with each server in turn until one gives an answer, records
// or none (a name not found is an answer); the last temporary failure
// otherwise. An error names the configured server rather than the
// system's, which Go's would (the dialer ignores the address it is
// given).
func ask[T any](ctx context.Context, servers []dnsServer, q func(*net.Resolver) ([]T, error)) ([]T, error) {
	var last error
	for _, s := range servers {
		v, err := q(s.r)
		var dnsErr *net.DNSError
		if s.name != "" && errors.As(err, &dnsErr) {
			e := *dnsErr
			e.Server = s.name
			err = &e
		}
		if err == nil || len(v) > 0 || notFound(err) {
			return v, err
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// maxAddrsPerHost caps the addresses of one MX host or smarthost tried in
// one attempt, as Postfix's smtp_mx_address_limit caps those of the whole
// attempt: a host with twenty addresses that all time out would otherwise
// hold the attempt for twenty connect timeouts before the next host is
// tried.
const maxAddrsPerHost = 3

// addresses resolves the name of t (an MX host or a smarthost, kind
// says which, on the port of t.addr) into a target per address: those
// that failed a moment ago after the host's others (and, past the cap,
// out of this attempt). A host without an address for now is that host
// failing, never the domain nor the connector: t with the error, so
// that the next host is tried.
func (d *Deliverer) addresses(ctx context.Context, servers []dnsServer, t target, kind string) []target {
	t.resolve = false
	addrs, err := hostAddrs(ctx, servers, t.name)
	if err != nil {
		t.err = reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 3},
			Text: fmt.Sprintf("DNS lookup of the address of %s %s failed: %v", kind, t.name, err)}
		return []target{t}
	}
	_, port, _ := net.SplitHostPort(t.addr)
	hostPorts := make([]string, len(addrs))
	for i, a := range addrs {
		hostPorts[i] = net.JoinHostPort(a.String(), port)
	}
	out := make([]target, 0, maxAddrsPerHost)
	for _, a := range d.order(hostPorts)[:min(len(hostPorts), maxAddrsPerHost)] {
		t.addr = a
		out = append(out, t)
	}
	return out
}

// hostAddrs resolves a host to the addresses to try, asking the same
// servers as the MX lookup. Go's dialer, given the name, goes on to the
// next address only when a TCP connect fails, so an address that
// answers 421 or drops the connection hid the host's others; RFC 5321
// §5.1 asks the client to try them.
func hostAddrs(ctx context.Context, servers []dnsServer, host string) ([]netip.Addr, error) {
	addrs, err := ask(ctx, servers, func(r *net.Resolver) ([]netip.Addr, error) { return r.LookupNetIP(ctx, "ip", host) })
	if len(addrs) == 0 {
		if err == nil {
			err = errors.New("no address")
		}
		return nil, err
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap() // LookupNetIP gives IPv4 in its 16-octet form
	}
	return interleave(addrs), nil
}

// interleave alternates the address families, starting with that of the
// first address, keeping the order within each: Go's resolver sorts by
// RFC 6724 (an unreachable family last), and RFC 8305 §4 interleaves so
// that a family whose path is broken costs one connect timeout, not one
// per address up to maxAddrsPerHost.
func interleave(addrs []netip.Addr) []netip.Addr {
	var first, other []netip.Addr
	for _, a := range addrs {
		if a.Is4() == addrs[0].Is4() {
			first = append(first, a)
		} else {
			other = append(other, a)
		}
	}
	out := make([]netip.Addr, 0, len(addrs))
	for i := 0; i < len(first) || i < len(other); i++ {
		if i < len(first) {
			out = append(out, first[i])
		}
		if i < len(other) {
			out = append(out, other[i])
		}
	}
	return out
}
