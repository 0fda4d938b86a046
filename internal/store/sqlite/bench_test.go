package sqlite

import (
	"bytes"
	"context"
	"testing"

	"github.com/sluice-relay/sluice/internal/mail"
)

// BenchmarkAdd is the queue commit: a 10 KB message and its metadata
// written and fsynced. Sequential: one fsync per message. Parallel: many
// sessions at once, sharing fsyncs (group commit) — the number that
// matters for a relay with 20 or 100 clients.
func BenchmarkAdd(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 10<<10)
	meta := []byte(`{"v":1,"env":{"From":"a@example.com"},"rcpts":[{"Addr":"b@example.net","status":"queued"}]}`)
	run := func(b *testing.B, parallel bool) {
		s, err := Open(b.TempDir(), Options{PresizeLog: true})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		// add reports with Error, not Fatal: it runs on RunParallel's
		// goroutines too.
		add := func() bool {
			id := mail.NewID()
			if _, err := s.Add(ctx, id, meta, bytes.NewReader(body)); err != nil {
				b.Error(err)
				return false
			}
			if err := s.Delete(ctx, id); err != nil {
				b.Error(err)
				return false
			}
			return true
		}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		if !parallel {
			for range b.N {
				if !add() {
					return
				}
			}
			return
		}
		b.SetParallelism(10) // 20 goroutines on 2 cores, like 20 sessions
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !add() {
					return
				}
			}
		})
	}
	b.Run("sequential", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}
