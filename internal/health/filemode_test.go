package health_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/health"
)

// A file holding the admin token or a private key that every user may
// read is named, with the chmod that fixes it; at 0640 (a group, as
// Debian's ssl-cert) and 0600 nothing is said.
func TestSecretFileReadableByOthers(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows keeps ACLs, not modes: the rule does not judge them")
	}
	c := certtest.New(t, "relay.test")
	token := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(token, []byte("3f1c0f6e2b8a4d55b2f0c1d9e8a7b6c5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(c.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := load(t, strings.Replace(receiveTLS(c, "relay.test"), `admin: {listen: "off"}`,
		fmt.Sprintf("admin: {listen: 127.0.0.1:8025, token_file: %q}", token), 1))
	fs := check(t, health.Evaluate(health.Input{Config: cfg}), health.RuleSecretFile, "warning: "+token+" holds a secret and every user of this machine may read it (mode 0644)")
	if len(fs) != 2 || fs[0].Subject != "admin.token_file" || fs[1].Subject != "receive_connectors[0].tls.key" || fs[0].Fix != "chmod o-rwx "+token+" (600 if no group needs it)" {
		t.Errorf("findings %+v; want the token file and the TLS key, each with its chmod", fs)
	}
	for _, mode := range []os.FileMode{0o640, 0o600} {
		for _, f := range []string{token, c.KeyFile} {
			if err := os.Chmod(f, mode); err != nil {
				t.Fatal(err)
			}
		}
		check(t, health.Evaluate(health.Input{Config: cfg}), health.RuleSecretFile, "")
	}
}
