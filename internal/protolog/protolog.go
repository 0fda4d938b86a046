// Package protolog owns the protocol log: when a connector has
// protocol_log on, every line of each SMTP session it serves or makes,
// with a timestamp, so "what did port 25 advertise?" and "what did
// Microsoft answer?" are answered without a network trace (seeds 000, 002).
// AUTH payloads are masked by the caller before they reach a Session (the
// caller knows when it is inside AUTH); this package writes what it gets.
// One file per direction per day, in Exchange's CSV shape:
//
//	date-time,connector,session,local,remote,event,data
//
// event is + (connect), - (disconnect), > (sent by Sluice), < (received),
// * (information).
package protolog

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sluice-relay/sluice/internal/dailyfile"
)

// Log is one direction's protocol log ("receive" or "send"). A nil *Log
// logs nothing.
type Log struct {
	log    *slog.Logger
	ch     chan record
	done   chan struct{}
	once   sync.Once
	mu     sync.RWMutex // orders writes against Close (see tracking.Log)
	closed bool
}

// record is one line and the time that decides its file.
type record struct {
	at   time.Time
	line string
}

// Open starts a protocol log writing files prefix-YYYYMMDD.log in dir.
func Open(dir, prefix string, retention time.Duration, log *slog.Logger) (*Log, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dw, err := dailyfile.New(dir, prefix, ".log", retention, log, time.Now)
	if err != nil {
		return nil, err
	}
	l := &Log{log: log, ch: make(chan record, 16384), done: make(chan struct{})}
	go l.writer(dw)
	return l, nil
}

// Session is one SMTP conversation's log.
type Session struct {
	l                            *Log
	connector, id, local, remote string
}

// Session starts logging a conversation; nil when l is nil.
func (l *Log) Session(connector, id, local, remote string) *Session {
	if l == nil {
		return nil
	}
	s := &Session{l: l, connector: connector, id: id, local: local, remote: remote}
	s.write('+', "")
	return s
}

// Sent logs a line Sluice sent.
func (s *Session) Sent(line string) { s.write('>', line) }

// Received logs a line Sluice received.
func (s *Session) Received(line string) { s.write('<', line) }

// Note logs an event that is not a line on the wire (TLS negotiated, ...).
func (s *Session) Note(text string) { s.write('*', text) }

// Close logs the disconnect.
func (s *Session) Close() { s.write('-', "") }

func (s *Session) write(ev byte, data string) {
	if s == nil {
		return
	}
	now := time.Now()
	rec := record{at: now, line: fmt.Sprintf("%s,%s,%s,%s,%s,%c,%s", now.UTC().Format("2006-01-02T15:04:05.000Z"),
		csv(s.connector), s.id, s.local, s.remote, ev, csv(data))}
	s.l.mu.RLock()
	defer s.l.mu.RUnlock()
	if s.l.closed {
		return
	}
	select {
	case s.l.ch <- rec:
	default:
		s.l.log.Error("protocol log is behind; line dropped", "session", s.id)
	}
}

// csv quotes a field that contains a comma or quote, and never lets a CR
// or LF split a record.
func csv(s string) string {
	s = strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
	if strings.ContainsAny(s, `,"`) {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// Close writes what is buffered and stops.
func (l *Log) Close() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.ch)
		l.mu.Unlock()
	})
	<-l.done
}

func (l *Log) writer(dw *dailyfile.Writer) {
	defer close(l.done)
	defer dw.Close()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case rec, ok := <-l.ch:
			if !ok {
				return
			}
			dw.Write(rec.at, []byte(rec.line))
		case <-tick.C:
			dw.Flush()
		}
	}
}
