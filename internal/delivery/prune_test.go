package delivery

import (
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
)

// The health of a smarthost's address that keeps failing outlives its
// down time, so that its failures add up; an MX host's address, or one
// whose smarthost a reload removed, goes with its down time, and a
// smarthost's address that works is not kept at all.
func TestPruneKeepsFailingSmarthostAddresses(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(`node: {hostname: relay.test}
receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.0/8], permissions: [anonymous, relay]}
send_connectors:
  - {name: Exchange, address_spaces: [contoso.com], smarthosts: ["dag.contoso.com:25"]}
admin: {listen: "off"}
`))
	if err != nil {
		t.Fatal(err)
	}
	failed := time.Now()
	cases := []struct {
		name      string
		smarthost string // "" for an MX host's address
		failures  int
		after     time.Duration // since the last failure
		kept      bool
	}{
		{"failing, past its down time", "dag.contoso.com:25", 1, 20 * time.Second, true},
		{"failing, long ago", "dag.contoso.com:25", 3, failingAddrKept, false},
		{"working", "dag.contoso.com:25", 0, time.Second, false},
		{"of a smarthost removed", "old.contoso.com:25", 1, 20 * time.Second, false},
		{"of an MX host", "", 1, 20 * time.Second, false},
		{"of an MX host, down", "", 1, 10 * time.Second, true},
	}
	for _, tc := range cases {
		d := New(Options{Config: cfg})
		h := d.host("10.0.0.6:25", tc.smarthost)
		h.Failures, h.LastFailure = tc.failures, failed
		d.mu.Lock()
		d.prune(cfg, failed.Add(tc.after))
		_, kept := d.hosts["10.0.0.6:25"]
		d.mu.Unlock()
		if kept != tc.kept {
			t.Errorf("%s: kept %v, want %v", tc.name, kept, tc.kept)
		}
	}
}
