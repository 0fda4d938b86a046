// Package protolog owns the protocol log: when a connector has
// protocol_log on, every line of each SMTP session it serves or makes,
// with a timestamp, so "what did port 25 advertise?" and "what did
// Microsoft answer?" are answered without a network trace (seeds 000, 002).
// AUTH payloads are masked by the caller before they reach a Session (the
// caller knows when it is inside AUTH); a Session masks them again, in
// case a caller forgets: the initial response on an AUTH line, and the
// line that answers a 334 challenge.
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
	"github.com/sluice-relay/sluice/internal/logqueue"
)

// Log is one direction's protocol log ("receive" or "send"). A nil *Log
// logs nothing.
type Log struct {
	log    *slog.Logger
	q      *logqueue.Queue[record] // a line written after Close is dropped
	losses logqueue.Losses         // lines dropped for a full queue
	done   chan struct{}
	now    func() time.Time
}

// record is one line and the time that decides its file.
type record struct {
	at   time.Time
	line string
}

// Open starts a protocol log writing files prefix-YYYYMMDD.log in dir.
func Open(dir, prefix string, retention time.Duration, log *slog.Logger) (*Log, error) {
	return open(dir, prefix, retention, log, time.Now)
}

// open is Open with a clock, for tests that cross midnight.
func open(dir, prefix string, retention time.Duration, log *slog.Logger, now func() time.Time) (*Log, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dw, err := dailyfile.New(dir, prefix, ".log", retention, log, now)
	if err != nil {
		return nil, err
	}
	l := &Log{log: log, q: logqueue.New[record](16384), done: make(chan struct{}), now: now}
	go l.writer(dw)
	return l, nil
}

// Session is one SMTP conversation's log.
type Session struct {
	l  *Log
	id string
	// prefix is the connector, session, local and remote fields, quoted.
	prefix string

	mu sync.Mutex
	// secret is the direction ('<' or '>') whose next line answers a 334
	// challenge and is masked; 0 outside AUTH.
	secret byte
}

// Session starts logging a conversation; nil when l is nil.
func (l *Log) Session(connector, id, local, remote string) *Session {
	if l == nil {
		return nil
	}
	s := &Session{l: l, id: id, prefix: csv(connector) + "," + csv(id) + "," + csv(local) + "," + csv(remote)}
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
	data = s.mask(ev, data)
	now := s.l.now()
	rec := record{at: now, line: fmt.Sprintf("%s,%s,%c,%s", now.UTC().Format("2006-01-02T15:04:05.000Z"), s.prefix, ev, csv(data))}
	if full := s.l.q.Put(rec); full && s.l.losses.Add() {
		s.l.log.Error("protocol log is behind; lines are dropped until it catches up", "session", s.id)
	}
}

// mask hides AUTH secrets in a line on the wire: the initial response of
// an AUTH command (RFC 4954 §4), and the line that answers a 334
// challenge, in whichever direction: a client's username and password
// when Sluice serves, Sluice's own when it sends. "*" (the client
// cancels, RFC 4954 §4) is no secret and ends the exchange as well.
func (s *Session) mask(ev byte, data string) string {
	if ev != '<' && ev != '>' {
		return data
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secret == ev {
		s.secret = 0
		if data == "*" || data == "***" {
			return data
		}
		return "***"
	}
	if code, _, _ := strings.Cut(data, " "); code == "334" {
		s.secret = '<' + '>' - ev // the other side answers
		return data
	}
	if masked, ok := MaskAuth(data); ok {
		return masked
	}
	return data
}

// MaskAuth turns an AUTH line with an initial response into "AUTH <mech>
// ***". Fields are split at any white space, not only a space: a server
// takes "AUTH\tPLAIN\t<base64>" for no command at all, but its
// password is in the line all the same.
func MaskAuth(line string) (string, bool) {
	f := strings.Fields(line)
	if len(f) < 3 || !strings.EqualFold(f[0], "AUTH") || len(f) == 3 && f[2] == "***" {
		return line, false
	}
	return f[0] + " " + f[1] + " ***", true
}

// csv quotes a field that contains a comma or quote, never lets a CR or
// LF split a record, and writes other control characters but tab as \xNN:
// a NUL from a client or upstream would make grep take the whole day's
// file for binary, and an escape sequence would reach the admin's
// terminal.
func csv(s string) string {
	s = escapeControls(s)
	if strings.ContainsAny(s, `,"`) {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func escapeControls(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) })
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for _, c := range []byte(s[i:]) {
		switch {
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\n':
			b.WriteString(`\n`)
		case c != '\t' && (c < 0x20 || c == 0x7f):
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Close writes what is buffered and stops.
func (l *Log) Close() {
	if l == nil {
		return
	}
	l.q.Close()
	<-l.done
}

func (l *Log) writer(dw *dailyfile.Writer) {
	defer close(l.done)
	defer dw.Close()
	flush := func() {
		dw.Flush()
		if n := l.losses.Take(); n > 0 {
			l.log.Error("protocol log caught up; lines were dropped", "lines", n)
		}
	}
	l.q.Serve(200*time.Millisecond, flush, func(rec record) { dw.Write(rec.at, []byte(rec.line)) })
}
