package delivery_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/delivery"
	"github.com/sluice-relay/sluice/internal/dnstest"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// Sluice runs for months, and delivery by MX meets a new next hop (the
// recipient's domain) and new upstream hosts (its MX hosts) every day.
// What delivery keeps about them must go once their mail has gone, or it
// grows with every domain ever written to.
func TestForgetsHopsAndHostsWhoseMailHasGone(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
	const domains = 12
	zone := dnstest.Zone{MX: map[string][]string{}, A: map[string][]string{}}
	for i := range domains {
		zone.MX[fmt.Sprintf("d%d.test", i)] = []string{fmt.Sprintf("10 mx.d%d.test.", i)}
		zone.A[fmt.Sprintf("mx.d%d.test", i)] = []string{"127.0.0.1"}
	}
	dns := dnstest.NewServer(t, zone)
	r := start(t, ", dns_servers: [\""+dns.Addr()+"\"]", fmt.Sprintf(`  - name: Internet
    address_spaces: ["*.test"]
    delivery: mx
    port: %s
    tls: {mode: none}
    rate_limit: 6000/m
`, port))
	for i := range domains {
		r.waitDone(r.put("via MX", fmt.Sprintf("bob@d%d.test", i)))
	}
	waitFor(t, "delivery to forget the hops and hosts", func() bool {
		r.q.Kick() // the dispatcher looks again, as it does at least once a minute
		hops, limiters, hosts, _ := delivery.Remembered(r.d)
		return hops == 0 && limiters == 0 && hosts == 0
	})
}

// A send connector removed (or no longer using XOAUTH2) in a reload
// takes its token source with it.
func TestForgetsTokenSourceOfRemovedConnector(t *testing.T) {
	_, _, addr, oauth := xoauth2Upstream(t, "")
	r := start(t, "", smarthost("Fabrikam", addr, oauth))
	r.waitDone(r.put("oauth", "bob@fabrikam.com"))
	if _, _, _, tokens := delivery.Remembered(r.d); tokens != 1 {
		t.Fatalf("%d token sources after an XOAUTH2 delivery; want 1", tokens)
	}

	r.d.Apply(relayConfig(t, r.dir, "", smarthost("Fabrikam", addr, "    tls: {mode: none}\n")))
	waitFor(t, "delivery to forget the token source", func() bool {
		r.q.Kick()
		_, _, _, tokens := delivery.Remembered(r.d)
		return tokens == 0
	})
}
