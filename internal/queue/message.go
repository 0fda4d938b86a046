package queue

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// Status is a recipient's delivery state.
type Status string

const (
	StatusQueued    Status = "queued"    // waiting or being delivered
	StatusDelivered Status = "delivered" // the next hop took it
	StatusFailed    Status = "failed"    // refused permanently; bounced
	StatusExpired   Status = "expired"   // never delivered in time; bounced
	StatusRemoved   Status = "removed"   // removed by an operator
)

// Final reports whether nothing more will be done for the recipient.
func (s Status) Final() bool { return s != StatusQueued }

// Rcpt is one recipient of a queued message and where its delivery stands.
type Rcpt struct {
	mail.Recipient
	Status        Status    `json:"status"`
	Attempts      int       `json:"attempts,omitempty"`
	LastError     string    `json:"last_error,omitempty"` // the upstream's reply, with its host
	LastAttempt   time.Time `json:"last_attempt,omitzero"`
	NextAttempt   time.Time `json:"next_attempt,omitzero"`
	DelayNotified bool      `json:"delay_notified,omitempty"`

	hop    string // queue the recipient waits in (routed, not stored)
	leased bool
	// retryDue is the attempt an attempt out of schedule (tryNow) was
	// made before: a deferral at that attempt keeps it (Done). Not
	// stored: after a restart the attempt counts.
	retryDue time.Time
}

// tryNow makes the recipient due at now, out of schedule (an operator's
// retry, a reload), keeping the attempt it was waiting for.
func (r *Rcpt) tryNow(now time.Time) {
	if r.NextAttempt.After(now) {
		r.retryDue = r.NextAttempt
	}
	r.NextAttempt = now
}

// Message is one accepted message in the queue.
type Message struct {
	ID    mail.ID
	Env   mail.Envelope
	Rcpts []Rcpt
	Size  int64

	writeMu sync.Mutex // serialises Store writes for this message
	// unreadable is why the store could not give the content at the
	// last attempt; nil once it could (not stored: it is found again).
	unreadable atomic.Pointer[string]
}

// record is what the Store keeps as a message's metadata.
type record struct {
	V     int           `json:"v"`
	Env   mail.Envelope `json:"env"`
	Rcpts []Rcpt        `json:"rcpts"`
}

const recordVersion = 1

func (m *Message) encode() []byte {
	env := m.Env
	env.Rcpts = nil // kept once, in Rcpts
	r := record{V: recordVersion, Env: env, Rcpts: m.Rcpts}
	if b, ok := appendRecord(make([]byte, 0, 512), &r); ok {
		return b
	}
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("queue: encode %s: %v", m.ID, err)) // only plain data inside
	}
	return b
}

func decode(id mail.ID, b []byte, size int64) (*Message, error) {
	var r record
	if !decodeRecord(b, &r) {
		r = record{} // partly filled
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("queue: record of %s is damaged: %w", id, err)
		}
	}
	if r.V != recordVersion {
		return nil, fmt.Errorf("queue: record of %s has version %d; this Sluice reads version %d", id, r.V, recordVersion)
	}
	m := &Message{ID: id, Env: r.Env, Rcpts: r.Rcpts, Size: size}
	m.Env.ID, m.Env.Size = id, size
	m.Env.Rcpts = make([]mail.Recipient, len(r.Rcpts))
	for i, rc := range r.Rcpts {
		m.Env.Rcpts[i] = rc.Recipient
	}
	return m, nil
}

// pending reports whether any recipient still waits.
func (m *Message) pending() bool {
	for i := range m.Rcpts {
		if !m.Rcpts[i].Status.Final() {
			return true
		}
	}
	return false
}
