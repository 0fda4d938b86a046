package delivery

import (
	"os"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/dropdir"
)

// A drop directory on a drive the account does not see (a drive letter
// mapped in the admin's logon session, which a service does not share)
// read "a file is in the way of the directory": MkdirAll fails with
// ERROR_PATH_NOT_FOUND, which is Go's syscall.ENOTDIR on Windows. Runs
// on the Windows CI only.
func TestDirReplyMissingDrive(t *testing.T) {
	drive := ""
	for c := 'Z'; c >= 'D' && drive == ""; c-- {
		if _, err := os.Stat(string(c) + `:\`); err != nil {
			drive = string(c) + ":"
		}
	}
	if drive == "" {
		t.Skip("every drive letter from D: to Z: exists on this machine; free one to run this test")
	}
	path := drive + `\Sluice\drop`
	_, err := dropdir.Open(path)
	if err == nil {
		t.Fatalf("dropdir.Open(%s) worked", path)
	}
	r := dirReply("open", path, err)
	if strings.Contains(r.Text, "a file is in the way") ||
		!strings.Contains(r.Text, `does not exist for user `) ||
		!strings.Contains(r.Text, `mapped drive letters are not visible to services: use a UNC path (\\server\share\dir), or change the send connector's directory`) {
		t.Errorf("dirReply = %q; want the drive named as missing, with the UNC advice", r.Error())
	}
}
