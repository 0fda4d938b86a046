package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/smtpd"
	"github.com/sluice-relay/sluice/internal/testport"
)

// taken listens on a free loopback port for the test, as "another
// program" would, and returns its address.
func taken(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", testport.Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func writeConfig(t *testing.T, dir, binding, admin string) string {
	t.Helper()
	path := filepath.Join(dir, "sluice.yaml")
	src := "node: {hostname: relay.contoso.com, data_dir: " + filepath.Join(dir, "data") + `}
receive_connectors:
  - name: A
    bindings: ["` + binding + `"]
    remote_ip_ranges: [127.0.0.1]
    permissions: [anonymous]
send_connectors: [{name: Drop, address_spaces: ["*"], directory: drop}]
admin: {listen: "` + admin + `"}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A port another program holds: serve and a refused reload give the same
// answer, at the binding's line, with the address once and what to do.
func TestListenErrorsNameTheBinding(t *testing.T) {
	busy := taken(t)
	wantFor := func(path string) string {
		return path + ":4: receive_connectors[0].bindings[0]: cannot listen on " + busy +
			` for receive connector "A": another program listens there already (`
	}

	t.Run("serve", func(t *testing.T) {
		path := writeConfig(t, t.TempDir(), busy, "off")
		err := Run(context.Background(), Options{ConfigPath: path, LogOutput: io.Discard})
		if err == nil || !strings.HasPrefix(err.Error(), wantFor(path)) || !strings.HasSuffix(err.Error(), "; stop it, or change receive_connectors[0].bindings[0]") {
			t.Fatalf("Run = %v\nwant it to start with %s", err, wantFor(path))
		}
		if strings.Count(err.Error(), busy) != 1 {
			t.Errorf("the address is given more than once: %v", err)
		}
		if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "netstat") {
			t.Errorf("the system's error is lost: errors.Is(%v, EADDRINUSE) is false", err)
		}
	})

	t.Run("reload", func(t *testing.T) {
		dir := t.TempDir()
		old := writeConfig(t, dir, testport.Addr(t), "off")
		oldCfg, err := config.Load(old)
		if err != nil {
			t.Fatal(err)
		}
		path := writeConfig(t, dir, busy, "off") // the same file, edited
		var log bytes.Buffer
		srv := smtpd.New(smtpd.Options{})
		got, problems := reload(NewLogger(&log, config.Log{Level: "info"}), path, oldCfg, srv, nil, nil)
		if got != oldCfg || len(problems) != 1 || !strings.HasPrefix(problems[0], wantFor(path)) {
			t.Fatalf("reload kept %v, problems %q\nwant one starting with %s", got == oldCfg, problems, wantFor(path))
		}
		if !strings.Contains(log.String(), "receive_connectors[0].bindings[0]") {
			t.Errorf("the log does not say it:\n%s", log.String())
		}
	})

	t.Run("admin API", func(t *testing.T) {
		path := writeConfig(t, t.TempDir(), testport.Addr(t), busy)
		err := Run(context.Background(), Options{ConfigPath: path, LogOutput: io.Discard})
		want := path + ":8: admin.listen: cannot listen on " + busy + " for the admin API: another program listens there already ("
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "; stop it, or change admin.listen") {
			t.Fatalf("Run = %v\nwant it to start with %s", err, want)
		}
	})
}
