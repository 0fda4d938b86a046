package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/admin"
	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/delivery"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
	"github.com/sluice-relay/sluice/internal/store/sqlite"
	"github.com/sluice-relay/sluice/internal/testport"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// startSluice runs what serve runs for the admin API, from the config
// file at path: a real queue, delivery, the tracking log when the config
// keeps one, and the admin API.
func startSluice(t *testing.T, path string) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(cfg.Node.DataDir, "queue"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := queue.Options{Store: st, Config: cfg}
	var tl *tracking.Log
	if cfg.Logs.Tracking.On() {
		if tl, err = tracking.Open(filepath.Join(cfg.Node.DataDir, "tracking"), 0, nil); err != nil {
			t.Fatal(err)
		}
		o.Tracking = tl
	}
	q, err := queue.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { delivery.New(delivery.Options{Queue: q, Config: cfg}).Run(ctx); close(done) }()
	ao := admin.Options{Queue: q}
	if tl != nil {
		ao.FlushTracking = tl.Flush
	}
	adm := admin.New(ao, cfg)
	if err := adm.Start(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		adm.Shutdown(context.Background())
		cancel()
		<-done
		q.Close()
		tl.Close()
	})
}

// With message tracking off, test send follows the queue: a message
// that left it is reported as such, its outcome unknown, and one still
// queued with its last error. Before, it followed the empty tracking
// log and said "still not delivered after 5s; it stays queued" of a
// message already delivered.
func TestTestSendTrackingOff(t *testing.T) {
	t.Setenv("SLUICE_ADMIN", "")
	t.Setenv("SLUICE_ADMIN_TOKEN", "")
	for _, tracking := range []bool{true, false} {
		t.Run(fmt.Sprintf("tracking %v", tracking), func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`node: {hostname: relay.test, data_dir: %s}
receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:%d"], remote_ip_ranges: [127.0.0.0/8], permissions: [anonymous, relay]}
send_connectors:
  - {name: Fabrikam, address_spaces: [fabrikam.com], delivery: smarthost, smarthosts: ["127.0.0.1:%d"], tls: {mode: none}, connect_timeout: 2s}
  - {name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}
admin: {listen: "127.0.0.1:%d"}
logs: {tracking: {enabled: %v}}
`, dir, testport.Free(t), testport.Free(t), testport.Free(t), tracking))
			startSluice(t, path)

			out, errs, code := run(t, "", "test", "send", "-config", path, "--from", "admin@contoso.com", "--to", "it@contoso.com", "--wait", "20s")
			switch {
			case tracking && (code != 0 || !strings.Contains(out, "DELIVERED to it@contoso.com")):
				t.Errorf("test send to the drop directory, tracking on = %d\n%s%s", code, out, errs)
			case !tracking && (code != ExitFailure || strings.Contains(out, "not delivered") || !strings.Contains(out, "left the queue") ||
				!strings.Contains(out, "whether it was delivered or bounced is not known: message tracking is off")):
				t.Errorf("test send to the drop directory, tracking off = %d; want exit 1, the message left the queue, the outcome not known\n%s%s", code, out, errs)
			}

			out, errs, code = run(t, "", "test", "send", "-config", path, "--from", "admin@contoso.com", "--to", "bob@fabrikam.com", "--wait", "3s")
			want := "connection refused"
			if !tracking {
				want = "last error for bob@fabrikam.com: "
			}
			if code != ExitFailure || !strings.Contains(out, "still") || !strings.Contains(out, want) || strings.Contains(out, "left the queue") {
				t.Errorf("test send to a dead smarthost, tracking %v = %d; want exit 1, still queued and %q\n%s%s", tracking, code, want, out, errs)
			}
		})
	}
}

// test send follows its own message: the notice a refused recipient
// brings about is found with it in the tracking log, and its delivery
// to the sender is not the test message's. Before, the notice's SEND
// counted as a second recipient delivered.
func TestTestSendIgnoresTheNotice(t *testing.T) {
	t.Setenv("SLUICE_ADMIN", "")
	t.Setenv("SLUICE_ADMIN_TOKEN", "")
	up := smtptest.NewServer(t, smtptest.Options{Replies: map[string]string{
		"gone@fabrikam.com": "550 5.1.1 User unknown",
		"slow@fabrikam.com": "451 4.2.0 try later",
	}})
	dir := t.TempDir()
	path := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`node: {hostname: relay.test, data_dir: %s}
receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:%d"], remote_ip_ranges: [127.0.0.0/8], permissions: [anonymous, relay]}
send_connectors:
  - {name: Fabrikam, address_spaces: [fabrikam.com], delivery: smarthost, smarthosts: ["%s"], tls: {mode: none}}
  - {name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}
admin: {listen: "127.0.0.1:%d"}
`, dir, testport.Free(t), up.Addr(), testport.Free(t)))
	startSluice(t, path)

	out, errs, code := run(t, "", "test", "send", "-config", path, "--from", "admin@contoso.com",
		"--to", "gone@fabrikam.com,slow@fabrikam.com", "--wait", "3s")
	if code != ExitFailure || !strings.Contains(out, "still not delivered") || !strings.Contains(out, "failure notice to admin@contoso.com") {
		t.Errorf("test send with one recipient refused, one deferred = %d; want exit 1, still not delivered, and the DSN\n%s%s", code, out, errs)
	}
	for line := range strings.Lines(out) {
		if strings.Contains(line, "admin@contoso.com") && !strings.Contains(line, "failure notice to admin@contoso.com") {
			t.Errorf("the notice's own story in test send's output: %s", line)
		}
	}
}
