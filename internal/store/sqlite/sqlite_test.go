package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, o := range []Options{{}, {PresizeLog: true}} {
		t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
			smallLog(t)
			storetest.Run(t, func(t *testing.T, dir string) queue.Store {
				s, err := Open(dir, o)
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

// The database is in the directory given, whatever its name: the DSN is
// a URI, where '#' would end the path and "%41" would be read as "A", and
// the store would be opened somewhere else than its segments and bodies
// (and shared by two data directories that differ only after a '#').
func TestOpenDirWithURICharacters(t *testing.T) {
	for _, name := range []string{"node#1", "50%41", "a?b"} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, name, "queue")
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := os.Stat(filepath.Join(dir, "queue.db")); err != nil {
				entries, _ := os.ReadDir(parent)
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("no queue.db in %s (%v); %s holds %q", dir, err, parent, names)
			}
		})
	}
}
