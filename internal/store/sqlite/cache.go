package sqlite

import (
	"bytes"
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

// cache is content just added, by id, until it is deleted. The slices are
// never written again or returned to a pool: a delivery may still be
// reading one when its message is deleted.
type cache struct {
	mu    sync.Mutex
	m     map[mail.ID][]byte
	bytes int
}

// keep caches a copy of data if it fits.
func (c *cache) keep(id mail.ID, data []byte) {
	if len(data) > cacheItemMax {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes+len(data) > cacheMax {
		return
	}
	data = bytes.Clone(data)
	if c.m == nil {
		c.m = make(map[mail.ID][]byte)
	}
	c.m[id] = data
	c.bytes += len(data)
}

func (c *cache) get(id mail.ID) (*bytes.Reader, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	data, ok := c.m[id]
	if !ok {
		return nil, false
	}
	return bytes.NewReader(data), true
}

func (c *cache) drop(id mail.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if data, ok := c.m[id]; ok {
		c.bytes -= len(data)
		delete(c.m, id)
	}
}
