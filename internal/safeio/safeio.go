// Package safeio writes files so that they survive a crash: content
// fsynced, then renamed into place, then the directory entry fsynced. Once
// a function here returns nil, the file is on disk.
package safeio

import (
	"fmt"
	"io"
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
	if err := f.Sync(); err != nil {
		f.Abort()
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), f.final); err != nil {
		os.Remove(f.Name())
		return err
	}
	return SyncDir(filepath.Dir(f.final))
}

// Abort closes and removes the temporary file.
func (f *File) Abort() {
	f.Close()
	os.Remove(f.Name())
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
	f, err := Create(path, perm)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err != nil {
		f.Abort()
		return n, err
	}
	return n, f.Commit()
}
