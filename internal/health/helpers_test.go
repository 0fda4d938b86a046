package health_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/health"
)

// dropConnector is added to configs that have no send connector.
const dropConnector = `
send_connectors: [{name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}]
`

// minimal is a config with nothing a rule could object to.
const minimal = `node: {hostname: relay.test}
receive_connectors: [{name: Apps, bindings: ["0.0.0.0:25"], remote_ip_ranges: [10.0.0.0/8], permissions: [anonymous, relay]}]
admin: {listen: "off"}
`

// writeConfig writes yaml (plus a drop send connector when it has none)
// as sluice.yaml in a temporary directory, which is also its data_dir
// unless it names one.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	if !strings.Contains(yaml, "send_connectors:") {
		yaml += dropConnector
	}
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// load loads a config that must be valid.
func load(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Load(writeConfig(t, yaml))
	if err != nil {
		t.Fatalf("config does not load:\n%v", err)
	}
	return cfg
}

// loadErr loads a config that must fail, returning its error.
func loadErr(t *testing.T, yaml string) error {
	t.Helper()
	_, err := config.Load(writeConfig(t, yaml))
	if err == nil {
		t.Fatal("the config loaded")
	}
	return err
}

// only keeps the findings of one rule.
func only(fs []health.Finding, rule string) []health.Finding {
	var out []health.Finding
	for _, f := range fs {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

// check compares the findings of rule with want: "" for none, else
// "severity: text the problem contains". Every finding must have a
// subject, a problem and a fix.
func check(t *testing.T, fs []health.Finding, rule, want string) []health.Finding {
	t.Helper()
	for _, f := range fs {
		if f.Subject == "" || f.Problem == "" || f.Fix == "" {
			t.Errorf("incomplete finding %+v", f)
		}
	}
	got := only(fs, rule)
	if want == "" {
		if len(got) > 0 {
			t.Errorf("unexpected %s finding(s): %+v", rule, got)
		}
		return nil
	}
	sev, text, _ := strings.Cut(want, ": ")
	for _, f := range got {
		if string(f.Severity) == sev && strings.Contains(f.Problem, text) {
			return got
		}
	}
	t.Errorf("no %s %s finding mentioning %q; got %+v", sev, rule, text, fs)
	return got
}
