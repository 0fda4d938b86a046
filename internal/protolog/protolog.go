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
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Log is one direction's protocol log ("receive" or "send"). A nil *Log
// logs nothing.
type Log struct {
	dir       string
	prefix    string
	retention time.Duration
	log       *slog.Logger
	ch        chan string
	done      chan struct{}
	once      sync.Once
	mu        sync.RWMutex // orders writes against Close (see tracking.Log)
	closed    bool
}

// Open starts a protocol log writing files prefix-YYYYMMDD.log in dir.
func Open(dir, prefix string, retention time.Duration, log *slog.Logger) (*Log, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("protocol log: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Log{dir: dir, prefix: prefix, retention: retention, log: log, ch: make(chan string, 16384), done: make(chan struct{})}
	go l.writer()
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
	rec := fmt.Sprintf("%s,%s,%s,%s,%s,%c,%s", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		csv(s.connector), s.id, s.local, s.remote, ev, csv(data))
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

func (l *Log) writer() {
	defer close(l.done)
	var f *os.File
	var w *bufio.Writer
	var day string
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	closeFile := func() {
		if f != nil {
			w.Flush()
			f.Close()
			f = nil
		}
	}
	defer closeFile()
	for {
		select {
		case rec, ok := <-l.ch:
			if !ok {
				return
			}
			if d := rec[:10]; d != day {
				closeFile()
				name := filepath.Join(l.dir, l.prefix+"-"+strings.ReplaceAll(d, "-", "")+".log")
				var err error
				if f, err = os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); err != nil {
					l.log.Error("cannot open protocol log", "err", err)
					continue
				}
				w, day = bufio.NewWriterSize(f, 64<<10), d
				l.prune()
			}
			w.WriteString(rec)
			w.WriteByte('\n')
		case <-tick.C:
			if w != nil {
				w.Flush()
			}
		}
	}
}

// prune removes files older than the retention.
func (l *Log) prune() {
	if l.retention <= 0 {
		return
	}
	cutoff := l.prefix + "-" + time.Now().UTC().Add(-l.retention).Format("20060102") + ".log"
	entries, _ := os.ReadDir(l.dir)
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), l.prefix+"-") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if n < cutoff {
			os.Remove(filepath.Join(l.dir, n))
		}
	}
}
