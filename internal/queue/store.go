package queue

import (
	"context"
	"errors"
	"io"

	"github.com/sluice-relay/sluice/internal/mail"
)

// Store keeps queued messages durably. The queue keeps its working state in
// memory and writes through a Store; on start it reads everything back with
// Load. Every backend passes storetest.Run.
type Store interface {
	// Add stores a new message: its metadata, and its content read from
	// body to EOF. It returns only when both are durable (fsynced), with
	// the number of content octets.
	Add(ctx context.Context, id mail.ID, meta []byte, body io.Reader) (int64, error)
	// Update replaces a message's metadata, durably.
	Update(ctx context.Context, id mail.ID, meta []byte) error
	// Delete removes a message and its content. A backend may make the
	// delete durable after it returns: one lost in a crash means the
	// message is delivered once more, never that it is lost.
	Delete(ctx context.Context, id mail.ID) error
	// Body opens a message's content.
	Body(ctx context.Context, id mail.ID) (io.ReadCloser, error)
	// Load calls fn for every stored message, in id order, with the size
	// of its content.
	Load(ctx context.Context, fn func(id mail.ID, meta []byte, size int64) error) error
	// Close waits for pending writes and releases the store.
	Close() error
}

// Errors a Store returns that the queue acts on.
var (
	ErrNotFound = errors.New("message not in the store")
	// ErrNoSpace: the disk (or quota) is full. The client is told to try
	// again later (452 4.3.1) and nothing is lost.
	ErrNoSpace = errors.New("no space left for the queue")
)
