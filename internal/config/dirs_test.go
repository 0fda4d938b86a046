package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// dirConfig writes a config with data_dir and a drop directory into a
// temporary directory and loads it.
func dirConfig(t *testing.T, dataDir, drop string) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	src := "node:\n  hostname: relay.contoso.com\n  data_dir: " + yamlQuote(dataDir) + `
receive_connectors: [{name: A, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
send_connectors:
  - name: Drop
    address_spaces: ["*"]
    delivery: directory
    directory: ` + yamlQuote(drop) + "\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(file)
	return file, err
}

func yamlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func TestDataDirAndDropDirectory(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dataDir, drop string
		want                []string // "" entries: no problem expected
	}{
		{"a new data_dir and drop directory are fine", filepath.Join(tmp, "new", "data"), "drop", nil},
		{"data_dir is a file", file, filepath.Join(tmp, "drop"),
			[]string{":3: node.data_dir: " + file + " is a file, not a directory; give a directory (Sluice creates it if it does not exist), or change node.data_dir"}},
		{"data_dir under a file", filepath.Join(file, "data"), filepath.Join(tmp, "drop"),
			[]string{":3: node.data_dir: " + filepath.Join(file, "data") + " cannot be created: " + file + " is a file, not a directory; move that file away, or change node.data_dir"}},
		{"the drop directory is a file", filepath.Join(tmp, "data"), file,
			[]string{":9: send_connectors[0].directory: " + file + " is a file, not a directory; give a directory (Sluice creates it if it does not exist), or change send_connectors[0].directory"}},
		{"a bad data_dir is reported once, not again for the drop directory in it", file, "drop",
			[]string{":3: node.data_dir: " + file + " is a file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfgFile, err := dirConfig(t, tc.dataDir, tc.drop)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			errs, _ := err.(Errors)
			if len(errs) != len(tc.want) {
				t.Fatalf("Load = %v, want %d problem(s)", err, len(tc.want))
			}
			for i, w := range tc.want {
				if got := errs[i].Error(); !strings.HasPrefix(got, cfgFile+w) {
					t.Errorf("problem %d:\n got %s\nwant %s%s...", i, got, cfgFile, w)
				}
			}
		})
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 1 {
		t.Errorf("checking created something: %v", entries)
	}
}

// TestDataDirNotWritable needs a user the permission bits apply to.
func TestDataDirNotWritable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows decides by ACLs, not the mode bits this test sets")
	}
	if os.Geteuid() == 0 {
		t.Skip("running as root, which may write any directory (CAP_DAC_OVERRIDE) and cannot give that up in-process; run the tests as another user to cover this")
	}
	tmp := t.TempDir()
	ro := filepath.Join(tmp, "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(ro, 0o700) })
	_, err := dirConfig(t, filepath.Join(ro, "data"), filepath.Join(tmp, "drop"))
	if err == nil || !strings.Contains(err.Error(), "node.data_dir: "+filepath.Join(ro, "data")+" cannot be created: "+ro+" is not writable by ") ||
		!strings.Contains(err.Error(), "or change node.data_dir") {
		t.Errorf("Load = %v, want data_dir not creatable", err)
	}
	_, err = dirConfig(t, ro, filepath.Join(tmp, "drop"))
	if err == nil || !strings.Contains(err.Error(), "node.data_dir: "+ro+" is not writable by ") || !strings.Contains(err.Error(), "chown -R") {
		t.Errorf("Load = %v, want data_dir not writable", err)
	}
}
