package health_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/safeio"
)

func TestDiskSpace(t *testing.T) {
	// The thresholds, against fixed free space.
	cfg := load(t, minimal+"queue: {min_free_space: 100MB}\n")
	free := func(n int64) func(string) (int64, error) { return func(string) (int64, error) { return n, nil } }
	for _, c := range []struct {
		name string
		free int64
		want string
	}{
		{"plenty", 1 << 40, ""},
		{"just above twice the minimum", 200 << 20, ""},
		{"below twice the minimum", 150 << 20, "warning: 150MB free; below 100MB (queue.min_free_space)"},
		{"below the minimum", 50 << 20, "error: 50MB free, below queue.min_free_space (100MB): Sluice refuses new mail with 452 4.3.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			check(t, health.Evaluate(health.Input{Config: cfg, FreeSpace: free(c.free)}), health.RuleDiskSpace, c.want)
		})
	}
}

// The real disk under a temporary data_dir, which need not exist yet.
func TestDiskSpaceRealDisk(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "not", "yet", "created")
	for _, c := range []struct{ min, want string }{
		{"1KB", ""},
		{"4000000GB", "error: below queue.min_free_space (4000000GB)"},
	} {
		cfg := load(t, fmt.Sprintf(`node: {hostname: relay.test, data_dir: %q}
receive_connectors: [{name: Apps, bindings: ["0.0.0.0:25"], remote_ip_ranges: [10.0.0.0/8], permissions: [anonymous]}]
admin: {listen: "off"}
queue: {min_free_space: %s}
`, dataDir, c.min))
		check(t, health.Evaluate(health.Input{Config: cfg, FreeSpace: safeio.FreeSpace}), health.RuleDiskSpace, c.want)
	}
}
