package delivery_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/dnstest"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// pair starts a server on 127.0.0.3 and another on 127.0.0.2 with the
// same port, the two addresses of one MX host, and returns them (bad on
// .2) and the port. The port is free on .3; on .2 it almost always is.
func pair(t *testing.T, bad, good smtptest.Options) (*smtptest.Server, *smtptest.Server, string) {
	t.Helper()
	good.Addr = "127.0.0.3:0"
	g := smtptest.NewServer(t, good)
	_, port, _ := net.SplitHostPort(g.Addr())
	ln, err := net.Listen("tcp", "127.0.0.2:"+port)
	if err != nil {
		t.Skipf("127.0.0.2:%s is not free (or not a loopback address here): %v", port, err)
	}
	ln.Close()
	bad.Addr = "127.0.0.2:" + port
	return smtptest.NewServer(t, bad), g, port
}

// mxConnector is an MX connector for *.test on port whose retry waits 10
// minutes, so that a test sees one attempt.
func mxConnector(port, tls string) string {
	return fmt.Sprintf(`  - name: Internet
    address_spaces: ["*.test"]
    delivery: mx
    port: %s
    tls: %s
    retry: {first: 10m, max_interval: 10m}
`, port, tls)
}

// An address of an MX host, or of a smarthost given by name
// (smtp.office365.com, an Exchange DAG's name), that takes the TCP
// connection but refuses the session does not hide the host's other
// addresses (RFC 5321 §5.1): Go's dialer, given the host's name, went on
// to the next address only when a TCP connect failed, so the mail waited
// (the whole hop in Retry) while the host's second address worked.
func TestSecondAddress(t *testing.T) {
	cert := certtest.NewWith(t, certtest.Options{RSA: true}, "multi.test", "mx.multi.test", "relay.multi.test")
	refusals := []struct {
		name string
		bad  smtptest.Options
		want string // in the failure logged for 127.0.0.2
	}{
		{"421 greeting", smtptest.Options{Greeting: "421 4.3.2 busy"}, "421 4.3.2 busy"},
		{"drop before the greeting", smtptest.Options{DropAt: "connect"}, "greeting: EOF"},
		{"TLS handshake failure", smtptest.Options{TLS: cert, TLSMaxVersion: tls.VersionTLS10}, "TLS handshake with %s failed"},
	}
	hops := []struct {
		name, host, to string
		connector      func(port string) string
	}{
		{"MX host", "mx.multi.test", "bob@multi.test", func(port string) string { return mxConnector(port, "{mode: required}") }},
		{"smarthost", "relay.multi.test", "bob@fabrikam.com", func(port string) string {
			return smarthosts("relay.multi.test:"+port, "{mode: required}")
		}},
	}
	for _, hop := range hops {
		for _, tc := range refusals {
			t.Run(hop.name+"/"+tc.name, func(t *testing.T) {
				bad, good, port := pair(t, tc.bad, smtptest.Options{TLS: cert})
				dns := dnstest.NewServer(t, dnstest.Zone{
					MX: map[string][]string{"multi.test": {"10 mx.multi.test."}},
					A:  map[string][]string{hop.host: {"127.0.0.2", "127.0.0.3"}},
				})
				r := start(t, withDNS(dns), hop.connector(port))
				if mi, ok := r.outcome(r.put("second address", hop.to)); ok {
					t.Fatalf("not delivered in the first attempt: %+v", mi.Recipients)
				}
				if n := len(good.Messages()); n != 1 {
					t.Errorf("127.0.0.3 got %d messages, want 1", n)
				}
				if n := bad.Sessions(); n != 1 {
					t.Errorf("127.0.0.2 had %d connections, want 1", n)
				}
				host := hop.host + " [127.0.0.2:" + port + "]"
				want := strings.ReplaceAll(tc.want, "%s", hop.host)
				failed := r.logLines("cannot use upstream host; trying the next")
				if len(failed) != 1 || !strings.Contains(failed[0], fmt.Sprintf("host=%q", host)) || !strings.Contains(failed[0], want) {
					t.Errorf("want one failure of %s with %q logged:\n%s", host, want, r.logs)
				}
				// Logged just after the queue recorded it.
				waitFor(t, "the delivery logged", func() bool { return len(r.logLines("message delivered")) > 0 })
				delivered := r.logLines("message delivered")
				if len(delivered) != 1 || !strings.Contains(delivered[0], fmt.Sprintf("host=\"%s [127.0.0.3:%s]\"", hop.host, port)) {
					t.Errorf("delivery log %q; want it through %s [127.0.0.3:%s]", delivered, hop.host, port)
				}
			})
		}
	}
}

