package safeio_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-relay/sluice/internal/safeio"
)

// WriteNewFrom never replaces a file: each write takes the next free
// name, also when writers race for the same one.
func TestWriteNewFromKeepsEveryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.eml")
	alt := func(n int) string { return filepath.Join(dir, fmt.Sprintf("m-%d.eml", n)) }
	if err := os.WriteFile(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	names := make([]string, writers)
	for i := range writers {
		wg.Go(func() {
			name, n, err := safeio.WriteNewFrom(path, alt, strings.NewReader(fmt.Sprint("copy ", i)), 0o600)
			if err != nil || n != int64(len(fmt.Sprint("copy ", i))) {
				t.Errorf("writer %d: %d octets, %v", i, n, err)
			}
			names[i] = name
		})
	}
	wg.Wait()
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Errorf("%s holds %q, want the first file kept", path, b)
	}
	for i, name := range names {
		if b, _ := os.ReadFile(name); string(b) != fmt.Sprint("copy ", i) {
			t.Errorf("writer %d's file %s holds %q", i, name, b)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != writers+1 {
		t.Errorf("files %q, want %d (no temporary file left)", files, writers+1)
	}
}
