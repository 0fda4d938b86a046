package tracking

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzPrefilter: the fields of a record come from clients (addresses,
// Message-ID, EHLO name, replies). appendRecord must write what
// encoding/json writes, and the byte prefilter of a query must let
// through every line whose decoded event the query matches ("it never
// holds back a line that could match").
func FuzzPrefilter(f *testing.F) {
	for _, s := range [][6]string{
		{"App@Contoso.com", "bob@fabrikam.com", "<inv-1@erp>", "app@contoso.COM", "", ""},
		{`"John Doe"@contoso.com`, "x@y", "", "", `"john DOE"@contoso.com`, ""},
		{"JOSÉ@EXÄMPLE.COM", "é@x", "<a&b@x>", "josé@exämple.com", "", "a&b@x"},
		{"bad\xffutf8", "line\u2028sep", "\x00\x1f", "bad\xffutf8", "line\u2028sep", "<\x00\x1f>"},
		{"", "", "0a000000000000aa", "", "", "0A000000000000AA"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	t0 := time.Date(2026, 11, 24, 9, 15, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, sender, rcpt, mid, qSender, qRcpt, qMID string) {
		es := []Event{
			{Time: t0, Event: EventReceive, Source: "SMTP", ID: "0a000000000000aa", MessageID: mid,
				Sender: sender, Recipients: []string{rcpt}, ClientName: rcpt, Reply: mid},
			{Time: t0.Add(time.Second), Event: EventFail, Source: "SMTP", Sender: rcpt, Recipients: []string{sender, mid}},
		}
		var block []byte
		for i := range es {
			line := appendRecord(nil, &es[i])
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			enc.Encode(&es[i])
			if want := bytes.TrimSuffix(b.Bytes(), []byte("\n")); !bytes.Equal(line, want) {
				t.Fatalf("appendRecord:\n%s\nencoding/json:\n%s", line, want)
			}
			block = append(append(block, line...), '\n')
		}
		q := Query{Sender: qSender, Recipient: qRcpt, MessageID: qMID}
		pf := q.prefilter()
		kept := map[string]bool{}
		(&picker{pf: &pf}).each(block, func(line []byte) { kept[string(line)] = true })
		for line := range bytes.Lines(block) {
			line = bytes.TrimSuffix(line, []byte("\n"))
			var e Event
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			if q.matches(&e) && !kept[string(line)] {
				t.Fatalf("query %+v matches\n%s\nbut the prefilter (%q) held it back", q, line, pf.fold)
			}
		}
	})
}
