// Package safeio writes files so that they survive a crash: content
// fsynced, then renamed into place, then the directory entry fsynced (on
// Windows the rename is written through instead). Once a function here
// returns nil, the file is on disk. On Windows it waits, briefly, for a
// file another process holds open (see retry).
package safeio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File is a file being written under a temporary name; Commit makes it
// durable under its final name, Abort removes it.
type File struct {
	*os.File
	final string
}

// Create starts writing the file that will be called path.
func Create(path string, perm os.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil && !isUnsupported(err) {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &File{File: f, final: path}, nil
}

// Commit fsyncs the content, renames the file into place and fsyncs the
// directory, so that both the data and the name survive a crash.
func (f *File) Commit() error {
	if err := f.syncClose(); err != nil {
		return err
	}
	if err := Rename(f.Name(), f.final); err != nil {
		Remove(f.Name())
		return err
	}
	return nil
}

// CommitNew is Commit for a file that must not replace one already
// there: it takes the first name of the file's path, alt(2), alt(3), ...
// that does not exist, and returns it.
func (f *File) CommitNew(alt func(n int) string) (string, error) {
	if err := f.syncClose(); err != nil {
		return "", err
	}
	name, err := f.renameNew(alt)
	if err != nil {
		Remove(f.Name())
		return "", err
	}
	return name, syncDir(filepath.Dir(name))
}

// maxNew bounds the names CommitNew tries.
const maxNew = 10000

// renameNew renames the file to the first free name (renameNoReplace
// says which are taken).
func (f *File) renameNew(alt func(n int) string) (string, error) {
	name := f.final
	for n := 2; n <= maxNew; n++ {
		err := retry(func() error { return renameNoReplace(f.Name(), name) })
		if !errors.Is(err, fs.ErrExist) {
			return name, err
		}
		name = alt(n)
	}
	return "", fmt.Errorf("%s and %d more names like it are all taken", f.final, maxNew-2)
}

func (f *File) syncClose() error {
	if err := f.Sync(); err != nil {
		f.Abort()
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		Remove(f.Name())
		return err
	}
	return nil
}

// Abort closes and removes the temporary file.
func (f *File) Abort() {
	f.Close()
	Remove(f.Name())
}

// WriteFile writes data to path durably and atomically: readers see the
// old file or the new one, never a part.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
}

// WriteFrom is WriteFile with the content streamed from r; it returns the
// number of bytes written.
func WriteFrom(path string, r io.Reader, perm os.FileMode) (int64, error) {
	f, n, err := createFrom(path, r, perm)
	if err != nil {
		return n, err
	}
	return n, f.Commit()
}

// WriteNewFrom is WriteFrom for a file that must not replace one already
// there (see CommitNew); it returns the name it took.
func WriteNewFrom(path string, alt func(n int) string, r io.Reader, perm os.FileMode) (string, int64, error) {
	f, n, err := createFrom(path, r, perm)
	if err != nil {
		return "", n, err
	}
	name, err := f.CommitNew(alt)
	return name, n, err
}

func createFrom(path string, r io.Reader, perm os.FileMode) (*File, int64, error) {
	f, err := Create(path, perm)
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, r)
	if err != nil {
		f.Abort()
		return nil, n, err
	}
	return f, n, nil
}
