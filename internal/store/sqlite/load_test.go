package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sluice-relay/sluice/internal/mail"
)

// A message's size comes with its record, so Load need not look each
// content up; rows written before the column existed (or by an older
// Sluice after an upgrade and a downgrade) still load with their
// content's size.
func TestLoadSizeOfOlderRows(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	old, gone := mail.NewID(), mail.NewID()
	for _, q := range []string{
		"CREATE TABLE messages (id TEXT PRIMARY KEY, meta BLOB NOT NULL) WITHOUT ROWID",
		"CREATE TABLE bodies (id TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB, in_file INTEGER NOT NULL DEFAULT 0)",
		"INSERT INTO messages VALUES ('" + string(old) + "', x'6d')",
		"INSERT INTO bodies (id, size, data) VALUES ('" + string(old) + "', 7000, x'" + fmt.Sprintf("%x", body(7)) + "')",
		// An older record whose content row is missing loads with size
		// 0, as before; reading its content says what is wrong.
		"INSERT INTO messages VALUES ('" + string(gone) + "', x'6d')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q[:30], err)
		}
	}
	db.Close()

	s := openDir(t, dir)
	id := mail.NewID()
	addContent(t, s, id, body(8)[:1234])
	var col sql.NullInt64
	if err := s.db.QueryRow("SELECT size FROM messages WHERE id = ?", string(id)).Scan(&col); err != nil {
		t.Fatal(err)
	}
	if !col.Valid || col.Int64 != 1234 {
		t.Errorf("messages.size of a new message = %v, want 1234", col)
	}
	s.Close()

	s = openDir(t, dir)
	defer s.Close()
	got := map[mail.ID]int64{}
	if err := s.Load(context.Background(), func(id mail.ID, _ []byte, size int64) error {
		got[id] = size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[mail.ID]int64{old: 7000, gone: 0, id: 1234}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Load sizes %v, want %v", got, want)
	}
}

// Load reads rows ahead of its callback; an error from the callback ends
// it with that error, and the store goes on working.
func TestLoadStopsAtCallbackError(t *testing.T) {
	s := openDir(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	for i := range 3000 {
		addContent(t, s, mail.NewID(), body(i)[:100])
	}
	stop := errors.New("stop here")
	n := 0
	err := s.Load(ctx, func(mail.ID, []byte, int64) error {
		if n++; n == 1500 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 1500 {
		t.Fatalf("Load = %v after %d calls, want %v after 1500", err, n, stop)
	}
	n = 0
	if err := s.Load(ctx, func(mail.ID, []byte, int64) error { n++; return nil }); err != nil || n != 3000 {
		t.Errorf("Load again = %v with %d messages, want all 3000", err, n)
	}
	addContent(t, s, mail.NewID(), body(1))
}

// A Load cancelled part way never reports success for a partial load,
// and leaves the store whole for the next.
func TestLoadCancelled(t *testing.T) {
	s := openDir(t, t.TempDir())
	defer s.Close()
	for i := range 1000 {
		addContent(t, s, mail.NewID(), body(i)[:100])
	}
	for _, at := range []int{1, 255, 256, 257, 700, 999} {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := s.Load(ctx, func(mail.ID, []byte, int64) error {
			if n++; n == at {
				cancel()
			}
			return nil
		})
		cancel()
		if err == nil && n != 1000 || err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled at %d: Load = %v after %d of 1000", at, err, n)
		}
	}
	n := 0
	if err := s.Load(context.Background(), func(mail.ID, []byte, int64) error { n++; return nil }); err != nil || n != 1000 {
		t.Errorf("Load after the cancels = %v with %d messages, want all 1000", err, n)
	}
}

// A row that cannot be read ends Load with an error, not a quiet partial
// load: the queue would start without the messages after it.
func TestLoadScanError(t *testing.T) {
	s := openDir(t, t.TempDir())
	defer s.Close()
	var ids []mail.ID
	for i := range 1000 {
		id := mail.NewID()
		addContent(t, s, id, body(i)[:100])
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if _, err := s.db.Exec("UPDATE messages SET size = 'x' WHERE id = ?", string(ids[600])); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.Load(context.Background(), func(mail.ID, []byte, int64) error { n++; return nil }); err == nil {
		t.Errorf("Load = nil after %d of 1000 with row 600 unreadable", n)
	}
}
