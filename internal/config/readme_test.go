package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// readmeBlocks returns the README's YAML blocks, with certificate paths
// pointing at this package's test certificates.
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) < 5 {
		t.Fatalf("found %d yaml blocks in README.md; expected the reference and the seed examples", len(blocks))
	}
	var out []string
	for _, b := range blocks {
		out = append(out, strings.NewReplacer(
			"/etc/sluice/relay.pem", "testdata/certs/relay.pem",
			"/etc/sluice/relay.key", "testdata/certs/relay.key",
			"/etc/sluice/credential.key", "testdata/certs/credential.key",
			"/etc/sluice/admin.token", "testdata/certs/credential.key",
			"/var/lib/sluice", t.TempDir(),
		).Replace(string(b[1])))
	}
	return out
}

// TestReadmeExamples loads every YAML block of the README, so the
// documentation cannot drift from what Sluice accepts.
func TestReadmeExamples(t *testing.T) {
	for i, src := range readmeBlocks(t) {
		if _, err := Parse("", []byte(src)); err != nil {
			t.Errorf("README yaml block %d does not load:\n%v\n---\n%s", i+1, err, src)
		}
	}
}

// TestReadmeDefaults: the reference and the send connector example write
// out the defaults ("Exchange's defaults", "default 25", ...); they must
// be the values Sluice uses when the keys are left out.
func TestReadmeDefaults(t *testing.T) {
	blocks := readmeBlocks(t)
	load := func(src string) *Config {
		t.Helper()
		cfg, err := Parse("", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ref := load(blocks[0])
	if got := ref.ReceiveConnectors[0].Limits; got != defaultLimits {
		t.Errorf("README reference limits %+v, but the defaults are %+v", got, defaultLimits)
	}
	bare := load(`receive_connectors: [{name: A, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
send_connectors: [{name: Exchange, address_spaces: ["*"], smarthosts: [exch1.contoso.com]}]
`)
	if ref.Queue != bare.Queue {
		t.Errorf("README reference queue %+v, but the default is %+v", ref.Queue, bare.Queue)
	}
	for _, b := range blocks {
		if strings.Contains(b, "queue_backlog:") {
			ops := load(b)
			if ops.Health != bare.Health || ops.Logs.Tracking.Retention != bare.Logs.Tracking.Retention || ops.Logs.ProtocolRetention != bare.Logs.ProtocolRetention {
				t.Errorf("README shows health %+v and logs %+v, but the defaults are %+v and %+v", ops.Health, ops.Logs, bare.Health, bare.Logs)
			}
		}
	}
	var doc *SendConnector
	for i, b := range blocks {
		if strings.Contains(b, "max_messages_per_connection:") {
			doc = &load(blocks[i]).SendConnectors[0]
			break
		}
	}
	if doc == nil {
		t.Fatal("no README block shows a send connector's max_messages_per_connection")
	}
	def := bare.SendConnectors[0]
	for _, c := range []struct {
		key       string
		doc, want any
	}{
		{"port", doc.Port, def.Port},
		{"max_connections", doc.MaxConnections, def.MaxConnections},
		{"max_messages_per_connection", doc.MaxMessagesPerConnection, def.MaxMessagesPerConnection},
		{"connect_timeout", doc.ConnectTimeout, def.ConnectTimeout},
		{"retry", doc.Retry, def.Retry},
		{"tls.min_version", doc.TLS.MinVersion, def.TLS.MinVersion},
	} {
		if c.doc != c.want {
			t.Errorf("README's send connector shows %s %v, but the default is %v", c.key, c.doc, c.want)
		}
	}
}
