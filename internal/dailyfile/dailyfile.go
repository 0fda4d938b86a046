// Package dailyfile owns the append-only files Sluice keeps one per UTC
// day under the data directory (the tracking log, the protocol logs):
// <dir>/<prefix>-YYYYMMDD<ext>, a buffer the owner flushes, a new file
// when the day changes, and files past the retention removed. A Writer
// belongs to one goroutine.
package dailyfile

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Writer appends lines to the file of their day.
type Writer struct {
	dir, prefix, ext string
	retention        time.Duration
	log              *slog.Logger
	now              func() time.Time

	f   *os.File
	w   *bufio.Writer
	day string
}

// New makes a Writer in dir (created if needed); retention 0 keeps files
// for ever. now is the clock for the retention.
func New(dir, prefix, ext string, retention time.Duration, log *slog.Logger, now func() time.Time) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("%s log: %w", prefix, err)
	}
	return &Writer{dir: dir, prefix: prefix, ext: ext, retention: retention, log: log, now: now}, nil
}

// Name is the file name for t's UTC day.
func Name(prefix, ext string, t time.Time) string {
	return prefix + "-" + t.UTC().Format("20060102") + ext
}

// Write appends line and a newline to the file of t's day.
func (w *Writer) Write(t time.Time, line []byte) {
	if name := Name(w.prefix, w.ext, t); name != w.day {
		w.closeFile()
		f, err := os.OpenFile(filepath.Join(w.dir, name), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o640)
		if err != nil {
			w.log.Error("cannot open log file", "file", name, "err", err)
			return
		}
		w.f, w.w, w.day = f, bufio.NewWriterSize(f, 64<<10), name
		if torn(f) {
			// The file ends inside a line (Sluice was killed while
			// writing): end it, or the next line would be joined to it
			// and lost to every reader.
			w.w.WriteByte('\n')
		}
		w.prune()
	}
	w.w.Write(line)
	w.w.WriteByte('\n')
}

// torn reports whether f is not empty and does not end in a newline.
func torn(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return false
	}
	var last [1]byte
	_, err = f.ReadAt(last[:], fi.Size()-1)
	return err == nil && last[0] != '\n'
}

// Flush writes what is buffered. If that fails (a full disk), the
// buffered lines are lost and the file is opened again for the next
// line: a bufio.Writer keeps its first error for good, and would lose
// every line until the day changes.
func (w *Writer) Flush() {
	if w.w != nil {
		if err := w.w.Flush(); err != nil {
			w.log.Error("cannot write log file; buffered lines lost", "file", w.day, "err", err)
			w.f.Close()
			w.f, w.w, w.day = nil, nil, ""
		}
	}
}

// Close flushes and closes the current file.
func (w *Writer) Close() { w.closeFile() }

func (w *Writer) closeFile() {
	w.Flush()
	if w.f != nil {
		w.f.Close()
		w.f, w.w, w.day = nil, nil, ""
	}
}

// prune removes files older than the retention.
func (w *Writer) prune() {
	if w.retention <= 0 {
		return
	}
	cutoff := Name(w.prefix, w.ext, w.now().Add(-w.retention))
	for _, name := range Files(w.dir, w.prefix, w.ext) {
		if name < cutoff {
			if err := os.Remove(filepath.Join(w.dir, name)); err == nil {
				w.log.Info("log file past retention removed", "file", name)
			}
		}
	}
}

// Files lists the day files of prefix in dir, oldest first.
func Files(dir, prefix, ext string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, prefix+"-") && strings.HasSuffix(n, ext) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
