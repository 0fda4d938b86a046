package delivery_test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-relay/sluice/internal/dnstest"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// blackhole makes [::1]:port an address whose connects hang, as to a
// host whose IPv6 path is routed but drops packets: a listener with an
// accept queue of one that never accepts, filled by one connection; the
// kernel then drops further SYNs. Linux only (the drop is its
// behaviour; listen's backlog is not Go's to set).
func blackhole(t *testing.T, port int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skipf("no IPv6 socket here: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet6{Port: port, Addr: [16]byte{15: 1}}); err != nil {
		t.Skipf("[::1]:%d cannot be bound (no IPv6 loopback here, or the port is taken): %v", port, err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", net.JoinHostPort("::1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

// A smarthost name whose IPv6 address does not answer (its path broken)
// costs a quarter of a second, not connect_timeout, before its IPv4
// address takes the mail: Go's dialer, given the name, raced the two
// after 300 ms, and with each address a target of its own (for failover
// after a refused session) that was lost. The slow address is no
// failure: it keeps its health, and its turn comes after the host's
// others with the whole connect_timeout.
func TestSlowAddressFallsBackToTheOtherFamily(t *testing.T) {
	good := smtptest.NewServer(t, smtptest.Options{Addr: "127.0.0.1:0"})
	_, p, _ := net.SplitHostPort(good.Addr())
	port, _ := strconv.Atoi(p)
	blackhole(t, port)
	dns := dnstest.NewServer(t, dnstest.Zone{A: map[string][]string{"relay.dual.test": {"::1", "127.0.0.1"}}})
	r := start(t, withDNS(dns), fmt.Sprintf(`  - name: Fabrikam
    address_spaces: [fabrikam.com]
    smarthosts: ["relay.dual.test:%s"]
    tls: {mode: none}
    connect_timeout: 10m
    retry: {first: 10m, max_interval: 10m}
`, p))
	if mi, ok := r.outcome(r.put("dual stack", "bob@fabrikam.com")); ok {
		t.Fatalf("not delivered: %+v", mi.Recipients)
	}
	if n := len(good.Messages()); n != 1 {
		t.Errorf("127.0.0.1 got %d messages, want 1", n)
	}
	slow := r.logLines("upstream address slow to connect; trying the host's other addresses first")
	if len(slow) != 1 || !strings.Contains(slow[0], fmt.Sprintf("relay.dual.test [[::1]:%s]", p)) {
		t.Errorf("want one line for [::1] slow to connect:\n%s", r.logs)
	}
	hosts := r.d.Hosts()
	for i := range hosts {
		if h := &hosts[i]; h.Failures != 0 {
			t.Errorf("host %s has %d failures (%s); a slow connect is none", h.Host, h.Failures, h.LastError)
		}
	}
}
