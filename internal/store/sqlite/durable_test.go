package sqlite

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/sluice-relay/sluice/internal/mail"
)

// Every commit with an add runs at synchronous FULL (SQLite fsyncs the
// WAL before COMMIT returns); a commit of lazy deletes alone at NORMAL.
// The level is read on the writer's own connection right after each
// commit. A kill -9 test cannot see this: the page cache outlives the
// process, and only a power loss loses a commit that was not synced.
// (PRAGMA synchronous from a prepared statement takes effect when it is
// parsed, not when it runs: preparing FULL and NORMAL once left every
// commit at NORMAL, and all tests passed.)
func TestCommitsAtTheRightSynchronous(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	var mu sync.Mutex
	var levels []int
	s.ObserveCommits(func(time.Duration) {
		var level int
		if err := s.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level); err != nil {
			t.Error(err)
		}
		mu.Lock()
		levels = append(levels, level)
		mu.Unlock()
	})
	seen := func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(levels)
	}
	add := func() mail.ID {
		t.Helper()
		id := mail.NewID()
		if _, err := s.Add(ctx, id, []byte("m"), bytes.NewReader([]byte("x\r\n"))); err != nil {
			t.Fatal(err)
		}
		return id
	}
	id := add()
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	// The lazy delete commits alone once no durable write comes.
	for deadline := time.Now().Add(10 * time.Second); len(seen()) < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	add()
	want := []int{2, 1, 2} // FULL, NORMAL, FULL
	if got := seen(); !slices.Equal(got, want) {
		t.Errorf("synchronous level of each commit: %v, want %v (2 = FULL, 1 = NORMAL)", got, want)
	}
}

// On Linux commits sync with fdatasync (what the process's SQLite
// calls for every sync once switched); fsync would also push the log's
// timestamps through the journal.
func TestCommitsWithFdatasync(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("fdatasync is switched on where modernc.org/sqlite honours it; this checks Linux, where it must be")
	}
	open(t)
	if !sqlite.FdatasyncEnabled() {
		t.Error("after Open SQLite still commits with fsync, not fdatasync")
	}
}

// Open makes the directories it creates durable: the store's own, in
// its parent, as well as bodies and segments in it. A queue created at
// first start that took a message (its 250 sent) and then lost power
// could otherwise come back without its directory, and so without the
// message.
func TestOpenSyncsTheDirectoriesItCreates(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "queue")
	var synced []string
	old := syncDir
	syncDir = func(d string) error {
		synced = append(synced, d)
		return old(d)
	}
	t.Cleanup(func() { syncDir = old })
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, want := range []string{parent, dir} {
		if !slices.Contains(synced, want) {
			t.Errorf("Open created %s and synced %v, not %s", dir, synced, want)
		}
	}
}

// A queue database Sluice cannot write (read-only file, immutable, a
// read-only mount) is refused at Open, naming the file and the fix:
// SQLite opens it read-only without a word, and Sluice then ran but
// could record neither a new message nor a delivery (every message
// delivered again at the next start).
func TestOpenRefusesReadOnlyDatabase(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := filepath.Join(dir, "queue.db")
	if os.Getuid() == 0 {
		// root writes through file modes: make it immutable instead.
		if out, err := exec.Command("chattr", "+i", db).CombinedOutput(); err != nil {
			t.Skipf("running as root and chattr +i failed (%v: %s): no way to make the database read-only here", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", db).Run() })
	} else if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a read-only queue database succeeded")
	}
	if !strings.Contains(err.Error(), db) || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Open of a read-only database: %v, want the file named and read-only said", err)
	}
}

// The queue's database holds every envelope: it is 0640 like every other
// file Sluice writes, its log too, and one made 0644 before is tightened.
// SQLite made it 0644.
func TestDatabaseNotWorldReadable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix file modes")
	}
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"queue.db", "queue.db-wal"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode().Perm()&0o027 != 0 {
			t.Errorf("%s: mode %v (%v), want no group write and no access for others (0640)", name, st.Mode().Perm(), err)
		}
	}
	s.Close()
	if err := os.Chmod(filepath.Join(dir, "queue.db"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st, _ := os.Stat(filepath.Join(dir, "queue.db")); st.Mode().Perm() != 0o640 { // 0644 less group write and others
		t.Errorf("a 0644 database is %v after Open, want 0640", st.Mode().Perm())
	}
}
