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
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

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

// Log writes tracking records. A nil *Log records nothing.
type Log struct {
	dir       string
	retention time.Duration
	log       *slog.Logger
	ch        chan Event
	done      chan struct{}
	closeOnce sync.Once
	// mu orders Record against Close: a delivery cut off at shutdown may
	// still record after the log closed; that record is dropped, not a
	// send on a closed channel.
	mu     sync.RWMutex
	closed bool
	now    func() time.Time
}

// Open starts a tracking log in dir, keeping files for retention.
func Open(dir string, retention time.Duration, log *slog.Logger) (*Log, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("tracking log: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Log{dir: dir, retention: retention, log: log, ch: make(chan Event, 8192), done: make(chan struct{}), now: time.Now}
	go l.writer()
	return l, nil
}

// Record appends an event. It does not block on the disk; if the buffer
// is full (the disk stalls) the record is dropped and that is logged.
func (l *Log) Record(e Event) {
	if l == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	select {
	case l.ch <- e:
	default:
		l.log.Error("tracking log is behind; record dropped", "event", string(e.Event), "msg", e.ID)
	}
}

// Close writes what is buffered and stops.
func (l *Log) Close() {
	if l == nil {
		return
	}
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.ch)
		l.mu.Unlock()
	})
	<-l.done
}

// fileFor names the day's file: track-YYYYMMDD.jsonl (UTC).
func fileFor(t time.Time) string { return "track-" + t.UTC().Format("20060102") + ".jsonl" }

func (l *Log) writer() {
	defer close(l.done)
	var f *os.File
	var w *bufio.Writer
	var enc *json.Encoder
	var day string
	flush := time.NewTicker(200 * time.Millisecond)
	defer flush.Stop()
	closeFile := func() {
		if f != nil {
			w.Flush()
			f.Close()
			f = nil
		}
	}
	defer closeFile()
	l.prune()
	for {
		select {
		case e, ok := <-l.ch:
			if !ok {
				return
			}
			if name := fileFor(e.Time); name != day {
				closeFile()
				var err error
				f, err = os.OpenFile(filepath.Join(l.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
				if err != nil {
					l.log.Error("cannot open tracking log", "err", err)
					continue
				}
				w, day = bufio.NewWriterSize(f, 64<<10), name
				// Addresses and Message-IDs stay greppable as written:
				// no \u003c for "<".
				enc = json.NewEncoder(w)
				enc.SetEscapeHTML(false)
				l.prune()
			}
			enc.Encode(e)
		case <-flush.C:
			if w != nil {
				if err := w.Flush(); err != nil {
					l.log.Error("cannot write tracking log", "err", err)
				}
			}
		}
	}
}

// prune deletes files older than the retention.
func (l *Log) prune() {
	if l.retention <= 0 {
		return
	}
	cutoff := fileFor(l.now().Add(-l.retention))
	for _, name := range files(l.dir) {
		if name < cutoff {
			if err := os.Remove(filepath.Join(l.dir, name)); err == nil {
				l.log.Info("tracking log file past retention removed", "file", name)
			}
		}
	}
}

// files lists the tracking files in dir, oldest first.
func files(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "track-") && strings.HasSuffix(e.Name(), ".jsonl") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}
