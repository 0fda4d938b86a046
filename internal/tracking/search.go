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
// message found is returned, so the result is each message's story.
type Query struct {
	Sender    string    // envelope sender, case-insensitive
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
// message id: once for the messages that match, once for the rest of
// their stories (the events that do not carry the address, and the DSN
// event that names a bounce through its related id). It is built for
// logs of millions of records:
//   - files outside [Since, Until] are not opened, and the days are read
//     in parallel, one goroutine per CPU;
//   - a query's addresses are found with one case-insensitive byte search
//     over each megabyte of the file, not per line, and only the lines
//     found are decoded;
//   - the second pass looks up each line's message id in a set;
//   - a query without addresses stops reading once the days it has read
//     hold Limit events: later days only hold later events.
func Search(dir string, q Query) ([]Event, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	names := window(files(dir), q.Since, q.Until)
	pf := q.prefilter()
	if q.Sender == "" && q.Recipient == "" && q.MessageID == "" {
		// No addresses: one pass, and the events that pass are the answer.
		return collect(dir, names, q, pf, q.matches)
	}
	// Pass 1: the messages that match, and refusals (no message id) as is.
	ids := make([]map[mail.ID]bool, len(names))
	refusals := make([]*earliest, len(names))
	for i := range names {
		ids[i], refusals[i] = map[mail.ID]bool{}, &earliest{limit: q.Limit}
	}
	err := scan(dir, names, scanSpec{pf: q.windowed(pf), visit: func(i int, line []byte) {
		if ids[i][mail.ID(field(line, msgKey))] {
			return // a message already found: a busy sender's mail is mostly this
		}
		var e Event
		switch {
		case json.Unmarshal(line, &e) != nil, !q.matches(&e):
		case e.ID == "":
			refusals[i].add(e)
		default:
			ids[i][e.ID] = true
		}
	}})
	if err != nil {
		return nil, err
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
	if len(all) > 0 {
		// Pass 2: the whole story of each message found.
		pf2 := prefilter{ids: all}
		if len(all) == 1 {
			// One message (a search by message id): search the blocks
			// for its id rather than look at every line's.
			for id := range all {
				pf2.exact = append(pf2.exact, []byte(`"`+id+`"`))
			}
		}
		if q.Event != "" {
			pf2.exact = append(pf2.exact, eventKey(q.Event))
		}
		stories, err := collect(dir, names, q, pf2, func(e *Event) bool {
			return (all[string(e.ID)] || all[string(e.Related)]) && q.inWindow(e) && (q.Event == "" || e.Event == q.Event)
		})
		if err != nil {
			return nil, err
		}
		for _, e := range stories {
			out.add(e)
		}
	}
	return out.events(), nil
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
