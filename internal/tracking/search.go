package tracking

import (
	"encoding/json"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-relay/sluice/internal/mail"
)

// Query selects events. Empty fields match everything. A match on sender,
// recipient or message id selects whole messages: every event of each
// message found is returned, so the result is each message's story. A
// notice (a DSN, itself a message) and the message it is about are
// found together: finding either gives both stories.
type Query struct {
	Sender    string    // envelope sender, case-insensitive; "<>" or MAILER-DAEMON: the null sender of notices
	Recipient string    // a recipient, case-insensitive
	MessageID string    // the Message-ID header (with or without <>) or Sluice's id
	Event     EventType // only this kind of event
	Since     time.Time
	Until     time.Time
	Limit     int // at most this many events, the earliest (0: 10000)
}

// DefaultLimit is how many events a Query without a Limit returns.
const DefaultLimit = 10000

// Search reads the tracking files in dir and returns the matching events
// in time order, at most q.Limit of them (the earliest).
//
// It reads the files twice when the query names a sender, recipient or
// message id: once for the events that match, which give the messages
// sought (the event's own id, and its related id: the notice a DSN event
// names, the message a notice's event is about), once for the whole
// stories of those messages and of the notices about them (which are
// related to them). A third time only for the notices Sluice recorded
// before their events named the message they are about: that message's
// DSN event leads to the rest of its story. It is built for logs of
// millions of records:
//   - files outside [Since, Until] are not opened, and the days are read
//     in parallel, one goroutine per CPU;
//   - a query's addresses are found with one case-insensitive byte search
//     over each megabyte of the file, not per line, and only the lines
//     found are decoded;
//   - the second pass looks up each line's id (and its rare related id)
//     in a set, even for one message: that costs less than searching
//     the blocks for an id, since the ids of a day share their first
//     characters (the time they were made), and it stays so for the two
//     ids of a message and its notice;
//   - a query without addresses stops reading once the days it has read
//     hold Limit events: later days only hold later events.
//
// In memory it holds the ids of the messages found and, per day read,
// at most twice Limit events, however large the files.
func Search(dir string, q Query) ([]Event, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	if strings.EqualFold(q.Sender, "MAILER-DAEMON") {
		// How mail systems name the null sender; no envelope sender
		// is a bare local part but postmaster (mail.ParseMailbox).
		q.Sender = mail.Null.String()
	}
	names := window(files(dir), q.Since, q.Until)
	pf := q.prefilter()
	if q.Sender == "" && q.Recipient == "" && q.MessageID == "" {
		// No addresses: one pass, and the events that pass are the answer.
		return collect(dir, names, q, pf, q.matches)
	}
	// Pass 1: the messages that match, and refusals (no message id) as is.
	sought, out, err := find(dir, names, q, pf)
	if err != nil {
		return nil, err
	}
	if len(sought) == 0 {
		return out.events(), nil
	}
	// Pass 2: the whole story of each message found, and of the notices
	// about them, which are related to them.
	evs, err := q.stories(dir, names, sought, func(e *Event) bool {
		return sought[string(e.ID)] || sought[string(e.Related)]
	})
	if err != nil {
		return nil, err
	}
	// Pass 3, only for notices Sluice recorded before their events named
	// the message they are about: that message came in by its DSN event
	// naming a notice found, alone; read the rest of its story.
	older := map[string]bool{}
	for _, e := range evs {
		if e.Event == EventDSN && !sought[string(e.ID)] && sought[string(e.Related)] {
			older[string(e.ID)] = true
		}
	}
	if len(older) > 0 {
		rest, err := q.stories(dir, names, older, func(e *Event) bool {
			return older[string(e.ID)] && !sought[string(e.Related)] // its DSN events are in evs
		})
		if err != nil {
			return nil, err
		}
		evs = append(evs, rest...)
	}
	for _, e := range evs {
		out.add(e)
	}
	return out.events(), nil
}

// find is the first pass: the ids of the messages with an event q
// matches and the ids related to those events, and the earliest
// refusals (events without a message) q matches.
func find(dir string, names []string, q Query, pf prefilter) (map[string]bool, *earliest, error) {
	ids := make([]map[mail.ID]bool, len(names))
	refusals := make([]*earliest, len(names))
	for i := range names {
		ids[i], refusals[i] = map[mail.ID]bool{}, &earliest{limit: q.Limit}
	}
	err := scan(dir, names, scanSpec{pf: q.windowed(pf), visit: func(i int, line []byte) {
		if ids[i][mail.ID(field(line, msgKey))] {
			// A message already found: a busy sender's mail is mostly
			// this. Its notices are related to it, so the second pass
			// finds them without the related id of its DSN events.
			return
		}
		var e Event
		switch {
		case json.Unmarshal(line, &e) != nil, !q.matches(&e):
		case e.ID == "":
			refusals[i].add(e)
		default:
			ids[i][e.ID] = true
			if e.Related != "" {
				ids[i][e.Related] = true
			}
		}
	}})
	if err != nil {
		return nil, nil, err
	}
	all := map[string]bool{}
	for _, m := range ids {
		for id := range m {
			all[string(id)] = true
		}
	}
	out := &earliest{limit: q.Limit}
	for _, r := range refusals {
		out.merge(r)
	}
	return all, out, nil
}

