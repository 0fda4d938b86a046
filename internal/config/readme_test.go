package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeExamples loads every YAML block of the README, so the
// documentation cannot drift from what Sluice accepts. Certificate paths
// point at this package's test certificates.
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) < 5 {
		t.Fatalf("found %d yaml blocks in README.md; expected the reference and the seed examples", len(blocks))
	}
	for i, b := range blocks {
		src := strings.NewReplacer(
			"/etc/sluice/relay.pem", "testdata/certs/relay.pem",
			"/etc/sluice/relay.key", "testdata/certs/relay.key",
			"/etc/sluice/credential.key", "testdata/certs/credential.key",
			"/etc/sluice/admin.token", "testdata/certs/credential.key",
			"/var/lib/sluice", t.TempDir(),
		).Replace(string(b[1]))
		if _, err := Parse("", []byte(src)); err != nil {
			t.Errorf("README yaml block %d does not load:\n%v\n---\n%s", i+1, err, src)
		}
	}
}
