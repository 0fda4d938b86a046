package health_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/health"
)

func TestOpenRelay(t *testing.T) {
	cases := []struct {
		name        string
		bindings    string
		ranges      string
		permissions string
		want        string // "" for no finding
	}{
		{"anonymous relay to 0.0.0.0/0 (seed 004 done wrong)", `["0.0.0.0:25"]`, "[0.0.0.0/0]", "[anonymous, relay]", "error: grants relay without AUTH to every IPv4 address"},
		{"relay to ::/0", `["[::]:25"]`, `["::/0"]`, "[relay]", "error: to every IPv6 address"},
		{"externally-secured to everyone", `["0.0.0.0:25"]`, `[0.0.0.0/0, "::/0"]`, "[externally-secured]", "error: grants externally-secured (relay, any sender, and no size or rate limits) without AUTH to every IPv4 address and every IPv6 address"},
		{"two halves make the whole", `["0.0.0.0:25"]`, "[0.0.0.0/1, 128.0.0.0/1]", "[anonymous, relay]", "error: every IPv4 address"},
		{"overlapping pieces make the whole", `["0.0.0.0:25"]`, "[0.0.0.0/2, 0.0.0.0/1, 128.0.0.0/2, 192.0.0.0/2]", "[relay]", "error: every IPv4 address"},
		{"one application server", `["0.0.0.0:25"]`, "[10.0.0.15]", "[anonymous, relay]", ""},
		{"half the Internet is not all of it", `["0.0.0.0:25"]`, "[0.0.0.0/1, 128.0.0.0/2]", "[relay]", ""},
		{"everyone may send to accepted domains only", `["0.0.0.0:25"]`, `[0.0.0.0/0, "::/0"]`, "[anonymous]", ""},
		{"loopback only", `["127.0.0.1:25"]`, "[0.0.0.0/0]", "[anonymous, relay]", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := load(t, fmt.Sprintf(`node: {hostname: relay.test}
admin: {listen: "off"}
receive_connectors:
  - {name: Anonymous relay, bindings: %s, remote_ip_ranges: %s, permissions: %s}
`, c.bindings, c.ranges, c.permissions))
			fs := check(t, health.Evaluate(health.Input{Config: cfg}), health.RuleOpenRelay, c.want)
			if c.want != "" && (len(fs) != 1 || fs[0].Subject != "receive connector Anonymous relay" || !strings.Contains(fs[0].Fix, "limit remote_ip_ranges")) {
				t.Errorf("want one finding about the connector with a fix; got %+v", fs)
			}
		})
	}
}

// The embedded default relays for everyone on loopback: healthy.
func TestDefaultConfigIsHealthy(t *testing.T) {
	cfg, err := config.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	if fs := health.Evaluate(health.Input{Config: cfg}); len(fs) != 0 {
		t.Errorf("the embedded default has findings: %+v", fs)
	}
}
