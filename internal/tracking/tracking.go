// Package tracking owns the message tracking log, Sluice's
// Get-MessageTrackingLog: one JSON record per event in a message's life
// (RECEIVE, SUBMIT, SEND, DEFER, FAIL, DSN, EXPIRE, DELETE, REDIRECT),
// appended to one file per day under the data directory, kept for a
// configurable number of days, and searched by sender, recipient,
// message id and time. It is a sink: it imports only mail and reply, and
// a slow disk never holds up mail (records are buffered and written by
// one goroutine).
package tracking

import (
	"log/slog"
	"time"

	"github.com/sluice-relay/sluice/internal/dailyfile"
	"github.com/sluice-relay/sluice/internal/logqueue"
	"github.com/sluice-relay/sluice/internal/mail"
)

// EventType is what happened.
type EventType string

const (
	EventReceive  EventType = "RECEIVE"  // accepted from a client (250 after DATA)
	EventSubmit   EventType = "SUBMIT"   // queued for its next hops
	EventSend     EventType = "SEND"     // the next hop took it for a recipient
	EventDefer    EventType = "DEFER"    // a temporary failure; will retry
	EventFail     EventType = "FAIL"     // refused for good (by us at RCPT, or by the next hop)
	EventDSN      EventType = "DSN"      // a delivery status notification was generated
	EventExpire   EventType = "EXPIRE"   // waited longer than its lifetime
	EventDelete   EventType = "DELETE"   // removed by an operator
	EventRedirect EventType = "REDIRECT" // sent to another recipient or queue by an operator
)

// Event is one tracking record.
type Event struct {
	Time       time.Time `json:"time"`
	Event      EventType `json:"event"`
	Source     string    `json:"source"`               // SMTP (receive), QUEUE, DELIVERY, ADMIN
	ID         mail.ID   `json:"msg,omitempty"`        // Sluice's id
	MessageID  string    `json:"message_id,omitempty"` // the Message-ID header
	Sender     string    `json:"sender,omitempty"`
	Recipients []string  `json:"recipients,omitempty"`
	Connector  string    `json:"connector,omitempty"` // receive or send connector
	ClientIP   string    `json:"client_ip,omitempty"`
	ClientName string    `json:"client_hostname,omitempty"` // EHLO name
	AuthUser   string    `json:"auth_user,omitempty"`
	NextHop    string    `json:"next_hop,omitempty"` // queue identity
	Host       string    `json:"host,omitempty"`     // upstream that answered
	Reply      string    `json:"reply,omitempty"`    // the reply given or received, verbatim
	Size       int64     `json:"size,omitempty"`
	Related    mail.ID   `json:"related,omitempty"` // e.g. the DSN's id on a DSN event
	Session    string    `json:"session,omitempty"`
}

// Valid reports whether t is one of the event types above.
func (t EventType) Valid() bool {
	switch t {
	case EventReceive, EventSubmit, EventSend, EventDefer, EventFail, EventDSN, EventExpire, EventDelete, EventRedirect:
		return true
	}
	return false
}

// Log writes tracking records. A nil *Log records nothing.
type Log struct {
	log *slog.Logger
	// q holds what waits for the writer. A delivery cut off at shutdown
	// may still record after the log closed; that record is dropped.
	q      *logqueue.Queue[request]
	losses logqueue.Losses // records dropped for a full queue
	done   chan struct{}
	now    func() time.Time // the clock for events without a time, and for the retention
}

// request is an event for the writer, or a Flush waiting for it.
type request struct {
	e       Event
	flushed chan struct{} // not nil: a Flush; closed once the file has what came before
}

// Open starts a tracking log in dir, keeping files for retention (0: for
// ever).
func Open(dir string, retention time.Duration, log *slog.Logger) (*Log, error) {
	return open(dir, retention, log, time.Now)
}

// open is Open with a clock, for tests that cross midnight.
func open(dir string, retention time.Duration, log *slog.Logger, now func() time.Time) (*Log, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dw, err := dailyfile.New(dir, "track", ".jsonl", retention, log, now)
	if err != nil {
		return nil, err
	}
	l := &Log{log: log, q: logqueue.New[request](8192), done: make(chan struct{}), now: now}
	go l.writer(dw)
	return l, nil
}

// Record appends an event. It does not block on the disk; if the buffer
// is full (the disk stalls) the record is dropped, and that is logged
// once per stall.
func (l *Log) Record(e Event) {
	if l == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	if full := l.q.Put(request{e: e}); full && l.losses.Add() {
		l.log.Error("tracking log is behind; records are dropped until it catches up", "event", string(e.Event), "msg", e.ID)
	}
}

// Flush returns once every event recorded before it is in the files, for
// a reader (Search, sluice track) to see. It waits behind a full buffer
// rather than drop; after Close it returns at once.
func (l *Log) Flush() {
	if l == nil {
		return
	}
	flushed := make(chan struct{})
	if l.q.PutAlways(request{flushed: flushed}) {
		<-flushed
	}
}

// Close writes what is buffered, closes the file and stops; events
// recorded after it are dropped.
func (l *Log) Close() {
	if l == nil {
		return
	}
	l.q.Close()
	<-l.done
}

// fileFor names the day's file: track-YYYYMMDD.jsonl (UTC).
func fileFor(t time.Time) string { return dailyfile.Name("track", ".jsonl", t) }

// files lists the tracking files in dir, oldest first.
func files(dir string) []string { return dailyfile.Files(dir, "track", ".jsonl") }

func (l *Log) writer(dw *dailyfile.Writer) {
	defer close(l.done)
	defer dw.Close()
	var line []byte
	flush := func() {
		dw.Flush()
		if n := l.losses.Take(); n > 0 {
			l.log.Error("tracking log caught up; records were dropped", "records", n)
		}
	}
	l.q.Serve(200*time.Millisecond, flush, func(r request) {
		if r.flushed != nil {
			dw.Flush()
			close(r.flushed)
			return
		}
		line = appendRecord(line[:0], &r.e)
		dw.Write(r.e.Time, line)
	})
}
