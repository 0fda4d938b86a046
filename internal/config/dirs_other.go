//go:build !unix

package config

import (
	"fmt"
	"os"
	"os/user"
)

// writable tries what Sluice will do: create a file in dir. Windows
// decides by ACLs, which no mode bits or access(2) describe. The file is
// removed at once.
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".sluice-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// canMkdir tries what Sluice does in a directory above the one it keeps:
// create a directory. NTFS grants that apart from creating files: C:\
// lets Authenticated Users create folders but not files, so writable
// would refuse a data_dir of C:\Sluice that MkdirAll can make.
func canMkdir(dir string) error {
	d, err := os.MkdirTemp(dir, ".sluice-check-*")
	if err != nil {
		return err
	}
	return os.Remove(d)
}

// who names the account this process runs as, e.g. NT AUTHORITY\NETWORK SERVICE.
func who() string {
	if u, err := user.Current(); err == nil {
		return "user " + u.Username
	}
	return "the user Sluice runs as"
}

func account() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "USER"
}

// grant is what to do about a directory Sluice cannot write: Modify
// rights, inherited by everything under it.
func grant(root string) string {
	return fmt.Sprintf(`grant that user Modify rights on it (icacls "%s" /grant "%s:(OI)(CI)M" /T)`, root, account())
}

// create is what to do about a directory Sluice cannot create.
func create(root string) string {
	return fmt.Sprintf(`create it and grant that user Modify rights on it (mkdir "%s" and icacls "%s" /grant "%s:(OI)(CI)M")`, root, root, account())
}
