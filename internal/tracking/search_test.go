package tracking

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// write appends events to their day files in dir as the Log does, in
// the order given.
func write(t *testing.T, dir string, es ...Event) {
	t.Helper()
	for _, e := range es {
		f, err := os.OpenFile(filepath.Join(dir, fileFor(e.Time)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Write(append(appendRecord(nil, &e), '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// story describes events as "EVENT msg-label" in order, labels naming
// the messages of the fixture.
func story(es []Event, labels map[mail.ID]string) string {
	var out []string
	for _, e := range es {
		s := string(e.Event)
		if l := labels[e.ID]; l != "" {
			s += " " + l
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// fixture is a log of a few messages whose stories cross midnight (two
// files), written partly out of time order as the log can be (RECEIVE
// carries the time the message came in, before its SUBMIT was recorded).
type fixture struct {
	dir         string
	a, b, c, nb mail.ID // a from App@Contoso.com; b from other@; c a second message from app@; nb the bounce of a
	labels      map[mail.ID]string
	at          func(s int) time.Time
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	f := fixture{dir: t.TempDir(), a: "0a000000000000aa", b: "0b000000000000bb", c: "0c000000000000cc", nb: "0d000000000000dd"}
	f.labels = map[mail.ID]string{f.a: "a", f.b: "b", f.c: "c", f.nb: "bounce"}
	t0 := time.Date(2026, 11, 23, 23, 59, 50, 0, time.UTC)
	f.at = func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	a := Event{ID: f.a, MessageID: "<X1@App.Contoso.com>", Sender: "App@Contoso.com"}
	with := func(base Event, e Event) Event {
		e.ID, e.MessageID, e.Sender = base.ID, base.MessageID, base.Sender
		if e.Related == "" {
			e.Related = base.Related
		}
		return e
	}
	both := []string{"bob@fabrikam.com", "gone@fabrikam.com"}
	b := Event{ID: f.b, MessageID: "<y@other>", Sender: "other@contoso.com"}
	c := Event{ID: f.c, MessageID: "<z@app>", Sender: "app@contoso.com"}
	// The bounce's events are related to a, as the queue writes them.
	nb := Event{ID: f.nb, MessageID: "<bounce-1@relay.contoso.com>", Sender: "<>", Related: f.a}
	write(t, f.dir,
		with(a, Event{Time: f.at(1), Event: EventSubmit, Source: "QUEUE", Recipients: both, NextHop: "Exchange"}),
		with(a, Event{Time: f.at(0), Event: EventReceive, Source: "SMTP", Recipients: both, Connector: "Apps", ClientIP: "10.0.0.5"}),
		with(b, Event{Time: f.at(2), Event: EventReceive, Source: "SMTP", Recipients: []string{"carol@fabrikam.com"}}),
		Event{Time: f.at(3), Event: EventFail, Source: "SMTP", Sender: "app@contoso.com", Recipients: []string{"x@elsewhere.example"},
			Reply: "550 5.7.54 Unable to relay recipient in non-accepted domain"},
		with(a, Event{Time: f.at(5), Event: EventDefer, Source: "DELIVERY", Recipients: both, Reply: "451 4.4.1 cannot connect"}),
		// midnight
		with(a, Event{Time: f.at(12), Event: EventSend, Source: "DELIVERY", Recipients: []string{"bob@fabrikam.com"}, Reply: "250 OK"}),
		with(a, Event{Time: f.at(13), Event: EventFail, Source: "DELIVERY", Recipients: []string{"gone@fabrikam.com"}, Reply: "550 5.1.1 unknown"}),
		with(nb, Event{Time: f.at(14), Event: EventSubmit, Source: "QUEUE", Recipients: []string{"App@Contoso.com"}}),
		with(a, Event{Time: f.at(14), Event: EventDSN, Source: "QUEUE", Recipients: []string{"gone@fabrikam.com"}, Related: f.nb, Reply: "failure"}),
		with(c, Event{Time: f.at(15), Event: EventReceive, Source: "SMTP", Recipients: []string{"dave@fabrikam.com"}}),
		with(nb, Event{Time: f.at(16), Event: EventSend, Source: "DELIVERY", Recipients: []string{"App@Contoso.com"}, Reply: "250 OK"}),
		with(c, Event{Time: f.at(17), Event: EventSend, Source: "DELIVERY", Recipients: []string{"dave@fabrikam.com"}}),
	)
	if got := files(f.dir); len(got) != 2 {
		t.Fatalf("files %q; want one per day", got)
	}
	return f
}

func TestSearch(t *testing.T) {
	f := newFixture(t)
	// a's story with its bounce's: a search that finds either shows both.
	const storyA = "RECEIVE a, SUBMIT a, DEFER a, SEND a, FAIL a, SUBMIT bounce, DSN a, SEND bounce"
	for _, tc := range []struct {
		name string
		q    Query
		want string
	}{
		{"sender: a's and c's stories, a's bounce, and the refused relay",
			Query{Sender: "app@contoso.com"}, "RECEIVE a, SUBMIT a, FAIL, DEFER a, SEND a, FAIL a, SUBMIT bounce, DSN a, RECEIVE c, SEND bounce, SEND c"},
		{"sender in another case", Query{Sender: "APP@CONTOSO.COM"},
			"RECEIVE a, SUBMIT a, FAIL, DEFER a, SEND a, FAIL a, SUBMIT bounce, DSN a, RECEIVE c, SEND bounce, SEND c"},
		{"a recipient: the whole story, the other recipient's events too", Query{Recipient: "bob@fabrikam.com"}, storyA},
		{"the failed recipient", Query{Recipient: "GONE@Fabrikam.com"}, storyA},
		{"the bounce's recipient: the bounce's story and the story of the message it is about",
			Query{Recipient: "app@contoso.com"}, storyA},
		{"the bounce's sender", Query{Sender: "<>"}, storyA},
		{"the bounce's sender as MAILER-DAEMON", Query{Sender: "mailer-daemon"}, storyA},
		{"Message-ID with <>", Query{MessageID: "<x1@app.contoso.com>"}, storyA},
		{"Message-ID without <>", Query{MessageID: "X1@APP.CONTOSO.COM"}, storyA},
		{"Sluice's id", Query{MessageID: string(f.a)}, storyA},
		{"Sluice's id in capitals", Query{MessageID: strings.ToUpper(string(f.a))}, storyA},
		{"the bounce's id", Query{MessageID: string(f.nb)}, storyA},
		{"the bounce's Message-ID", Query{MessageID: "<bounce-1@relay.contoso.com>"}, storyA},
		{"the bounce's delivery alone in the window", Query{Recipient: "app@contoso.com", Since: f.at(16)}, "SEND bounce"},
		{"the DSN alone in the window", Query{Recipient: "gone@fabrikam.com", Since: f.at(14), Until: f.at(14)}, "SUBMIT bounce, DSN a"},
		{"sender and recipient", Query{Sender: "app@contoso.com", Recipient: "dave@fabrikam.com"}, "RECEIVE c, SEND c"},
		{"sender and a recipient not theirs", Query{Sender: "other@contoso.com", Recipient: "bob@fabrikam.com"}, ""},
		{"a part of an address is not the address", Query{Sender: "pp@contoso.com"}, ""},
		{"no match", Query{Sender: "nobody@contoso.com"}, ""},
		{"one kind of event of the messages found", Query{Sender: "app@contoso.com", Event: EventSend}, "SEND a, SEND bounce, SEND c"},
		{"one kind of event", Query{Event: EventReceive}, "RECEIVE a, RECEIVE b, RECEIVE c"},
		{"everything", Query{}, "RECEIVE a, SUBMIT a, RECEIVE b, FAIL, DEFER a, SEND a, FAIL a, SUBMIT bounce, DSN a, RECEIVE c, SEND bounce, SEND c"},
		{"since: the rest of the story", Query{Sender: "app@contoso.com", Since: f.at(5)},
			"DEFER a, SEND a, FAIL a, SUBMIT bounce, DSN a, RECEIVE c, SEND bounce, SEND c"},
		{"until: the story so far", Query{Sender: "app@contoso.com", Until: f.at(3)}, "RECEIVE a, SUBMIT a, FAIL"},
		{"a window inside one day", Query{Since: f.at(13), Until: f.at(14)}, "FAIL a, SUBMIT bounce, DSN a"},
		{"a window with nothing", Query{Sender: "app@contoso.com", Since: f.at(100)}, ""},
		{"limit: the earliest", Query{Sender: "app@contoso.com", Limit: 4}, "RECEIVE a, SUBMIT a, FAIL, DEFER a"},
		{"limit without addresses", Query{Limit: 3}, "RECEIVE a, SUBMIT a, RECEIVE b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Search(f.dir, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if s := story(got, f.labels); s != tc.want {
				t.Errorf("got  %s\nwant %s", s, tc.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Time.Before(got[i-1].Time) {
					t.Errorf("not in time order: %v before %v", got[i-1].Time, got[i].Time)
				}
			}
		})
	}
	// The whole event comes back, not just the fields searched.
	got, err := Search(f.dir, Query{MessageID: string(f.a), Event: EventDSN})
	if err != nil || len(got) != 1 || got[0].Related != f.nb || got[0].Reply != "failure" || got[0].Sender != "App@Contoso.com" {
		t.Errorf("DSN event: %+v, %v", got, err)
	}
}

// TestSearchNoticeWithoutRelated: a notice recorded before its events
// named the message they are about is still found with that message's
// whole story, which the message's DSN event names.
func TestSearchNoticeWithoutRelated(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	a, nb := mail.ID("0a000000000000aa"), mail.ID("0d000000000000dd")
	write(t, dir,
		Event{Time: t0, Event: EventReceive, ID: a, Sender: "app@contoso.com", Recipients: []string{"gone@fabrikam.com"}},
		Event{Time: t0.Add(time.Second), Event: EventFail, ID: a, Sender: "app@contoso.com", Recipients: []string{"gone@fabrikam.com"}},
		Event{Time: t0.Add(2 * time.Second), Event: EventSubmit, ID: nb, MessageID: "<bounce-1@relay.contoso.com>", Sender: "<>",
			Recipients: []string{"app@contoso.com"}},
		Event{Time: t0.Add(2 * time.Second), Event: EventDSN, ID: a, Sender: "app@contoso.com", Related: nb},
		Event{Time: t0.Add(3 * time.Second), Event: EventSend, ID: nb, MessageID: "<bounce-1@relay.contoso.com>", Sender: "<>",
			Recipients: []string{"app@contoso.com"}},
		Event{Time: t0.Add(4 * time.Second), Event: EventDelete, ID: a, Sender: "app@contoso.com"},
	)
	labels := map[mail.ID]string{a: "a", nb: "bounce"}
	for _, tc := range []struct {
		q    Query
		want string
	}{
		{Query{MessageID: strings.ToUpper(string(nb))}, "RECEIVE a, FAIL a, SUBMIT bounce, DSN a, SEND bounce, DELETE a"},
		{Query{MessageID: "<bounce-1@relay.contoso.com>"}, "RECEIVE a, FAIL a, SUBMIT bounce, DSN a, SEND bounce, DELETE a"},
		{Query{Sender: "<>"}, "RECEIVE a, FAIL a, SUBMIT bounce, DSN a, SEND bounce, DELETE a"},
		{Query{Sender: "<>", Until: t0.Add(2 * time.Second)}, "RECEIVE a, FAIL a, SUBMIT bounce, DSN a"},
		{Query{Recipient: "app@contoso.com", Event: EventSend}, "SEND bounce"},
		{Query{Recipient: "gone@fabrikam.com"}, "RECEIVE a, FAIL a, DSN a, DELETE a"},
	} {
		got, err := Search(dir, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if s := story(got, labels); s != tc.want {
			t.Errorf("%+v:\ngot  %s\nwant %s", tc.q, s, tc.want)
		}
	}
}

// TestSearchManyStories: the stories of a few messages are looked for by
// their ids in the whole blocks, those of many line by line; both give
// every event of each message and of its notice, and nothing else.
func TestSearchManyStories(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var es []Event
	for i := range 24 {
		id, nb := mail.ID(fmt.Sprintf("0m%014d", i)), mail.ID(fmt.Sprintf("0n%014d", i))
		sender := fmt.Sprintf("app%d@contoso.com", i%2)
		at := t0.Add(time.Duration(i) * time.Minute)
		es = append(es,
			Event{Time: at, Event: EventReceive, ID: id, Sender: sender, Recipients: []string{fmt.Sprintf("user%d@fabrikam.com", i)}},
			Event{Time: at.Add(time.Second), Event: EventFail, ID: id, Sender: sender, Recipients: []string{fmt.Sprintf("user%d@fabrikam.com", i)}},
			Event{Time: at.Add(2 * time.Second), Event: EventDSN, ID: id, Sender: sender, Related: nb},
			Event{Time: at.Add(2 * time.Second), Event: EventSend, ID: nb, Sender: "<>", Recipients: []string{sender}, Related: id},
			Event{Time: at.Add(3 * time.Second), Event: EventReceive, ID: mail.ID(fmt.Sprintf("0x%014d", i)), Sender: "other@contoso.com"},
		)
	}
	write(t, dir, es...)
	for _, tc := range []struct {
		q    Query
		want int
	}{
		{Query{Recipient: "user3@fabrikam.com"}, 4},
		{Query{MessageID: "0n00000000000003"}, 4},
		{Query{Sender: "app1@contoso.com"}, 4 * 24 / 2},
		{Query{Recipient: "app1@contoso.com"}, 4 * 24 / 2},
		{Query{Sender: "<>"}, 4 * 24},
	} {
		got, err := Search(dir, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range got {
			if e.Sender != "other@contoso.com" {
				n++
			}
		}
		if len(got) != tc.want || n != tc.want {
			t.Errorf("%+v: %d events, %d of them of the messages sought; want %d", tc.q, len(got), n, tc.want)
		}
	}
}

// TestSearchSkipsFilesOutsideTheWindow: a day outside [Since, Until] is
// not opened. The days around the window are directories here, which
// cannot be read as files: opening them would fail the search.
func TestSearchSkipsFilesOutsideTheWindow(t *testing.T) {
	f := newFixture(t)
	for _, d := range []time.Time{f.at(-2 * 86400), f.at(2 * 86400)} {
		if err := os.Mkdir(filepath.Join(f.dir, fileFor(d)), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Search(f.dir, Query{Sender: "app@contoso.com"}); err == nil {
		t.Fatal("a search of every day should fail on an unreadable day; the test proves nothing")
	}
	got, err := Search(f.dir, Query{Sender: "app@contoso.com", Since: f.at(-86400), Until: f.at(86400)})
	if err != nil {
		t.Fatalf("a day outside the window was opened: %v", err)
	}
	if len(got) != 11 {
		t.Errorf("%d events", len(got))
	}
}

// TestSearchLimitOutOfOrder: without addresses the search stops early
// and keeps only the earliest events it has seen; that must still give
// the earliest overall when a file is out of time order.
func TestSearchLimitOutOfOrder(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var es []Event
	for i := range 100 { // every minute of 100, in a shuffled order
		es = append(es, Event{Time: t0.Add(time.Duration(i*37%100) * time.Minute), Event: EventSend})
	}
	write(t, dir, es...)
	write(t, dir, Event{Time: t0.Add(24 * time.Hour), Event: EventSend})
	for _, limit := range []int{1, 3, 40, 100} {
		got, err := Search(dir, Query{Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != limit {
			t.Fatalf("limit %d: %d events", limit, len(got))
		}
		for i, e := range got {
			if !e.Time.Equal(t0.Add(time.Duration(i) * time.Minute)) {
				t.Fatalf("limit %d: event %d at %v; want the earliest in order", limit, i, e.Time)
			}
		}
	}
	got, _ := Search(dir, Query{Limit: 1000})
	if len(got) != 101 {
		t.Errorf("a limit above the count: %d events", len(got))
	}
}

// TestSearchOddLines: the search reads what is there and skips what it
// cannot decode: a half-written last line, a blank line, a line longer
// than the read buffer, a line without a newline at the end.
func TestSearchOddLines(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	long := Event{Time: t0, Event: EventSend, Sender: "long@contoso.com", Reply: strings.Repeat("x", 3*blockSize)}
	var b []byte
	b = append(appendRecord(b, &Event{Time: t0, Event: EventReceive, Sender: "a@contoso.com"}), '\n', '\n')
	b = append(append(b, `{"time":"2026-11-24T10:00:01Z","event":"SEND","sender":"a@contoso.com","recipients":["bob@`...), '\n')
	b = append(appendRecord(b, &long), '\n')
	b = appendRecord(b, &Event{Time: t0.Add(time.Second), Event: EventDefer, Sender: "A@contoso.com"})
	if err := os.WriteFile(filepath.Join(dir, fileFor(t0)), b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Search(dir, Query{Sender: "a@contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	if s := story(got, nil); s != "RECEIVE, DEFER" {
		t.Errorf("got %s", s)
	}
	got, err = Search(dir, Query{Sender: "long@contoso.com"})
	if err != nil || len(got) != 1 || len(got[0].Reply) != 3*blockSize {
		t.Errorf("the long line: %d events, %v", len(got), err)
	}
	if got, err := Search(filepath.Join(dir, "nope"), Query{}); err != nil || len(got) != 0 {
		t.Errorf("a missing directory: %v, %v", got, err)
	}
}

// TestSearchUnusualAddresses: addresses are found as the log writes
// them: a quoted local part is escaped in JSON, and letters outside
// ASCII compare in any case.
func TestSearchUnusualAddresses(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	write(t, dir,
		Event{Time: t0, Event: EventReceive, ID: "0a000000000000aa", Sender: `"John Doe"@contoso.com`, Recipients: []string{"josé@exämple.com"}},
		Event{Time: t0.Add(time.Second), Event: EventSend, ID: "0a000000000000aa", Recipients: []string{"josé@exämple.com"}},
		Event{Time: t0.Add(2 * time.Second), Event: EventReceive, ID: "0b000000000000bb", Sender: "ÉLODIE@contoso.com"},
	)
	for _, tc := range []struct {
		q    Query
		want int
	}{
		{Query{Sender: `"john doe"@contoso.com`}, 2},
		{Query{Recipient: "JOSÉ@EXÄMPLE.COM"}, 2},
		{Query{Sender: "élodie@contoso.com"}, 1},
		{Query{Sender: "éé"}, 0},
	} {
		got, err := Search(dir, tc.q)
		if err != nil || len(got) != tc.want {
			t.Errorf("%+v: %d events, %v; want %d", tc.q, len(got), err, tc.want)
		}
	}
}

func TestSearchWhileRecording(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			l.Record(Event{Event: EventReceive, ID: mail.NewID(), Sender: "app@contoso.com"})
		}
		l.Flush()
	}()
	for range 20 {
		if _, err := Search(dir, Query{Sender: "app@contoso.com", Limit: 5}); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	l.Close()
	if got, _ := Search(dir, Query{Sender: "app@contoso.com"}); len(got) != 2000 {
		t.Errorf("%d events after Close; want 2000", len(got))
	}
}