// Connecting by address, TLS verification still checks the MX host's
// name: a certificate for that name is valid, one for another is not.
func TestMXAddressVerifiesHostName(t *testing.T) {
	cases := []struct {
		name, certName string
		wantErr        string // "": delivered
	}{
		{"certificate for the MX host", "mx.tls.test", ""},
		{"certificate for another name", "mail.other.test", "does not carry the name mx.tls.test"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cert := certtest.New(t, tc.certName)
			up := smtptest.NewServer(t, smtptest.Options{Addr: "127.0.0.2:0", TLS: cert})
			_, port, _ := net.SplitHostPort(up.Addr())
			dns := dnstest.NewServer(t, dnstest.Zone{
				MX: map[string][]string{"tls.test": {"10 mx.tls.test."}},
				A:  map[string][]string{"mx.tls.test": {"127.0.0.2"}},
			})
			r := start(t, ", dns_servers: [\""+dns.Addr()+"\"]", mxConnector(port, "{mode: verify, ca_file: "+cert.CAFile+"}"))
			mi, _ := r.outcome(r.put("verify by name", "bob@tls.test"))
			switch {
			case tc.wantErr == "" && len(up.Messages()) != 1:
				t.Errorf("not delivered: %+v", mi.Recipients)
			case tc.wantErr != "" && (len(mi.Recipients) == 0 || !strings.Contains(mi.Recipients[0].LastError, tc.wantErr)):
				t.Errorf("recipients %+v; want a last error with %q", mi.Recipients, tc.wantErr)
			}
		})
	}
}

// onPort starts a server on ip:port, skipping the test when that is
// taken (or ip is no loopback address here).
func onPort(t *testing.T, ip, port string, o smtptest.Options) *smtptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
	if err != nil {
		t.Skipf("%s:%s is not free (or not a loopback address here): %v", ip, port, err)
	}
	ln.Close()
	o.Addr = net.JoinHostPort(ip, port)
	return smtptest.NewServer(t, o)
}

