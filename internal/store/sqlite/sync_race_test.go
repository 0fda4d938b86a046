package sqlite

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// Only the writer fdatasyncs a segment. Linux reports a failed writeback
// once per open file: when the relocator synced the active segment too,
// it could take the error, the writer's fdatasync return 0, and the
// writer commit (250) an add whose pages were lost (a review's test made
// that happen every time). Relocation leaves the sync to the writer,
// which makes the copies durable before the commit that points rows at
// them, as it does for adds.
func TestOnlyTheWriterSyncsSegments(t *testing.T) {
	dir := t.TempDir()
	s, _ := sparseStore(t, dir)
	defer s.Close()
	ms := s.seg.sparse(time.Now(), relocatePass)
	if len(ms) == 0 {
		t.Fatal("no sparse segment to relocate from")
	}
	old := syncFile
	var calls atomic.Int32
	syncFile = func(f *os.File) error {
		calls.Add(1)
		return old(f)
	}
	t.Cleanup(func() { syncFile = old })
	ops, err := s.copyOut(ms)
	if err != nil || len(ops) == 0 {
		t.Fatalf("copyOut: %d ops, %v", len(ops), err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the relocation synced %d times itself; the writer alone syncs segments", n)
	}
	moved, err := s.commitMoves(context.Background(), ops)
	if err != nil || moved != len(ops) {
		t.Fatalf("commitMoves: %d of %d moved, %v", moved, len(ops), err)
	}
	if n := calls.Load(); n == 0 {
		t.Error("the moves were committed without the writer syncing their segment")
	}
}
