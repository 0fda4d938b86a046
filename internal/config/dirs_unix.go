//go:build unix

package config

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// writable asks the kernel, without creating anything, whether this
// process may create entries in dir (write and search permission). It
// sees a read-only file system too, even as root.
func writable(dir string) error {
	const wOK, xOK = 0x2, 0x1
	return syscall.Access(dir, wOK|xOK)
}

// who names the user this process runs as, for the message and for chown.
func who() string {
	uid := os.Geteuid()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("user %s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

func owner() string {
	uid := strconv.Itoa(os.Geteuid())
	if u, err := user.LookupId(uid); err == nil {
		return u.Username
	}
	return uid
}

// grant is what to do about a directory Sluice cannot write: everything
// under it is Sluice's, so give all of it to that user.
func grant(root string) string {
	return fmt.Sprintf("give it to that user (chown -R %s %s)", owner(), root)
}

// create is what to do about a directory Sluice cannot create.
func create(root string) string {
	return fmt.Sprintf("create it and give it to that user (mkdir -p %s && chown %s %s)", root, owner(), root)
}

// canMkdir is whether this process may create a directory in dir: on
// Unix the same permission as for a file.
func canMkdir(dir string) error { return writable(dir) }
