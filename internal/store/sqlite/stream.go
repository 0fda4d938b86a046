package sqlite

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/safeio"
)

// streamFirst is the space first reserved for a content. Most fit; the
// others grow in place if nothing was reserved after them, else move.
// (A variable for tests.)
var streamFirst int64 = 128 << 10

// segWriter writes one content into its extent.
type segWriter struct {
	g   *segments
	e   extent
	n   int64 // octets written
	crc uint32
}

// stream writes a content into segment space as it is read: head (read
// already, in *buf) and then the rest of body.
// A content that outgrows inlineMax goes on in a file of its own. The op
// returned holds its extent until the writer commits or releases it.
func (s *Store) stream(id mail.ID, meta, head []byte, body io.Reader, buf *[]byte) (*op, error) {
	e, err := s.seg.reserve(max(streamFirst, int64(len(head))))
	if err != nil {
		return nil, mapErr(err)
	}
	w := &segWriter{g: s.seg, e: e}
	if err := w.write(head); err != nil {
		w.drop()
		return nil, err
	}
	// The rest goes through the buffer the head was read into, a
	// segmentMin at a time: four writes for a 100 KB content, and no
	// more than that in memory.
	*buf = slices.Grow(head[:0], segmentMin)
	chunk := (*buf)[:segmentMin]
	for {
		n, rerr := readFull(body, chunk)
		if rerr != nil && rerr != io.EOF {
			w.drop()
			return nil, rerr // the content was refused: too big, bare LF, connection lost
		}
		if w.n+int64(n) > inlineMax {
			return s.toFile(id, meta, w, chunk[:n], body)
		}
		if n > 0 {
			if err := w.write(chunk[:n]); err != nil {
				w.drop()
				return nil, err
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	s.seg.trim(&w.e, w.n)
	return &op{kind: opAdd, id: id, meta: meta, size: w.n,
		ext: w.e, crc: w.crc}, nil
}

// readFull reads until p is full or r ends; io.EOF only with p not full.
func readFull(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (w *segWriter) write(p []byte) error {
	if need := w.n + int64(len(p)); need > w.e.size {
		if err := w.grow(need); err != nil {
			return err
		}
	}
	if _, err := w.e.seg.f.WriteAt(p, w.e.off+w.n); err != nil {
		return mapErr(fmt.Errorf("queue store: write content segment: %w", err))
	}
	w.crc = crc32.Update(w.crc, castagnoli, p)
	w.n += int64(len(p))
	return nil
}

// grow makes room for need octets, doubling: in place if it can, else
// in a new extent with what was written copied there. The copy is read
// back from the page cache, and only contents bigger than streamFirst
// that arrive while others reserve space pay it.
func (w *segWriter) grow(need int64) error {
	size := min(max(need, 2*w.e.size), inlineMax)
	if w.g.extend(&w.e, size) {
		return nil
	}
	e, err := w.g.reserve(size)
	if err != nil {
		return mapErr(err)
	}
	from := io.NewSectionReader(w.e.seg.f, w.e.off, w.n)
	if _, err := io.Copy(io.NewOffsetWriter(e.seg.f, e.off), from); err != nil {
		w.g.release(e)
		return mapErr(fmt.Errorf("queue store: move content in segments: %w", err))
	}
	w.g.release(w.e)
	w.e = e
	return nil
}

// drop gives up the content: its space goes back if nothing was
// reserved after it, else stays unused.
func (w *segWriter) drop() {
	w.g.trim(&w.e, 0)
	w.g.release(w.e)
}

// toFile moves a content that outgrew inlineMax to a file of its own:
// what was written to the segment, then p, then the rest of body. The
// file is durable before its row commits.
func (s *Store) toFile(id mail.ID, meta []byte, w *segWriter, p []byte, body io.Reader) (*op, error) {
	written := io.NewSectionReader(w.e.seg.f, w.e.off, w.n)
	total, err := safeio.WriteFrom(s.bodyPath(id), io.MultiReader(written, bytes.NewReader(p), body), 0o640)
	w.drop()
	if err != nil {
		os.Remove(s.bodyPath(id))
		return nil, mapErr(err)
	}
	s.files.Store(id, true)
	return &op{kind: opAdd, id: id, meta: meta, size: total, inFile: true}, nil
}
