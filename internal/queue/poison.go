package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-relay/sluice/internal/mail"
)

// Poison is the queue of messages whose record the store holds but this
// Sluice cannot read (damaged, or written by a newer Sluice): Exchange's
// poison message queue. They are never delivered, and nothing deletes
// them but an admin (sluice message remove), so a record made readable
// again, or read by the newer Sluice that wrote it, is delivered then.
const Poison = "Poison"

// poisoned is a message in the Poison queue: all that is known of it.
type poisoned struct {
	size int64
	why  string
}

// poisonInfo (q.mu held) is the Poison queue, if it holds anything.
func (q *Queue) poisonInfo() (QueueInfo, bool) {
	if len(q.poison) == 0 {
		return QueueInfo{}, false
	}
	i := QueueInfo{Identity: Poison, DeliveryType: "Undefined", Status: HopSuspended, NextHop: "none: records that cannot be read",
		MessageCount: len(q.poison), Unreadable: len(q.poison)}
	var first mail.ID
	for id, p := range q.poison {
		if first == "" || id < first {
			first, i.UnreadableError = id, p.why // the same one each time
		}
	}
	i.LastError = i.UnreadableError
	return i, true
}

// poisonMessage is what can be shown of a poisoned message.
func poisonMessage(id mail.ID, p poisoned) MessageInfo {
	return MessageInfo{ID: id, Size: p.size, Received: id.Time(), Status: HopSuspended, Queues: []string{Poison}, Error: p.why}
}

// removePoisoned deletes a poisoned message from the store, at an
// admin's word. There is no sender to tell: its envelope cannot be read.
func (q *Queue) removePoisoned(ctx context.Context, id mail.ID, bounce bool) error {
	q.mu.Lock()
	p, ok := q.poison[id]
	q.mu.Unlock()
	if !ok {
		return ErrNoMessage
	}
	if bounce {
		return errors.New("its record cannot be read, so there is no sender to send a non-delivery report to; remove it without --bounce")
	}
	if err := q.store.Delete(ctx, id); err != nil {
		return fmt.Errorf("queue: remove %s: %w", id, err)
	}
	q.mu.Lock()
	delete(q.poison, id)
	q.mu.Unlock()
	q.log.Info("unreadable message removed from the queue by an admin", "msg", id, "was", p.why)
	return nil
}
