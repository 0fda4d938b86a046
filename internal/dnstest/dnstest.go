// Package dnstest runs a small DNS server on loopback for tests of MX
// delivery: it answers MX, A and AAAA queries from a table, NXDOMAIN for
// names it does not know, and SERVFAIL where told to. Sluice points its
// resolver at it with node.dns_servers.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Zone is what the server knows: per name (lower case, no trailing dot),
// its MX records ("10 mx1.example.com"), addresses, or a failure.
type Zone struct {
	MX       map[string][]string // name → "pref host"
	A        map[string][]string // name → IPv4/IPv6 addresses
	ServFail map[string]bool     // name → answer SERVFAIL
	// ServFailA: name → SERVFAIL to A queries only; AAAA is answered
	// (with no records), as a server half broken.
	ServFailA map[string]bool
	// AAAADelay holds every AAAA answer back this long: which of a
	// name's A and AAAA answers comes last is up to the network.
	AAAADelay time.Duration
}

// Server is a running DNS server.
type Server struct {
	addr  string
	mu    sync.Mutex
	zone  Zone
	udp   *dns.Server
	asked map[string]int // queries per name, for tests of what is looked up
}

// NewServer starts a server on 127.0.0.1 (UDP and TCP on the same port).
func NewServer(t testing.TB, z Zone) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{addr: pc.LocalAddr().String(), zone: z}
	s.udp = &dns.Server{PacketConn: pc, Handler: s}
	started := make(chan struct{})
	s.udp.NotifyStartedFunc = func() { close(started) }
	go s.udp.ActivateAndServe()
	<-started
	t.Cleanup(func() { s.udp.Shutdown() })
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return s.addr }

// Set replaces the zone.
func (s *Server) Set(z Zone) {
	s.mu.Lock()
	s.zone = z
	s.mu.Unlock()
}

// Asked reports how many queries (of any type) named name.
func (s *Server) Asked(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[strings.ToLower(name)]
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.mu.Lock()
	z := s.zone
	for _, q := range req.Question {
		if s.asked == nil {
			s.asked = map[string]int{}
		}
		s.asked[strings.ToLower(strings.TrimSuffix(q.Name, "."))]++
	}
	s.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	if z.ServFail[name] {
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	}
	if q.Qtype == dns.TypeAAAA && z.AAAADelay > 0 {
		time.Sleep(z.AAAADelay)
	}
	if z.ServFailA[name] && q.Qtype == dns.TypeA {
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	}
	known := z.MX[name] != nil || z.A[name] != nil || z.ServFailA[name]
	if !known {
		m.Rcode = dns.RcodeNameError
		w.WriteMsg(m)
		return
	}
	switch q.Qtype {
	case dns.TypeMX:
		for _, mx := range z.MX[name] {
			if rr, err := dns.NewRR(q.Name + " 60 IN MX " + dns.Fqdn(mx)); err == nil {
				m.Answer = append(m.Answer, rr)
			}
		}
	case dns.TypeA, dns.TypeAAAA:
		for _, a := range z.A[name] {
			ip := net.ParseIP(a)
			if ip == nil || (ip.To4() != nil) != (q.Qtype == dns.TypeA) {
				continue
			}
			typ := "A"
			if q.Qtype == dns.TypeAAAA {
				typ = "AAAA"
			}
			if rr, err := dns.NewRR(q.Name + " 60 IN " + typ + " " + a); err == nil {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	w.WriteMsg(m)
}
