//go:build windows

package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
)

// errorInvalidDrive is "The system cannot find the drive specified",
// which Go does not count as fs.ErrNotExist.
const errorInvalidDrive = syscall.Errno(15)

// MissingPathAdvice says what to do about path when creating it failed
// with err because the path, its drive or its share does not exist for
// this process; "" when err is not that. A drive letter mapped to a
// share belongs to the logon session that mapped it: the account a
// service runs as does not see the admin's (MkdirAll then fails with
// ERROR_PATH_NOT_FOUND, which is also Go's syscall.ENOTDIR on Windows).
func MissingPathAdvice(path string, err error) string {
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errorInvalidDrive) {
		return ""
	}
	if strings.HasPrefix(filepath.VolumeName(path), `\\`) {
		return "the path or its share does not exist for " + who() + ", or that account may not reach it: check the server and share names and the share's permissions"
	}
	return "the path or its drive does not exist for " + who() + `; mapped drive letters are not visible to services: use a UNC path (\\server\share\dir)`
}
