package tracking

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// BenchmarkSearch measures queries over two million records in ten daily
// files (about 700 MB), the "millions of records" of the issue. The
// files are written once, inside the benchmark, so a plain go test never
// pays for them. Run it with
//
//	go test -run '^$' -bench Search -benchtime 5x ./internal/tracking
func BenchmarkSearch(b *testing.B) {
	dir := b.TempDir()
	g := generate(b, dir, 2_000_000, 10)
	for _, c := range []struct {
		name string
		q    Query
		want int // events found
	}{
		{"sender", Query{Sender: "app1234@contoso.com"}, g.bySender},
		{"sender-upper", Query{Sender: "APP1234@CONTOSO.COM"}, g.bySender},
		{"recipient", Query{Recipient: "user12345@fabrikam.com"}, g.byRecipient},
		{"message-id", Query{MessageID: g.messageID}, g.story},
		{"sluice-id", Query{MessageID: string(g.id)}, g.story},
		{"bounced-message-id", Query{MessageID: g.bouncedID}, g.bounced},
		{"notice-message-id", Query{MessageID: g.noticeID}, g.bounced},
		{"no-match", Query{Sender: "nobody@contoso.com"}, 0},
		{"busy-sender", Query{Sender: "noreply@contoso.com"}, DefaultLimit},
		{"last-hour", Query{Since: g.last.Add(-time.Hour)}, -1},
		{"event-last-day", Query{Event: EventFail, Since: g.last.Add(-24 * time.Hour)}, -1},
		{"all-limit-100", Query{Limit: 100}, 100},
	} {
		b.Run(c.name, func(b *testing.B) {
			if c.q.Sender != "" || c.q.Recipient != "" || c.q.MessageID != "" {
				b.SetBytes(g.size) // these read every file: MB/s is the log's size over the time
			}
			for range b.N {
				got, err := Search(dir, c.q)
				if err != nil {
					b.Fatal(err)
				}
				if c.want >= 0 && len(got) != c.want || c.want < 0 && len(got) == 0 {
					b.Fatalf("%d events; want %d", len(got), c.want)
				}
			}
		})
	}
}

// generated describes the synthetic log: what a few queries must find.
type generated struct {
	bySender, byRecipient, story int
	size                         int64 // bytes written
	messageID                    string
	id                           mail.ID
	bounced                      int    // events of a bounced message and its notice
	bouncedID, noticeID          string // their Message-IDs
	last                         time.Time
}

// generate writes records (more or less: whole messages) over days daily
// files, in the stories Sluice writes: RECEIVE, SUBMIT, sometimes DEFER,
// then SEND, or FAIL and a DSN, and the notice's SUBMIT and SEND. One
// sender in 5000, one recipient in
// 20000, except a tenth of the mail from one noreply address; a fifth
// of the senders write their address in capitals.
func generate(tb testing.TB, dir string, records, days int) generated {
	tb.Helper()
	t0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -days)
	step := time.Duration(days) * 24 * time.Hour / time.Duration(records)
	var g generated
	var (
		f    *os.File
		w    *bufio.Writer
		name string
		line []byte
		n    int
	)
	write := func(e Event) {
		e.Time = t0.Add(time.Duration(n) * step)
		n++
		if fn := fileFor(e.Time); fn != name {
			if f != nil {
				closeGenerated(tb, f, w)
			}
			var err error
			if f, err = os.Create(filepath.Join(dir, fn)); err != nil {
				tb.Fatal(err)
			}
			w, name = bufio.NewWriterSize(f, 1<<20), fn
		}
		line = append(appendRecord(line[:0], &e), '\n')
		w.Write(line)
		g.size += int64(len(line))
		g.last = e.Time
	}
	for m := 0; n < records; m++ {
		id := mail.ID(fmt.Sprintf("0k%014d", m))
		sender := fmt.Sprintf("app%d@contoso.com", m%5000)
		switch {
		case m%10 == 3:
			sender = "noreply@contoso.com" // a tenth of the mail
		case m%5 == 0:
			sender = fmt.Sprintf("App%d@Contoso.COM", m%5000)
		}
		rcpt := fmt.Sprintf("user%d@fabrikam.com", m%20000)
		mid := fmt.Sprintf("<%d.%d@app.contoso.com>", m, m*7)
		base := Event{ID: id, MessageID: mid, Sender: sender, Recipients: []string{rcpt}, Size: 10240}
		story := []Event{
			{Event: EventReceive, Source: "SMTP", Connector: "Apps", ClientIP: "10.0.0.5", ClientName: "erp01.contoso.com",
				Reply: "250 2.6.0 <" + string(id) + "> Queued mail for delivery", Session: "s" + string(id)},
			{Event: EventSubmit, Source: "QUEUE", Connector: "Apps", NextHop: "Exchange"},
		}
		if m%10 == 0 {
			story = append(story, Event{Event: EventDefer, Source: "DELIVERY", Connector: "Exchange", NextHop: "Exchange",
				Host: "exch1.contoso.com [10.0.0.9]", Reply: "451 4.4.1 cannot connect to exch1.contoso.com:25: connection refused"})
		}
		var notice []Event
		if m%50 == 7 {
			nid := mail.ID(fmt.Sprintf("0d%014d", m))
			story = append(story,
				Event{Event: EventFail, Source: "DELIVERY", Connector: "Exchange", NextHop: "Exchange",
					Host: "exch2.contoso.com [10.0.0.10]", Reply: "550 5.1.1 User unknown"},
				Event{Event: EventDSN, Source: "QUEUE", Related: nid, Reply: "failure notice to " + sender})
			nb := Event{ID: nid, MessageID: "<" + string(nid) + "@relay.contoso.com>", Sender: "<>", Recipients: []string{sender},
				Related: id, Size: 3072}
			notice = []Event{
				{Event: EventSubmit, Source: "QUEUE", Connector: "(delivery status notification)", NextHop: "Exchange"},
				{Event: EventSend, Source: "DELIVERY", Connector: "Exchange", NextHop: "Exchange",
					Host: "exch2.contoso.com [10.0.0.10]", Reply: "250 2.0.0 OK"},
			}
			for i := range notice {
				notice[i].ID, notice[i].MessageID, notice[i].Sender = nb.ID, nb.MessageID, nb.Sender
				notice[i].Recipients, notice[i].Related, notice[i].Size = nb.Recipients, nb.Related, nb.Size
			}
			if m == 123457 {
				g.bouncedID, g.noticeID, g.bounced = mid, nb.MessageID, len(story)+len(notice)
			}
		} else {
			story = append(story, Event{Event: EventSend, Source: "DELIVERY", Connector: "Exchange", NextHop: "Exchange",
				Host: "exch2.contoso.com [10.0.0.10]", Reply: "250 2.0.0 OK"})
		}
		for _, e := range story {
			e.ID, e.MessageID, e.Sender, e.Recipients, e.Size = base.ID, base.MessageID, base.Sender, base.Recipients, base.Size
			write(e)
		}
		for _, e := range notice {
			write(e)
		}
		if m%5000 == 1234 {
			g.bySender += len(story)
		}
		if m%20000 == 12345 {
			g.byRecipient += len(story)
		}
		if m == 123456 {
			g.messageID, g.id, g.story = mid, id, len(story)
		}
	}
	closeGenerated(tb, f, w)
	return g
}

func closeGenerated(tb testing.TB, f *os.File, w *bufio.Writer) {
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}
