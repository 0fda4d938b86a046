package daemon

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/testport"
)

// A data directory that passed the load check can still fail when Sluice
// writes in it (here a file where the queue's directory goes; as another
// user, a queue/ left by a run as root). The error names node.data_dir
// with its line and what to do, not just "mkdir ...: not a directory".
func TestDataDirErrorNamesTheSetting(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o750); err != nil {
		t.Fatal(err)
	}
	queue := filepath.Join(data, "queue")
	if err := os.WriteFile(queue, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sluice.yaml")
	src := "node:\n  hostname: relay.contoso.com\n  data_dir: " + data + `
receive_connectors: [{name: A, bindings: ["` + testport.Addr(t) + `"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
send_connectors: [{name: Drop, address_spaces: ["*"], directory: drop}]
admin: {listen: "off"}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := Run(ctx, Options{ConfigPath: path, LogOutput: io.Discard})
	var e config.Error
	if !errors.As(err, &e) {
		t.Fatalf("Run = %v (%T), want a config.Error", err, err)
	}
	want := path + ":3: node.data_dir: " + queue + " is a file, but Sluice keeps a directory there; move that file away, or change node.data_dir"
	if err.Error() != want {
		t.Errorf("Run =\n %s\nwant\n %s", err, want)
	}
}