// A host with many addresses that all refuse costs a few tries, not one
// per address (each could be a connect timeout): the next MX host, or
// the next smarthost, gets its turn within the attempt.
func TestHostAddressesCapped(t *testing.T) {
	cases := []struct {
		name, first, next, to string
		zone                  func(addrs []string) dnstest.Zone
		connector             func(port string) string
	}{
		{"MX host", "mx1.many.test", "mx2.many.test", "bob@many.test",
			func(addrs []string) dnstest.Zone {
				return dnstest.Zone{
					MX: map[string][]string{"many.test": {"10 mx1.many.test.", "20 mx2.many.test."}},
					A:  map[string][]string{"mx1.many.test": addrs, "mx2.many.test": {"127.0.0.9"}},
				}
			},
			func(port string) string { return mxConnector(port, "{mode: none}") }},
		{"smarthost", "dag.many.test", "backup.many.test", "bob@fabrikam.com",
			func(addrs []string) dnstest.Zone {
				return dnstest.Zone{A: map[string][]string{"dag.many.test": addrs, "backup.many.test": {"127.0.0.9"}}}
			},
			func(port string) string {
				return smarthosts(fmt.Sprintf("\"dag.many.test:%s\", \"backup.many.test:%s\"", port, port), "{mode: none}")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			good := smtptest.NewServer(t, smtptest.Options{Addr: "127.0.0.9:0"})
			_, port, _ := net.SplitHostPort(good.Addr())
			var busy []*smtptest.Server
			var addrs []string
			for i := 2; i <= 7; i++ {
				ip := fmt.Sprintf("127.0.0.%d", i)
				busy = append(busy, onPort(t, ip, port, smtptest.Options{Greeting: "421 4.3.2 busy"}))
				addrs = append(addrs, ip)
			}
			dns := dnstest.NewServer(t, tc.zone(addrs))
			r := start(t, withDNS(dns), tc.connector(port))
			r.waitDone(r.put("many addresses", tc.to))
			if n := len(good.Messages()); n != 1 {
				t.Fatalf("%s got %d messages, want 1; bounces %v", tc.next, n, r.bounces())
			}
			tried := 0
			for _, s := range busy {
				tried += s.Sessions()
			}
			if tried != 3 {
				t.Errorf("%d of %s's 6 addresses tried, want 3", tried, tc.first)
			}
		})
	}
}

// An MX host whose name has no address (NXDOMAIN, or a lookup failing)
// is that host failing, for now: the next host is tried, and with none
// left the mail waits, whatever the DNS said of the host's name.
func TestMXHostWithoutAddress(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	_, port, _ := net.SplitHostPort(up.Addr())
	dns := dnstest.NewServer(t, dnstest.Zone{
		MX: map[string][]string{
			"next.test": {"10 gone.next.test.", "20 mx2.next.test."},
			"none.test": {"10 gone.none.test."},
		},
		A: map[string][]string{"mx2.next.test": {"127.0.0.1"}},
	})
	r := start(t, ", dns_servers: [\""+dns.Addr()+"\"]", mxConnector(port, "{mode: none}"))
	r.waitDone(r.put("first MX host has no address", "bob@next.test"))
	if n := len(up.Messages()); n != 1 {
		t.Fatalf("mx2.next.test got %d messages, want 1; bounces %v", n, r.bounces())
	}
	id := r.put("only MX host has no address", "bob@none.test")
	var mi queue.MessageInfo
	waitFor(t, "the attempt", func() bool {
		var ok bool
		mi, ok = r.q.Message(id)
		return !ok || mi.Recipients[0].LastError != ""
	})
	if len(mi.Recipients) == 0 {
		t.Fatalf("the message left the queue; bounces %v", r.bounces())
	}
	// The DNS server named is the one asked, not the system's.
	want := "451 4.4.3 DNS lookup of the address of MX host gone.none.test failed: lookup gone.none.test on " + dns.Addr() + ": no such host"
	if rc := mi.Recipients[0]; rc.Status != queue.StatusQueued || rc.LastError != want {
		t.Errorf("bob is %s with last error %q; want queued after %q", rc.Status, rc.LastError, want)
	}
}

