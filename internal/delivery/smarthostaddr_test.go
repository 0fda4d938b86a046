package delivery_test

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/delivery"
	"github.com/sluice-relay/sluice/internal/dnstest"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// smarthosts is the Fabrikam connector with the given smarthosts (YAML
// flow list items) whose retry waits 10 minutes, so that a test sees one
// attempt.
func smarthosts(list, tls string) string {
	return fmt.Sprintf(`  - name: Fabrikam
    address_spaces: [fabrikam.com]
    smarthosts: [%s]
    tls: %s
    retry: {first: 10m, max_interval: 10m}
`, list, tls)
}

// withDNS is the node setting that sends lookups to dns.
func withDNS(dns *dnstest.Server) string { return ", dns_servers: [\"" + dns.Addr() + "\"]" }

// Connecting to a smarthost's address, TLS verification still checks
// the smarthost's name (or tls.server_name): an address is in no
// certificate.
func TestSmarthostAddressVerifiesName(t *testing.T) {
	cases := []struct {
		name, certName, serverName string
		wantErr                    string // "": delivered
	}{
		{name: "certificate for the smarthost", certName: "relay.tls.test"},
		{name: "certificate for another name", certName: "mail.other.test", wantErr: "does not carry the name relay.tls.test"},
		{name: "certificate for tls.server_name", certName: "mail.other.test", serverName: "mail.other.test"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cert := certtest.New(t, tc.certName)
			up := smtptest.NewServer(t, smtptest.Options{Addr: "127.0.0.2:0", TLS: cert})
			_, port, _ := net.SplitHostPort(up.Addr())
			dns := dnstest.NewServer(t, dnstest.Zone{A: map[string][]string{"relay.tls.test": {"127.0.0.2"}}})
			tlsCfg := "{mode: verify, ca_file: " + cert.CAFile
			if tc.serverName != "" {
				tlsCfg += ", server_name: " + tc.serverName
			}
			r := start(t, withDNS(dns), smarthosts("relay.tls.test:"+port, tlsCfg+"}"))
			mi, _ := r.outcome(r.put("verify by name", "bob@fabrikam.com"))
			switch {
			case tc.wantErr == "" && len(up.Messages()) != 1:
				t.Errorf("not delivered: %+v", mi.Recipients)
			case tc.wantErr != "" && (len(mi.Recipients) == 0 || !strings.Contains(mi.Recipients[0].LastError, tc.wantErr)):
				t.Errorf("recipients %+v; want a last error with %q", mi.Recipients, tc.wantErr)
			}
		})
	}
}

// A smarthost whose name does not resolve is that smarthost failing for
// now, with a last error that names it and the DNS server asked: the
// next smarthost is tried, and with none left the mail waits.
func TestSmarthostWithoutAddress(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	_, port, _ := net.SplitHostPort(up.Addr())
	dns := dnstest.NewServer(t, dnstest.Zone{A: map[string][]string{"relay.next.test": {"127.0.0.1"}}})
	want := "451 4.4.3 DNS lookup of the address of smarthost gone.test failed: lookup gone.test on " + dns.Addr()

	r := start(t, withDNS(dns), smarthosts(fmt.Sprintf("\"gone.test:%s\", \"relay.next.test:%s\"", port, port), "{mode: none}"))
	r.waitDone(r.put("first smarthost has no address", "bob@fabrikam.com"))
	if n := len(up.Messages()); n != 1 {
		t.Fatalf("relay.next.test got %d messages, want 1; bounces %v", n, r.bounces())
	}
	failed := r.logLines("cannot use upstream host; trying the next")
	if len(failed) != 1 || !strings.Contains(failed[0], "host=gone.test:"+port) || !strings.Contains(failed[0], want) {
		t.Errorf("want one failure of gone.test:%s with %q logged:\n%s", port, want, r.logs)
	}

	r = start(t, withDNS(dns), smarthosts("\"gone.test:"+port+"\"", "{mode: none}"))
	r.put("only smarthost has no address", "bob@fabrikam.com")
	qi := r.waitQueue("Fabrikam", "the failure", func(q queue.QueueInfo) bool { return q.LastError != "" })
	if qi.Status != queue.HopRetry || !strings.HasPrefix(qi.LastError, want) {
		t.Errorf("queue %s with last error %q; want Retry after %q", qi.Status, qi.LastError, want)
	}
}

