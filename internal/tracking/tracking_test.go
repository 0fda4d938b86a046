package tracking

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/testclock"
)

func openAt(t *testing.T, dir string, retention time.Duration, c *testclock.Clock) *Log {
	t.Helper()
	l, err := open(dir, retention, nil, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// readFile decodes a tracking file, checking that it is one JSON object
// per line.
func readFile(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestRecordFlushClose(t *testing.T) {
	dir := t.TempDir()
	c := testclock.New(time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC))
	l := openAt(t, dir, 0, c)
	id := mail.NewID()
	full := Event{
		Time: time.Date(2026, 11, 24, 9, 29, 59, 123456789, time.UTC), Event: EventReceive, Source: "SMTP",
		ID: id, MessageID: "<x1@app.contoso.com>", Sender: "app@contoso.com", Recipients: []string{"bob@fabrikam.com", "carol@fabrikam.com"},
		Connector: "Apps", ClientIP: "10.0.0.5", ClientName: "erp01", AuthUser: "app@contoso.com",
		Reply: "250 2.6.0 Queued mail for delivery", Size: 10240, Session: "s1",
	}
	l.Record(full)
	l.Record(Event{Event: EventSubmit, ID: id, NextHop: "Exchange"}) // no time: the log's clock
	l.Flush()
	path := filepath.Join(dir, "track-20261124.jsonl")
	got := readFile(t, path)
	want := []Event{full, {Time: c.Now(), Event: EventSubmit, ID: id, NextHop: "Exchange"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after Flush the file holds\n%+v\nwant\n%+v", got, want)
	}

	l.Record(Event{Event: EventSend, ID: id, Recipients: []string{"bob@fabrikam.com"}, Reply: "250 2.0.0 OK"})
	l.Close()
	if got := readFile(t, path); len(got) != 3 || got[2].Event != EventSend {
		t.Errorf("after Close the file holds %+v; want the SEND too", got)
	}
	l.Flush()                         // after Close: returns
	l.Record(Event{Event: EventSend}) // a delivery cut off at shutdown: dropped, no panic
	l.Close()
	if got := readFile(t, path); len(got) != 3 {
		t.Errorf("a record after Close was written: %+v", got)
	}

	var nilLog *Log // tracking disabled
	nilLog.Record(Event{Event: EventSend})
	nilLog.Flush()
	nilLog.Close()
}

func TestFilesAreGreppable(t *testing.T) {
	dir := t.TempDir()
	c := testclock.New(time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC))
	l := openAt(t, dir, 0, c)
	l.Record(Event{Event: EventReceive, MessageID: "<m&1@x>", Sender: "a@b.c", Recipients: []string{`"john doe"@b.c`}, Reply: "250 ok\r\n"})
	l.Close()
	b, err := os.ReadFile(filepath.Join(dir, "track-20261124.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"message_id":"<m&1@x>"`, `"sender":"a@b.c"`, `"recipients":["\"john doe\"@b.c"]`, `"reply":"250 ok\r\n"}` + "\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the record should hold %s as written (< > & unescaped, one line):\n%s", want, b)
		}
	}
	if strings.Count(string(b), "\n") != 1 {
		t.Errorf("one record, one line:\n%s", b)
	}
}

// TestNoPasswords: a tracking record has no field that could hold a
// password or secret, and the fields it has never get one: the
// authenticated user is a name.
func TestNoPasswords(t *testing.T) {
	typ := reflect.TypeFor[Event]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name := strings.ToLower(f.Name + " " + f.Tag.Get("json"))
		for _, bad := range []string{"pass", "secret", "token", "credential", "auth_data", "key"} {
			if strings.Contains(name, bad) {
				t.Errorf("Event.%s (json %q) looks like it could hold a secret", f.Name, f.Tag.Get("json"))
			}
		}
	}
	b, err := json.Marshal(Event{AuthUser: "app@contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		if !slices.Contains([]string{"time", "event", "source", "auth_user"}, k) {
			t.Errorf("an event with only a user writes %q", k)
		}
	}
}

func TestNewFileEachDay(t *testing.T) {
	dir := t.TempDir()
	c := testclock.New(time.Date(2026, 11, 23, 23, 59, 59, 0, time.UTC))
	l := openAt(t, dir, 0, c)
	l.Record(Event{Event: EventReceive, Reply: "before midnight"})
	c.Set(time.Date(2026, 11, 24, 0, 0, 1, 0, time.UTC))
	l.Record(Event{Event: EventSubmit, Reply: "after midnight"})
	// A record's own time picks its file, even if it comes late.
	l.Record(Event{Time: time.Date(2026, 11, 23, 23, 59, 59, 500e6, time.UTC), Event: EventDefer, Reply: "late"})
	// A time in another zone is filed by its UTC day.
	l.Record(Event{Time: time.Date(2026, 11, 24, 0, 30, 0, 0, time.FixedZone("CET", 3600)), Event: EventSend, Reply: "CET"})
	l.Close()

	if got := files(dir); !slices.Equal(got, []string{"track-20261123.jsonl", "track-20261124.jsonl"}) {
		t.Fatalf("files %q", got)
	}
	replies := func(name string) []string {
		var out []string
		for _, e := range readFile(t, filepath.Join(dir, name)) {
			out = append(out, e.Reply)
		}
		return out
	}
	if got := replies("track-20261123.jsonl"); !slices.Equal(got, []string{"before midnight", "late", "CET"}) {
		t.Errorf("23rd: %q", got)
	}
	if got := replies("track-20261124.jsonl"); !slices.Equal(got, []string{"after midnight"}) {
		t.Errorf("24th: %q", got)
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	day := func(d int) time.Time { return time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC) }
	for d := 1; d <= 10; d++ {
		if err := os.WriteFile(filepath.Join(dir, fileFor(day(d))), []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := testclock.New(day(10))
	l := openAt(t, dir, 3*24*time.Hour, c)
	l.Record(Event{Event: EventSend})
	l.Flush()
	if got := files(dir); !slices.Equal(got, []string{"track-20261107.jsonl", "track-20261108.jsonl", "track-20261109.jsonl", "track-20261110.jsonl"}) {
		t.Errorf("on the 10th with 3 days' retention: %q", got)
	}
	c.Set(day(12)) // the log runs on: the next day's file prunes again
	l.Record(Event{Event: EventSend})
	l.Close()
	if got := files(dir); !slices.Equal(got, []string{"track-20261109.jsonl", "track-20261110.jsonl", "track-20261112.jsonl"}) {
		t.Errorf("on the 12th: %q", got)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file that is not a tracking file was removed: %v", err)
	}

	// Retention 0 keeps everything.
	l = openAt(t, dir, 0, testclock.New(day(30)))
	l.Record(Event{Event: EventSend})
	l.Close()
	if got := files(dir); len(got) != 4 {
		t.Errorf("retention 0 removed files: %q", got)
	}
}

func TestEventTypeValid(t *testing.T) {
	for _, e := range []EventType{EventReceive, EventSubmit, EventSend, EventDefer, EventFail, EventDSN, EventExpire, EventDelete, EventRedirect} {
		if !e.Valid() {
			t.Errorf("%s is not Valid", e)
		}
	}
	for _, e := range []EventType{"", "send", "BOUNCE"} {
		if e.Valid() {
			t.Errorf("%q is Valid", e)
		}
	}
}

// A file cut off in the middle of a record (Sluice killed while its
// buffer went to the disk) takes no later record with it: the next one
// starts a line of its own.
func TestRecordAfterTornLine(t *testing.T) {
	dir := t.TempDir()
	c := testclock.New(time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC))
	path := filepath.Join(dir, "track-20261124.jsonl")
	torn := `{"time":"2026-11-24T09:29:00Z","event":"RECEIVE","source":"SMTP","msg":"0aaaaaaaaaaaaaaa","sen`
	if err := os.WriteFile(path, []byte(torn), 0o640); err != nil {
		t.Fatal(err)
	}
	l := openAt(t, dir, 0, c)
	id := mail.NewID()
	l.Record(Event{Event: EventReceive, Source: "SMTP", ID: id, Sender: "app@contoso.com"})
	l.Close()
	got, err := Search(dir, Query{Sender: "app@contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != id {
		t.Fatalf("search after a torn line found %+v; want the new RECEIVE", got)
	}
}
