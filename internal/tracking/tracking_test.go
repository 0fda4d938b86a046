package tracking

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

func events(t *testing.T, dir string, es ...Event) {
	t.Helper()
	l, err := Open(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		l.Record(e)
	}
	l.Close()
}

func kinds(es []Event) string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Event))
	}
	return strings.Join(out, " ")
}

func TestSearchReturnsWholeStories(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 23, 23, 59, 58, 0, time.UTC) // the story crosses midnight: two files
	a, b, dsn := mail.NewID(), mail.NewID(), mail.NewID()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	events(t, dir,
		Event{Time: at(0), Event: EventReceive, ID: a, MessageID: "<X1@App.Contoso.com>", Sender: "App@Contoso.com", Recipients: []string{"bob@fabrikam.com", "gone@fabrikam.com"}},
		Event{Time: at(0), Event: EventSubmit, ID: a, Sender: "App@Contoso.com", Recipients: []string{"bob@fabrikam.com", "gone@fabrikam.com"}, NextHop: "Exchange"},
		Event{Time: at(1), Event: EventReceive, ID: b, Sender: "other@contoso.com", Recipients: []string{"carol@fabrikam.com"}},
		Event{Time: at(3), Event: EventDefer, ID: a, Sender: "App@Contoso.com", Recipients: []string{"bob@fabrikam.com"}, Reply: "451 4.4.1 cannot connect"},
		Event{Time: at(4), Event: EventSend, ID: a, Sender: "App@Contoso.com", Recipients: []string{"bob@fabrikam.com"}, Reply: "250 OK"},
		Event{Time: at(4), Event: EventFail, ID: a, Sender: "App@Contoso.com", Recipients: []string{"gone@fabrikam.com"}, Reply: "550 5.1.1 unknown"},
		Event{Time: at(4), Event: EventDSN, ID: a, Related: dsn, Sender: "App@Contoso.com", Recipients: []string{"gone@fabrikam.com"}},
	)
	if files := files(dir); len(files) != 2 {
		t.Fatalf("files %v; want one per day", files)
	}
	for name, q := range map[string]Query{
		"sender, any case":     {Sender: "app@contoso.COM"},
		"one recipient":        {Recipient: "bob@fabrikam.com"},
		"message-id with <>":   {MessageID: "<x1@app.contoso.com>"},
		"message-id without":   {MessageID: "x1@app.contoso.com"},
		"Sluice's own id":      {MessageID: string(a)},
		"the failed recipient": {Recipient: "GONE@fabrikam.com"},
	} {
		got, err := Search(dir, q)
		if err != nil {
			t.Fatal(err)
		}
		if k := kinds(got); k != "RECEIVE SUBMIT DEFER SEND FAIL DSN" {
			t.Errorf("%s: story %q; want RECEIVE SUBMIT DEFER SEND FAIL DSN", name, k)
		}
	}
	// Windows and limits.
	got, _ := Search(dir, Query{Sender: "app@contoso.com", Since: at(2)})
	if k := kinds(got); k != "DEFER SEND FAIL DSN" {
		t.Errorf("since: %q", k)
	}
	got, _ = Search(dir, Query{Sender: "app@contoso.com", Until: at(1)})
	if k := kinds(got); k != "RECEIVE SUBMIT" {
		t.Errorf("until: %q", k)
	}
	got, _ = Search(dir, Query{Event: EventReceive})
	if len(got) != 2 {
		t.Errorf("all RECEIVE events: %d", len(got))
	}
	got, _ = Search(dir, Query{Limit: 3})
	if len(got) != 3 {
		t.Errorf("limit 3: %d", len(got))
	}
	got, _ = Search(dir, Query{Sender: "nobody@contoso.com"})
	if len(got) != 0 {
		t.Errorf("no match: %v", kinds(got))
	}
}

func TestFilesAreGreppableAndPruned(t *testing.T) {
	dir := t.TempDir()
	events(t, dir, Event{Time: time.Now(), Event: EventReceive, MessageID: "<m@x>", Sender: "a@b.c"})
	b, _ := os.ReadFile(filepath.Join(dir, fileFor(time.Now())))
	if !strings.Contains(string(b), `"message_id":"<m@x>"`) {
		t.Errorf("the record should keep < and > as written:\n%s", b)
	}
	// Files past the retention go when the log opens.
	old := filepath.Join(dir, fileFor(time.Now().Add(-40*24*time.Hour)))
	if err := os.WriteFile(old, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(dir, 30*24*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Record(Event{Event: EventSend})
	l.Close()
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("a 40-day-old file survived a 30-day retention")
	}
	if len(files(dir)) != 1 {
		t.Errorf("files %v", files(dir))
	}
}

// BenchmarkSearch measures a sender query over two million records in ten
// daily files (about 600 MB), the "millions of records" of the issue.
func BenchmarkSearch(b *testing.B) {
	dir := b.TempDir()
	t0 := time.Now().Add(-10 * 24 * time.Hour)
	const n = 2_000_000
	var f *os.File
	var w *bufio.Writer
	var enc *json.Encoder
	day := ""
	for i := range n {
		e := Event{Time: t0.Add(time.Duration(i) * 432 * time.Millisecond), Event: EventReceive, ID: mail.ID(fmt.Sprintf("id%08d", i)),
			MessageID: fmt.Sprintf("<%d@app.contoso.com>", i), Sender: fmt.Sprintf("app%d@contoso.com", i%5000),
			Recipients: []string{fmt.Sprintf("user%d@fabrikam.com", i%20000)}, Connector: "Apps", ClientIP: "10.0.0.5", Reply: "250 2.6.0 Queued as x", Size: 10240}
		if name := fileFor(e.Time); name != day {
			if f != nil {
				w.Flush()
				f.Close()
			}
			var err error
			if f, err = os.Create(filepath.Join(dir, name)); err != nil {
				b.Fatal(err)
			}
			w, day = bufio.NewWriterSize(f, 1<<20), name
			enc = json.NewEncoder(w)
			enc.SetEscapeHTML(false)
		}
		enc.Encode(e)
	}
	w.Flush()
	f.Close()
	b.ResetTimer()
	for range b.N {
		got, err := Search(dir, Query{Sender: "app1234@contoso.com"})
		if err != nil || len(got) != n/5000 {
			b.Fatalf("%d events, %v", len(got), err)
		}
	}
}

func TestRecordAfterCloseIsDropped(t *testing.T) {
	l, err := Open(t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	l.Record(Event{Event: EventSend}) // a delivery cut off at shutdown: no panic
	l.Close()
}
