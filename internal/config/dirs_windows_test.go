package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
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

// A data_dir not made yet, in a directory where the account may create
// folders but not files (as Authenticated Users may in C:\), was
// refused: the check tried to create a file there, though MkdirAll can
// make the data_dir and Sluice owns what is inside. Runs on the Windows
// CI only.
func TestDataDirUnderFoldersOnlyDirectory(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(parent, 0o750); err != nil {
		t.Fatal(err)
	}
	foldersOnly(t, parent)
	if f, err := os.CreateTemp(parent, "file-*"); err == nil {
		f.Close()
		t.Fatalf("created %s: the ACL does not refuse files", f.Name())
	}
	data := filepath.Join(parent, "Sluice")
	if _, err := dirConfig(t, data, filepath.Join(data, "drop")); err != nil {
		t.Errorf("Load = %v; want %s accepted", err, data)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("checking left %v behind", entries)
	}
	if err := os.MkdirAll(filepath.Join(data, "queue"), 0o750); err != nil {
		t.Errorf("MkdirAll: %v; the premise does not hold", err)
	}
}

// foldersOnly gives dir a protected DACL like that of C:\ for
// Authenticated Users: in dir itself list, read, create folders and
// delete what is in it, not create files; in what is made under it, full
// control (CREATOR OWNER's in C:\).
func foldersOnly(t *testing.T, dir string) {
	t.Helper()
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	sid := u.User.Sid.String()
	// 0x1200ed: SYNCHRONIZE, READ_CONTROL, FILE_READ_ATTRIBUTES,
	// FILE_DELETE_CHILD, FILE_TRAVERSE, FILE_READ_EA,
	// FILE_ADD_SUBDIRECTORY, FILE_LIST_DIRECTORY; not FILE_ADD_FILE (0x2).
	sd, err := windows.SecurityDescriptorFromString(fmt.Sprintf("D:P(A;;0x1200ed;;;%s)(A;OICIIO;FA;;;%s)", sid, sid))
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	err = windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		t.Fatal(err)
	}
}
