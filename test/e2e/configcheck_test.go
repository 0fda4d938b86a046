package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
)

// problem is one line `sluice config check` must print: file:line: key: ...
type problem struct {
	line int
	key  string
	msg  string // part of the message
}

// TestConfigCheck runs `sluice config check` on broken files: each problem
// is printed as file:line: key: message and the exit status is 1; all of a
// file's problems are listed, not just the first; a good file exits 0.
func TestConfigCheck(t *testing.T) {
	t.Parallel()
	good := certtest.New(t, "localhost")
	other := certtest.New(t, "localhost")
	missing := filepath.Join(t.TempDir(), "missing.pem")

	// Line numbers below count from 1 at "receive_connectors:".
	cases := []struct {
		name string
		yaml string
		want []problem // empty: the file is good
	}{
		{name: "good", yaml: fmt.Sprintf(`receive_connectors:
  - name: Default
    bindings: [127.0.0.1:2525]
    remote_ip_ranges: [10.0.0.0/8, 192.168.1.10]
    tls: {mode: starttls, certificate: %s, key: %s}
    permissions: [anonymous]
`, good.CertFile, good.KeyFile)},
		{name: "unknown key", yaml: `receive_connectors:
  - name: Default
    bindings: [127.0.0.1:2525]
    remote_ip_ranges: [10.0.0.0/8]
    permissions: [anonymous]
    permisions: [relay]
`, want: []problem{{6, "receive_connectors[0].permisions", `unknown key "permisions"; did you mean "permissions"?`}}},
		{name: "bad CIDR", yaml: `receive_connectors:
  - name: Default
    bindings: [127.0.0.1:2525]
    remote_ip_ranges: [10.0.0.0/8, 10.1.0.0/33]
    permissions: [anonymous]
`, want: []problem{{4, "receive_connectors[0].remote_ip_ranges[1]", `"10.1.0.0/33" is not a CIDR range`}}},
		{name: "missing certificate", yaml: fmt.Sprintf(`receive_connectors:
  - name: Default
    bindings: [127.0.0.1:2525]
    remote_ip_ranges: [10.0.0.0/8]
    permissions: [anonymous]
    tls:
      mode: starttls
      certificate: %s
      key: %s
`, missing, good.KeyFile), want: []problem{{8, "receive_connectors[0].tls.certificate", missing + " does not exist"}}},
		{name: "key does not match certificate", yaml: fmt.Sprintf(`receive_connectors:
  - name: Default
    bindings: [127.0.0.1:2525]
    remote_ip_ranges: [10.0.0.0/8]
    permissions: [anonymous]
    tls:
      mode: implicit
      certificate: %s
      key: %s
`, good.CertFile, other.KeyFile), want: []problem{{8, "receive_connectors[0].tls.certificate", "key " + other.KeyFile + " does not belong to certificate " + good.CertFile}}},
		{name: "all four at once", yaml: fmt.Sprintf(`receive_connectors:
  - name: Default
    bindings: [127.0.0.1:2525]
    remote_ip_ranges: [10.0.0.0/8, 10.1.0.0/33]
    permissions: [anonymous]
    permisions: [relay]
  - name: Submission
    bindings: [127.0.0.1:587]
    remote_ip_ranges: [0.0.0.0/0]
    auth_mechanisms: [LOGIN]
    tls: {mode: starttls, certificate: %s, key: %s}
  - name: Submission 465
    bindings: [127.0.0.1:465]
    remote_ip_ranges: [0.0.0.0/0]
    auth_mechanisms: [LOGIN]
    tls:
      mode: implicit
      certificate: %s
      key: %s
`, missing, good.KeyFile, good.CertFile, other.KeyFile), want: []problem{
			{4, "receive_connectors[0].remote_ip_ranges[1]", `"10.1.0.0/33" is not a CIDR range`},
			{6, "receive_connectors[0].permisions", `unknown key "permisions"`},
			{11, "receive_connectors[1].tls.certificate", missing + " does not exist"},
			{18, "receive_connectors[2].tls.certificate", "key " + other.KeyFile + " does not belong to certificate " + good.CertFile},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sluice.yaml")
			// A send connector at the end, so line numbers stay.
			text := tc.yaml + "send_connectors:\n  - {name: Drop, address_spaces: [\"*\"], delivery: directory, directory: drop}\n"
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			r := runClient(t, nil, sluiceBin, "config", "check", path)
			if len(tc.want) == 0 {
				r.wantExit(t, true)
				r.want(t, path+": OK")
				return
			}
			if r.exit != 1 {
				t.Errorf("%s exited with status %d, want 1; output:\n%s", r.command(), r.exit, r.out)
			}
			lines := strings.Split(strings.TrimSpace(r.out), "\n")
			problems := lines[:len(lines)-1]
			for _, p := range tc.want {
				re := regexp.MustCompile("^" + regexp.QuoteMeta(fmt.Sprintf("%s:%d: %s: ", path, p.line, p.key)) + ".*" + regexp.QuoteMeta(p.msg))
				found := false
				for _, l := range problems {
					found = found || re.MatchString(l)
				}
				if !found {
					t.Errorf("output lacks a line %s:%d: %s: ...%s...; output:\n%s", path, p.line, p.key, p.msg, r.out)
				}
			}
			if len(problems) != len(tc.want) {
				t.Errorf("%d problem lines, want %d; output:\n%s", len(problems), len(tc.want), r.out)
			}
			if want := fmt.Sprintf("%s: %d problem(s)", path, len(tc.want)); !strings.HasPrefix(lines[len(lines)-1], want) {
				t.Errorf("last line %q, want it to start with %q", lines[len(lines)-1], want)
			}
		})
	}
}
