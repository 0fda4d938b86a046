package sqlite

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-relay/sluice/internal/mail"
)

// staleFrames reports the offset of the first frame after the log's
// valid run whose salt is not the header's and is not zeros (a frame of
// an earlier round, left behind by a restart), or 0.
func staleFrames(b []byte) int {
	if len(b) < walHeader {
		return 0
	}
	psz := int(binary.BigEndian.Uint32(b[8:]))
	salt := b[16:24]
	for o := walHeader; o+walFrameHeader+psz <= len(b); o += walFrameHeader + psz {
		if !bytes.Equal(b[o+8:o+16], salt) {
			if binary.BigEndian.Uint32(b[o:]) != 0 {
				return o
			}
			return 0
		}
	}
	return 0
}

// Whatever shape a crash leaves the log in (restarted, with frames of an
// earlier round after the current ones; cut inside the header; a header
// and no frame; cut inside a frame, in the current round or in stale
// frames), a presized Open recovers what plain SQLite recovers, and a
// second crash before any write recovers the same again; commits after
// it survive a crash too.
func TestLogPresizeAnyCrashShape(t *testing.T) {
	smallLog(t)
	dir := t.TempDir()
	s := openDir(t, dir) // not presized: the log ends where SQLite left it
	defer s.Close()
	var b []byte
	stale := 0
	for i := 0; stale == 0; i++ {
		if i == 100 {
			t.Fatal("setup: the log has no frames of an earlier round after its current ones")
		}
		addContent(t, s, mail.NewID(), body(i))
		var err error
		if b, err = os.ReadFile(filepath.Join(dir, "queue.db-wal")); err != nil {
			t.Fatal(err)
		}
		stale = staleFrames(b)
	}
	base := crashCopy(t, dir)
	frame := walFrameHeader + 4096
	cuts := map[string]int{
		"whole":               len(b),
		"empty":               0,
		"inside header":       10,
		"header only":         walHeader,
		"inside first frame":  walHeader + frame/2,
		"inside stale frames": stale + 2*frame + 100,
		"at a stale frame":    stale + frame,
		"inside last frame":   len(b) - 100,
	}
	for name, cut := range cuts {
		t.Run(name, func(t *testing.T) {
			d := crashCopy(t, base)
			wal := filepath.Join(d, "queue.db-wal")
			if err := os.Truncate(wal, int64(cut)); err != nil {
				t.Fatal(err)
			}
			want := rawCount(t, crashCopy(t, d))

			p := presized(t, d)
			if n := count(t, p); n != want {
				t.Errorf("presized Open finds %d messages, plain SQLite %d", n, want)
			}
			if got := fileSize(t, wal); got != logTarget() {
				t.Errorf("log is %d octets after Open, want %d", got, logTarget())
			}
			again := crashCopy(t, d)
			p.Close()
			a := openDir(t, again)
			if n := count(t, a); n != want {
				t.Errorf("second recovery finds %d messages, the first %d", n, want)
			}
			a.Close()

			q := presized(t, again)
			ids := addBodies(t, q, nil, 15)
			third := crashCopy(t, again)
			q.Close()
			r := openDir(t, third)
			defer r.Close()
			if n := count(t, r); n != want+len(ids) {
				t.Errorf("after commits on the presized log and a crash: %d messages, want %d", n, want+len(ids))
			}
			for i, id := range ids {
				if got := readAll(t, r, id); !bytes.Equal(got, body(i)) {
					t.Errorf("message %d: %s", i, fmt.Sprint(len(got)))
				}
			}
		})
	}
}

// An operator's connection reading the database while Sluice starts and
// stops: its snapshot holds, Sluice's close cannot delete the log (the
// operator holds it), and the next start finds it presized already.
func TestLogPresizeOperatorConnection(t *testing.T) {
	smallLog(t)
	dir := t.TempDir()
	s := openDir(t, dir)
	ids := addBodies(t, s, nil, 3)
	s.Close()

	op, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	tx, err := op.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM messages").Scan(&n); err != nil || n != 3 {
		t.Fatalf("operator: %d messages (%v)", n, err)
	}

	p := presized(t, dir)
	ids = addBodies(t, p, ids, 20)
	if err := tx.QueryRow("SELECT count(*) FROM messages").Scan(&n); err != nil || n != 3 {
		t.Errorf("operator's snapshot: %d messages (%v), want 3", n, err)
	}
	tx.Rollback()
	if err := op.QueryRow("SELECT count(*) FROM messages").Scan(&n); err != nil || n != len(ids) {
		t.Errorf("operator after: %d messages (%v), want %d", n, err, len(ids))
	}
	p.Close()
	wal := filepath.Join(dir, "queue.db-wal")
	if got := fileSize(t, wal); got != logTarget() {
		t.Errorf("log kept at close is %d octets, want %d", got, logTarget())
	}
	again := presized(t, crashCopy(t, dir))
	defer again.Close()
	stored(t, again, ids)
}
