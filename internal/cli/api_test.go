package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/admin"
	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
	"github.com/sluice-relay/sluice/internal/store/sqlite"
)

// adminAPI runs a real admin API over a real queue holding one message
// for the Drop connector (no delivery runs) and returns its address.
func adminAPI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse("", []byte(fmt.Sprintf(`node: {hostname: relay.test, data_dir: %s}
receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.0/8], permissions: [anonymous, relay]}
send_connectors:
  - {name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}
admin: {listen: "127.0.0.1:0"}
`, dir)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, "queue"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(context.Background(), queue.Options{Store: st, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	env := &mail.Envelope{ID: mail.NewID(), From: "app@contoso.com", Rcpts: []mail.Recipient{{Addr: "bob@fabrikam.com"}}}
	if err := q.Put(context.Background(), env, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	adm := admin.New(admin.Options{Queue: q}, cfg)
	if err := adm.Start(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		adm.Shutdown(context.Background())
		q.Close()
	})
	return adm.Addr().String()
}

// Mistakes an admin makes on the command line get an answer that says
// what to change, and the exit code of a usage error where it is one.
// Before: --status bogus and --queue nosuch printed "no messages match"
// and exited 0; --admin at an SMTP port or with https:// to plain HTTP
// gave net/http's words; test connect without a port exited 1.
func TestCommandLineMistakes(t *testing.T) {
	api := adminAPI(t)
	smtp := smtptest.NewServer(t, smtptest.Options{})
	cases := []struct {
		name string
		args []string
		code int
		want string // on stderr
	}{
		{"message list --status bogus", []string{"message", "list", "--admin", api, "--status", "bogus"}, ExitUsage,
			`--status "bogus": a message's status is one of Ready, Active, Retry, Suspended`},
		{"message list --queue nosuch", []string{"message", "list", "--admin", api, "--queue", "nosuch"}, ExitFailure, `there is no queue "nosuch"; sluice queue list shows the queues`},
		{"queue list at an SMTP port", []string{"queue", "list", "--admin", "http://" + smtp.Addr()}, ExitFailure,
			"what answers at http://" + smtp.Addr() + " is not Sluice's admin API (it sent \"220 smtptest ESMTP\" before any request; an SMTP port?): check --admin, or admin.listen in the config"},
		{"queue list with https:// to plain HTTP", []string{"queue", "list", "--admin", "https://" + api}, ExitFailure,
			"the admin API at https://" + api + " speaks plain HTTP, not HTTPS (admin.certificate is not set): use --admin http://" + api},
		{"test connect without a port", []string{"test", "connect", "127.0.0.1"}, ExitUsage, `"127.0.0.1" has no port: give HOST:PORT`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := run(t, "", tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d and %q", code, errs, out, tc.code, tc.want)
			}
		})
	}
	// The filters still work: case-insensitive status, a queue that exists.
	out, errs, code := run(t, "", "message", "list", "--admin", api, "--status", "ready", "--queue", "drop")
	if code != 0 || !strings.Contains(out, "bob@fabrikam.com") {
		t.Errorf("message list of the Drop queue: exit %d, %q %q", code, out, errs)
	}
}

// With the admin API off, reload says how else to do it.
func TestReloadWithAdminOff(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`node: {hostname: relay.test, data_dir: %s}
receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.0/8], permissions: [anonymous, relay]}
send_connectors:
  - {name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}
admin: {listen: "off"}
`, dir))
	_, errs, code := run(t, "", "reload", "-config", cfg)
	want := "send SIGHUP instead: kill -HUP $(cat " + filepath.Join(dir, "sluice.lock") + ")"
	if runtime.GOOS == "windows" {
		want = "Windows has no SIGHUP: restart the Sluice service to read the config again"
	}
	if code != ExitFailure || !strings.Contains(errs, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, errs, want)
	}
}