// hostHealth returns the health delivery keeps for host ("host:port"),
// or nil.
func hostHealth(d *delivery.Deliverer, host string) *delivery.HostHealth {
	hosts := d.Hosts()
	for i := range hosts {
		if hosts[i].Host == host {
			return &hosts[i]
		}
	}
	return nil
}

// Health is kept per address, within the smarthost's place: an address
// that refused is tried after the smarthost's others, and the smarthost
// itself, which took the mail, is not failing.
func TestSmarthostAddressHealth(t *testing.T) {
	bad, good, port := pair(t, smtptest.Options{Greeting: "421 4.3.2 busy"}, smtptest.Options{})
	dns := dnstest.NewServer(t, dnstest.Zone{A: map[string][]string{"relay.multi.test": {"127.0.0.2", "127.0.0.3"}}})
	// One message per connection: each goes on a session of its own,
	// which picks its addresses anew.
	r := start(t, withDNS(dns), smarthosts("relay.multi.test:"+port, "{mode: none}")+"    max_messages_per_connection: 1\n")
	for i := range 2 {
		r.waitDone(r.put(fmt.Sprint("message ", i), "bob@fabrikam.com"))
	}
	if n := len(good.Messages()); n != 2 {
		t.Fatalf("127.0.0.3 got %d messages, want 2", n)
	}
	if n := bad.Sessions(); n != 1 {
		t.Errorf("127.0.0.2 had %d connections, want 1: the second session did not try the working address first", n)
	}
	if h := hostHealth(r.d, "127.0.0.2:"+port); h == nil || h.Failures != 1 || h.Smarthost != "relay.multi.test:"+port || !strings.Contains(h.LastError, "421 4.3.2 busy") {
		t.Errorf("127.0.0.2: %+v; want one failure, the 421, as an address of smarthost relay.multi.test:%s", h, port)
	}
	if h := hostHealth(r.d, "relay.multi.test:"+port); h == nil || h.Failures != 0 || h.LastSuccess.IsZero() {
		t.Errorf("smarthost relay.multi.test:%s: %+v; want it working: one of its addresses took the mail", port, h)
	}
}

// A smarthost fails when all its addresses do; its health then says so
// under its configured name, with the last address's failure, and the
// next session goes to the connector's next smarthost first.
func TestSmarthostAllAddressesFail(t *testing.T) {
	bad2, bad3, port := pair(t, smtptest.Options{Greeting: "421 4.3.2 busy"}, smtptest.Options{Greeting: "421 4.3.2 busy"})
	good := onPort(t, "127.0.0.4", port, smtptest.Options{})
	dns := dnstest.NewServer(t, dnstest.Zone{A: map[string][]string{
		"relay.multi.test": {"127.0.0.2", "127.0.0.3"}, "backup.multi.test": {"127.0.0.4"}}})
	r := start(t, withDNS(dns), smarthosts(fmt.Sprintf("\"relay.multi.test:%s\", \"backup.multi.test:%s\"", port, port), "{mode: none}")+
		"    max_messages_per_connection: 1\n")
	for i := range 2 {
		r.waitDone(r.put(fmt.Sprint("message ", i), "bob@fabrikam.com"))
	}
	if n := len(good.Messages()); n != 2 {
		t.Fatalf("backup.multi.test got %d messages, want 2", n)
	}
	if n2, n3 := bad2.Sessions(), bad3.Sessions(); n2 != 1 || n3 != 1 {
		t.Errorf("relay.multi.test's addresses had %d and %d connections, want 1 each: both tried once, then the smarthost after the other", n2, n3)
	}
	want := fmt.Sprintf("relay.multi.test [127.0.0.3:%s] said: 421 4.3.2 busy", port)
	if h := hostHealth(r.d, "relay.multi.test:"+port); h == nil || h.Failures != 1 || h.LastError != want {
		t.Errorf("smarthost relay.multi.test:%s: %+v; want one failure, %q", port, h, want)
	}
}
