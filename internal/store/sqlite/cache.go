package sqlite

import (
	"bytes"
	"io"
	"sync"

	"github.com/sluice-relay/sluice/internal/mail"
)

// cacheMax bounds the content kept in memory after Add. Most messages are
// delivered within moments of their arrival; serving their content from
// memory spares reading back what was just written. Under a backlog the
// cache is full of waiting messages and the rest are read from the store.
const cacheMax = 4 << 20

// cacheItemMax is the largest content cached.
const cacheItemMax = 128 << 10

// cache is content just added, by id, until it is deleted. It keeps the
// buffer Add read the content into, and gives it back to the store's
// pool once the content is deleted and no reader has it open.
type cache struct {
	mu      sync.Mutex
	m       map[mail.ID]*entry
	bytes   int
	release func(*[]byte) // the pool's; nil: buffers are left to the GC
}

type entry struct {
	buf     *[]byte
	readers int
	dropped bool
}

// keep caches the content in *buf, reporting whether it did: the buffer
// is the cache's then.
func (c *cache) keep(id mail.ID, buf *[]byte) bool {
	if len(*buf) > cacheItemMax {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes+len(*buf) > cacheMax {
		return false
	}
	if c.m == nil {
		c.m = make(map[mail.ID]*entry)
	}
	c.m[id] = &entry{buf: buf}
	c.bytes += len(*buf)
	return true
}

// get opens a cached content; the buffer stays untouched until the
// reader is closed.
func (c *cache) get(id mail.ID) (io.ReadCloser, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return nil, false
	}
	e.readers++
	return &cacheReader{Reader: bytes.NewReader(*e.buf), c: c, e: e}, true
}

// drop forgets a content; its buffer is released when its last reader
// closes.
func (c *cache) drop(id mail.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return
	}
	delete(c.m, id)
	c.bytes -= len(*e.buf)
	e.dropped = true
	c.releaseLocked(e)
}

func (c *cache) releaseLocked(e *entry) {
	if e.dropped && e.readers == 0 && c.release != nil {
		c.release(e.buf)
		e.buf = nil
	}
}

type cacheReader struct {
	*bytes.Reader
	c      *cache
	e      *entry
	closed bool
}

func (r *cacheReader) Close() error {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.e.readers--
		r.c.releaseLocked(r.e)
	}
	return nil
}
