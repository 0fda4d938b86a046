package tracking

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// Query selects events. Empty fields match everything. A match on sender,
// recipient or message id selects whole messages: every event of each
// message found is returned, so the result is each message's story.
type Query struct {
	Sender    string    // envelope sender, case-insensitive
	Recipient string    // a recipient, case-insensitive
	MessageID string    // the Message-ID header or Sluice's id
	Event     EventType // only this kind of event
	Since     time.Time
	Until     time.Time
	Limit     int // at most this many events (0: 10000)
}

// Search reads the tracking files in dir and returns the matching events
// in time order. Files outside [Since, Until] are not opened, and each
// line is checked with a byte search before it is decoded, so searching
// millions of records takes seconds at most.
func Search(dir string, q Query) ([]Event, error) {
	if q.Limit == 0 {
		q.Limit = 10000
	}
	names := window(files(dir), q.Since, q.Until)
	needles := q.needles()
	ids := map[mail.ID]bool{}
	var direct []Event
	// Pass 1: events that match, and the messages they belong to.
	err := scan(dir, names, containsAnyFold(needles), func(e *Event) {
		if !q.matches(e) {
			return
		}
		if e.ID != "" && (q.Sender != "" || q.Recipient != "" || q.MessageID != "") {
			ids[e.ID] = true
		}
		direct = append(direct, *e)
	})
	if err != nil {
		return nil, err
	}
	out := direct
	if len(ids) > 0 {
		// Pass 2: the rest of those messages' stories.
		out = nil
		err = scan(dir, names, aboutMessages(ids), func(e *Event) {
			if (ids[e.ID] || ids[e.Related]) && q.inWindow(e) && (q.Event == "" || e.Event == q.Event) {
				out = append(out, *e)
			}
		})
		if err != nil {
			return nil, err
		}
		for _, e := range direct {
			if e.ID == "" { // refusals at RCPT have no message
				out = append(out, e)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (q Query) needles() [][]byte {
	var n [][]byte
	for _, s := range []string{q.Sender, q.Recipient, strings.Trim(q.MessageID, "<>")} {
		if s != "" {
			n = append(n, []byte(strings.ToLower(s)))
		}
	}
	return n
}

func (q Query) inWindow(e *Event) bool {
	return (q.Since.IsZero() || !e.Time.Before(q.Since)) && (q.Until.IsZero() || !e.Time.After(q.Until))
}

func (q Query) matches(e *Event) bool {
	if !q.inWindow(e) || (q.Event != "" && e.Event != q.Event) {
		return false
	}
	if q.Sender != "" && !strings.EqualFold(e.Sender, q.Sender) {
		return false
	}
	if q.Recipient != "" {
		found := false
		for _, r := range e.Recipients {
			if strings.EqualFold(r, q.Recipient) {
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
		if !strings.EqualFold(strings.Trim(e.MessageID, "<>"), mid) && string(e.ID) != q.MessageID {
			return false
		}
	}
	return true
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

// scan decodes the lines of the files that keep accepts (nil: all) and
// calls fn for each. keep sees raw lines: it must be cheap, since it runs
// on every record, and only what it keeps is decoded.
func scan(dir string, names []string, keep func([]byte) bool, fn func(*Event)) error {
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return err
		}
		sc := bufio.NewScanner(bufio.NewReaderSize(f, 1<<20))
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if keep != nil && !keep(line) {
				continue
			}
			var e Event
			if json.Unmarshal(line, &e) == nil {
				fn(&e)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// containsAnyFold keeps lines that contain one of the (lower-case)
// needles in any case. It lower-cases into one reused buffer.
func containsAnyFold(needles [][]byte) func([]byte) bool {
	if len(needles) == 0 {
		return nil
	}
	var buf []byte
	return func(line []byte) bool {
		buf = append(buf[:0], line...)
		for i, c := range buf {
			if 'A' <= c && c <= 'Z' {
				buf[i] = c + 'a' - 'A'
			}
		}
		for _, n := range needles {
			if bytes.Contains(buf, n) {
				return true
			}
		}
		return false
	}
}

// aboutMessages keeps the records of the given messages (by their "msg"
// or "related" field), looking the ids up instead of searching each line
// for each of them.
func aboutMessages(ids map[mail.ID]bool) func([]byte) bool {
	set := make(map[string]bool, len(ids))
	for id := range ids {
		set[string(id)] = true
	}
	return func(line []byte) bool {
		return set[string(field(line, `"msg":"`))] || set[string(field(line, `"related":"`))]
	}
}

// field returns the string value after key in a JSON line, or nil. Sluice
// ids need no escaping, so the value ends at the next quote.
func field(line []byte, key string) []byte {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return nil
	}
	v := line[i+len(key):]
	if j := bytes.IndexByte(v, '"'); j >= 0 {
		return v[:j]
	}
	return nil
}
