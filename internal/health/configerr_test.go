package health_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/secret"
)

// keyFile writes an application credential key file and returns its path
// and the key.
func keyFile(t *testing.T, passphrase string) (string, *secret.Key) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credential.key")
	if err := os.WriteFile(path, []byte(passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := secret.LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, k
}

// office365 is a config whose client secret was encrypted with enc, read
// on a node whose key file is nodeKey (seed 002).
func office365(nodeKey string, enc *secret.Key) string {
	return fmt.Sprintf(`node: {hostname: relay.contoso.com}
receive_connectors: [{name: Apps, bindings: ["0.0.0.0:25"], remote_ip_ranges: [10.0.0.0/8], permissions: [anonymous, relay]}]
admin: {listen: "off"}
secrets: {key_file: %q, key_id: %s}
send_connectors:
  - name: Office 365
    preset: microsoft365
    address_spaces: ["*"]
    auth:
      username: relay@contoso.com
      oauth2:
        tenant: contoso.onmicrosoft.com
        client_id: 11111111-2222-3333-4444-555555555555
        client_secret: %s
`, nodeKey, enc.ID(), enc.Encrypt("the client secret value"))
}

func TestConfigErrors(t *testing.T) {
	farmKey, farm := keyFile(t, "the farm's application credential key")
	otherKey, _ := keyFile(t, "a key this node made up on its own")
	cert := certtest.New(t, "relay.contoso.com")
	tlsWith := func(c, k string) string {
		return fmt.Sprintf("node: {hostname: relay.test}\nadmin: {listen: \"off\"}\nreceive_connectors:\n  - {name: Submission, bindings: [\"0.0.0.0:587\"], remote_ip_ranges: [10.0.0.0/8], auth_mechanisms: [LOGIN], tls: {mode: starttls, certificate: %q, key: %q}}\n", c, k)
	}
	cases := []struct {
		name string
		err  error
		rule string
		want string
		fix  string
	}{
		{name: "secret encrypted with another node's key", err: loadErr(t, office365(otherKey, farm)), rule: health.RuleSecretKey,
			want: "error: encrypted with key " + farm.ID(), fix: "copy the key file from the node that encrypted them"},
		{name: "the node has the farm's key", err: func() error {
			load(t, office365(farmKey, farm))
			return nil
		}(), rule: health.RuleSecretKey},
		{name: "key file missing", err: loadErr(t, office365(filepath.Join(t.TempDir(), "gone.key"), farm)), rule: health.RuleSecretKey,
			want: "error: cannot read the application credential key file"},
		{name: "certificate file missing", err: loadErr(t, tlsWith(filepath.Join(t.TempDir(), "gone.pem"), cert.KeyFile)), rule: health.RuleCertMissing,
			want: "error: gone.pem does not exist", fix: "put the PEM file at that path"},
		{name: "key does not match", err: loadErr(t, tlsWith(cert.CertFile, certtest.New(t, "x.test").KeyFile)), rule: health.RuleCertMissing,
			want: "error: does not belong to certificate"},
		{name: "certificate setting missing is CONFIG", err: loadErr(t, tlsWith("", "")), rule: health.RuleCertMissing},
		{name: "certificate setting missing", err: loadErr(t, tlsWith("", "")), rule: health.RuleConfig,
			want: "error: tls.mode starttls needs certificate and key"},
		{name: "bad CIDR", err: loadErr(t, strings.Replace(minimal, "10.0.0.0/8", "10.0.0.0/33", 1)), rule: health.RuleConfig,
			want: "error: \"10.0.0.0/33\" is not a CIDR range"},
		{name: "valid config", err: nil, rule: health.RuleConfig},
		{name: "not config.Errors", err: errors.New("cannot reach the admin API"), rule: health.RuleConfig,
			want: "error: cannot reach the admin API"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := check(t, health.Evaluate(health.Input{ConfigErr: c.err}), c.rule, c.want)
			if c.fix != "" && (len(fs) == 0 || !strings.Contains(fs[0].Fix, c.fix)) {
				t.Errorf("fix lacks %q: %+v", c.fix, fs)
			}
		})
	}
}

func TestConfigErrorSubject(t *testing.T) {
	path := writeConfig(t, strings.Replace(minimal, "10.0.0.0/8", "10.0.0.0/33", 1))
	_, err := config.Load(path)
	fs := health.Evaluate(health.Input{ConfigErr: err})
	if len(fs) != 1 || fs[0].Subject != path+":2 receive_connectors[0].remote_ip_ranges[0]" {
		t.Errorf("want the file, line and key as subject; got %+v", fs)
	}
}
