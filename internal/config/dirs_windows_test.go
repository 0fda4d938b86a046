package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// missingDrive is a drive letter ("Q:") that does not exist here, as a
// mapped drive is missing for the account a service runs as.
func missingDrive(t *testing.T) string {
	t.Helper()
	for c := 'Z'; c >= 'D'; c-- {
		if _, err := os.Stat(string(c) + `:\`); err != nil {
			return string(c) + ":"
		}
	}
	t.Skip("every drive letter from D: to Z: exists on this machine; free one to run this test")
	return ""
}

// A drop directory on a drive this account does not see was passed by
// config check: the walk up the path stopped at the drive's root and
// found nothing wrong. Runs on the Windows CI only.
func TestDropDirectoryOnMissingDrive(t *testing.T) {
	drop := missingDrive(t) + `\Sluice\drop`
	file, err := dirConfig(t, filepath.Join(t.TempDir(), "data"), drop)
	want := file + ":9: send_connectors[0].directory: " + drop + " cannot be created: the path or its drive does not exist for user "
	if err == nil || !strings.HasPrefix(err.Error(), want) ||
		!strings.Contains(err.Error(), `mapped drive letters are not visible to services: use a UNC path (\\server\share\dir), or change send_connectors[0].directory`) {
		t.Errorf("Load = %v; want %s...", err, want)
	}
}
