package health

import (
	"fmt"
	"os"
	"runtime"

	"github.com/sluice-relay/sluice/internal/config"
)

// secretFiles finds files holding a secret (the admin token, the
// credential key, TLS private keys) that every user of the machine may
// read: whoever reads the token drives the admin API, whoever reads the
// key decrypts every password in the config. A group may read them (keys
// are often 0640 with a group such as Debian's ssl-cert): who is in it is
// not this rule's to judge. Windows keeps ACLs, not modes, and is not
// judged.
func secretFiles(c *config.Config) []Finding {
	if runtime.GOOS == "windows" {
		return nil
	}
	type file struct{ key, path string }
	files := []file{
		{"admin.token_file", c.Admin.TokenFile},
		{"admin.key", c.Admin.Key},
		{"secrets.key_file", c.Secrets.KeyFile},
	}
	for i, rc := range c.ReceiveConnectors {
		files = append(files, file{fmt.Sprintf("receive_connectors[%d].tls.key", i), rc.TLS.Key})
	}
	for i, sc := range c.SendConnectors {
		files = append(files, file{fmt.Sprintf("send_connectors[%d].tls.client_key", i), sc.TLS.ClientKey})
	}
	var out []Finding
	seen := map[string]bool{}
	for _, f := range files {
		if f.path == "" || seen[f.path] {
			continue
		}
		seen[f.path] = true
		st, err := os.Stat(f.path)
		if err != nil || st.Mode().Perm()&0o007 == 0 {
			continue // a missing file is CERT-MISSING's or CONFIG's
		}
		out = append(out, Finding{Rule: RuleSecretFile, Severity: Warning, Subject: f.key,
			Problem: fmt.Sprintf("%s holds a secret and every user of this machine may read it (mode %04o)", f.path, st.Mode().Perm()),
			Fix:     fmt.Sprintf("chmod o-rwx %s (600 if no group needs it)", f.path)})
	}
	return out
}