// The health of an MX host is kept per address: the one that refused is
// recorded as failing, and the next session tries the host's working
// address first instead of being refused again.
func TestMXAddressHealth(t *testing.T) {
	bad, good, port := pair(t, smtptest.Options{Greeting: "421 4.3.2 busy"}, smtptest.Options{})
	dns := dnstest.NewServer(t, dnstest.Zone{
		MX: map[string][]string{"multi.test": {"10 mx.multi.test."}},
		A:  map[string][]string{"mx.multi.test": {"127.0.0.2", "127.0.0.3"}},
	})
	// One message per connection: each goes on a session of its own,
	// which picks its addresses anew.
	r := start(t, ", dns_servers: [\""+dns.Addr()+"\"]", mxConnector(port, "{mode: none}")+"    max_messages_per_connection: 1\n")
	for i := range 2 {
		r.waitDone(r.put(fmt.Sprint("message ", i), "bob@multi.test"))
	}
	if n := len(good.Messages()); n != 2 {
		t.Fatalf("127.0.0.3 got %d messages, want 2", n)
	}
	if n := bad.Sessions(); n != 1 {
		t.Errorf("127.0.0.2 had %d connections, want 1: the second session did not try the working address first", n)
	}
	hosts := r.d.Hosts()
	var found bool
	for i := range hosts {
		h := &hosts[i]
		switch h.Host {
		case "127.0.0.2:" + port:
			found = true
			if h.Failures != 1 || !strings.Contains(h.LastError, "421 4.3.2 busy") {
				t.Errorf("127.0.0.2 has %d failures, the last %q; want one, the 421", h.Failures, h.LastError)
			}
		case "127.0.0.3:" + port:
			if h.Failures != 0 {
				t.Errorf("127.0.0.3 has %d failures, the last %q; want none", h.Failures, h.LastError)
			}
		}
	}
	if !found {
		t.Errorf("no health for 127.0.0.2:%s among %d hosts", port, len(hosts))
	}
}

// The protocol log's remote end point of an MX conversation is the
// address spoken to (ip:port), as in Exchange's protocol logs: a tool
// reading the CSV takes that column for an end point.
func TestMXProtocolLogRemoteIsAddress(t *testing.T) {
	_, _, port := pair(t, smtptest.Options{Greeting: "421 4.3.2 busy"}, smtptest.Options{})
	dns := dnstest.NewServer(t, dnstest.Zone{
		MX: map[string][]string{"multi.test": {"10 mx.multi.test."}},
		A:  map[string][]string{"mx.multi.test": {"127.0.0.2", "127.0.0.3"}},
	})
	r := start(t, ", dns_servers: [\""+dns.Addr()+"\"]", mxConnector(port, "{mode: none}")+"    protocol_log: true\n")
	r.waitDone(r.put("logged", "bob@multi.test"))
	want := []string{"127.0.0.2:" + port, "127.0.0.3:" + port}
	var remotes []string
	waitFor(t, "both conversations in the protocol log", func() bool {
		remotes = nil
		for _, l := range strings.Split(r.protocolLog(), "\n") {
			// time, connector, session, local, remote, event, data
			if f := strings.SplitN(l, ",", 7); len(f) == 7 && f[1] == "Internet" && f[5] == "+" {
				remotes = append(remotes, f[4])
			}
		}
		return len(remotes) >= 2
	})
	if len(remotes) != 2 || remotes[0] != want[0] || remotes[1] != want[1] {
		t.Errorf("remote end points %q; want %q", remotes, want)
	}
}

// An MX host's addresses are looked up when its turn comes, as a
// smarthost's are: the first host taking the mail, the others are never
// asked about (each session asked for all of them before).
func TestMXHostsResolvedWhenTheirTurnComes(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	_, port, _ := net.SplitHostPort(up.Addr())
	dns := dnstest.NewServer(t, dnstest.Zone{
		MX: map[string][]string{"lazy.test": {"10 mx1.lazy.test.", "20 mx2.lazy.test."}},
		A:  map[string][]string{"mx1.lazy.test": {"127.0.0.1"}, "mx2.lazy.test": {"127.0.0.1"}},
	})
	r := start(t, withDNS(dns), mxConnector(port, "{mode: none}"))
	r.waitDone(r.put("first MX host", "bob@lazy.test"))
	if n := len(up.Messages()); n != 1 {
		t.Fatalf("got %d messages, want 1", n)
	}
	if n := dns.Asked("mx2.lazy.test"); n != 0 {
		t.Errorf("mx2.lazy.test was looked up %d times; the first MX host took the mail", n)
	}
	if n := dns.Asked("mx1.lazy.test"); n == 0 {
		t.Error("mx1.lazy.test was never looked up")
	}
}