// stories returns the earliest events in q's window (and of its kind)
// whose own or related id is one of ids and that of keeps.
func (q Query) stories(dir string, names []string, ids map[string]bool, of func(*Event) bool) ([]Event, error) {
	pf := prefilter{ids: ids}
	if q.Event != "" {
		pf.exact = append(pf.exact, eventKey(q.Event))
	}
	return collect(dir, names, q, pf, func(e *Event) bool {
		return of(e) && q.inWindow(e) && (q.Event == "" || e.Event == q.Event)
	})
}

// collect returns the earliest Limit events of the files that pass pf
// and keep, stopping early once the first files read hold enough.
func collect(dir string, names []string, q Query, pf prefilter, keep func(*Event) bool) ([]Event, error) {
	found := make([]*earliest, len(names))
	for i := range found {
		found[i] = &earliest{limit: q.Limit}
	}
	full := func(k int) bool {
		n := 0
		for _, f := range found[:k+1] {
			n += len(f.evs)
		}
		return n >= q.Limit
	}
	err := scan(dir, names, scanSpec{
		pf: q.windowed(pf),
		visit: func(i int, line []byte) {
			var e Event
			if json.Unmarshal(line, &e) == nil && keep(&e) {
				found[i].add(e)
			}
		},
		full:   full,
		cutoff: func(i int) time.Time { return found[i].cut },
	})
	if err != nil {
		return nil, err
	}
	out := &earliest{limit: q.Limit}
	for _, f := range found {
		out.merge(f)
	}
	return out.events(), nil
}

// prefilter is what a line must contain to be worth decoding.
func (q Query) prefilter() prefilter {
	var pf prefilter
	for _, s := range []string{q.Sender, q.Recipient, strings.Trim(q.MessageID, "<>")} {
		if s != "" {
			if n := foldNeedle(s); len(n) > 0 {
				pf.fold = append(pf.fold, n)
			}
		}
	}
	if q.Event != "" {
		pf.exact = append(pf.exact, eventKey(q.Event))
	}
	return pf
}

// windowed adds the time window for the files where it cuts the day.
func (q Query) windowed(pf prefilter) prefilter {
	pf.since, pf.until = q.Since, q.Until
	return pf
}

func eventKey(t EventType) []byte { return []byte(`"event":"` + string(t) + `"`) }

func (q Query) inWindow(e *Event) bool {
	return (q.Since.IsZero() || !e.Time.Before(q.Since)) && (q.Until.IsZero() || !e.Time.After(q.Until))
}

func (q Query) matches(e *Event) bool {
	if !q.inWindow(e) || (q.Event != "" && e.Event != q.Event) {
		return false
	}
	if q.Sender != "" && !equalFold(e.Sender, q.Sender) {
		return false
	}
	if q.Recipient != "" {
		found := false
		for _, r := range e.Recipients {
			if equalFold(r, q.Recipient) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if q.MessageID != "" {
		mid := strings.Trim(q.MessageID, "<>")
		if !equalFold(strings.Trim(e.MessageID, "<>"), mid) && !equalFold(string(e.ID), q.MessageID) {
			return false
		}
	}
	return true
}

// equalFold is strings.EqualFold except that an ASCII letter matches
// only ASCII: the prefilter folds ASCII only, so "kelvin@x" must not
// match "\u212Aelvin@x" (KELVIN SIGN), nor "s" match "\u017F" (LONG S).
// They are other addresses anyway, look-alikes.
func equalFold(a, b string) bool {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		a, b = a[na:], b[nb:]
		if ra == rb {
			continue
		}
		if (ra < utf8.RuneSelf) != (rb < utf8.RuneSelf) || !strings.EqualFold(string(ra), string(rb)) {
			return false
		}
	}
	return a == b
}

// window keeps the daily files that can hold events in [since, until].
func window(names []string, since, until time.Time) []string {
	var out []string
	for _, n := range names {
		if !since.IsZero() && n < fileFor(since) {
			continue
		}
		if !until.IsZero() && n > fileFor(until) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// earliest keeps the limit earliest events it is given, in time order;
// events at the same time keep the order they were added in. It holds at
// most twice the limit, however many it is given.
type earliest struct {
	limit int
	evs   []Event
	cut   time.Time // once it holds limit events: the latest of them
}

func (c *earliest) add(e Event) {
	c.evs = append(c.evs, e)
	if len(c.evs) >= 2*c.limit {
		c.trim()
	}
}

func (c *earliest) merge(o *earliest) {
	for _, e := range o.evs {
		c.add(e)
	}
}

func (c *earliest) trim() {
	sort.SliceStable(c.evs, func(i, j int) bool { return c.evs[i].Time.Before(c.evs[j].Time) })
	if len(c.evs) > c.limit {
		c.evs = append([]Event(nil), c.evs[:c.limit]...)
	}
	if len(c.evs) == c.limit {
		c.cut = c.evs[c.limit-1].Time
	}
}

func (c *earliest) events() []Event {
	c.trim()
	return c.evs
}
