package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// trackFixture is a tracking log under dir/tracking: a message from
// app@contoso.com to two recipients (one deferred then sent, one failed
// and bounced), the bounce (whose events name the message it is about,
// as the queue writes them), another message, and a refused relay.
type trackFixture struct {
	dir       string
	a, bounce mail.ID
	t0        time.Time
}

func newTrackFixture(t *testing.T, dataDir string) trackFixture {
	t.Helper()
	f := trackFixture{dir: dataDir, a: "0ab1cdef23456789", bounce: "0ab1cdef2345abcd", t0: time.Date(2026, 11, 24, 9, 15, 0, 0, time.UTC)}
	l, err := tracking.Open(filepath.Join(dataDir, "tracking"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s float64) time.Time { return f.t0.Add(time.Duration(s * float64(time.Second))) }
	a := tracking.Event{ID: f.a, MessageID: "<inv-1042@erp.contoso.com>", Sender: "app@contoso.com", Size: 48213}
	ev := func(base, e tracking.Event) tracking.Event {
		e.ID, e.MessageID, e.Sender, e.Size = base.ID, base.MessageID, base.Sender, base.Size
		if e.Related == "" {
			e.Related = base.Related
		}
		return e
	}
	rcpts := []string{"bob@fabrikam.com", "gone@fabrikam.com"}
	b := tracking.Event{ID: f.bounce, MessageID: "<0ab1cdef2345abcd@relay.contoso.com>", Sender: "<>", Size: 2310, Related: f.a}
	for _, e := range []tracking.Event{
		ev(a, tracking.Event{Time: at(0), Event: tracking.EventReceive, Source: "SMTP", Recipients: rcpts, Connector: "Apps",
			ClientIP: "10.0.0.5", ClientName: "erp01", Reply: "250 2.6.0 Queued mail for delivery"}),
		ev(a, tracking.Event{Time: at(0.004), Event: tracking.EventSubmit, Source: "QUEUE", Recipients: rcpts, Connector: "Apps", NextHop: "Exchange"}),
		ev(a, tracking.Event{Time: at(0.2), Event: tracking.EventDefer, Source: "DELIVERY", Recipients: rcpts, Connector: "Exchange",
			NextHop: "Exchange", Host: "exch1.contoso.com [10.0.0.9]", Reply: "451 4.4.1 cannot connect to exch1.contoso.com:25: connection refused"}),
		ev(a, tracking.Event{Time: at(60.5), Event: tracking.EventSend, Source: "DELIVERY", Recipients: rcpts[:1], Connector: "Exchange",
			NextHop: "Exchange", Host: "exch2.contoso.com [10.0.0.10]", Reply: "250 2.0.0 OK"}),
		ev(a, tracking.Event{Time: at(60.5), Event: tracking.EventFail, Source: "DELIVERY", Recipients: rcpts[1:], Connector: "Exchange",
			NextHop: "Exchange", Host: "exch2.contoso.com [10.0.0.10]", Reply: "550 5.1.1 User unknown"}),
		ev(b, tracking.Event{Time: at(60.6), Event: tracking.EventSubmit, Source: "QUEUE", Recipients: []string{"app@contoso.com"},
			Connector: "(delivery status notification)", NextHop: "Exchange"}),
		ev(a, tracking.Event{Time: at(60.6), Event: tracking.EventDSN, Source: "QUEUE", Recipients: rcpts[1:], Related: f.bounce, Reply: "failure notice to app@contoso.com"}),
		ev(b, tracking.Event{Time: at(61), Event: tracking.EventSend, Source: "DELIVERY", Recipients: []string{"app@contoso.com"}, Connector: "Exchange",
			NextHop: "Exchange", Host: "exch2.contoso.com [10.0.0.10]", Reply: "250 2.0.0 OK"}),
		{Time: at(90), Event: tracking.EventReceive, Source: "SMTP", ID: "0ab1cdef2345ffff", Sender: "scanner@contoso.com",
			Recipients: []string{"carol@fabrikam.com"}, Connector: "Apps", ClientIP: "10.0.0.7"},
		{Time: at(120), Event: tracking.EventFail, Source: "SMTP", Sender: "spam@evil.example", Recipients: []string{"v@victim.example"},
			Connector: "Internet", ClientIP: "203.0.113.9", Reply: "550 5.7.54 Unable to relay recipient in non-accepted domain"},
		{Time: at(121), Event: tracking.EventFail, Source: "SMTP", Sender: "more@evil.example", Recipients: []string{"v@victim.example"},
			Connector: "Internet", ClientIP: "203.0.113.10", Reply: "550 5.7.54 Unable to relay recipient in non-accepted domain"},
	} {
		l.Record(e)
	}
	l.Close()
	return f
}

// TestTrackTable pins the table people read.
func TestTrackTable(t *testing.T) {
	f := newTrackFixture(t, t.TempDir())
	events, err := tracking.Search(filepath.Join(f.dir, "tracking"), tracking.Query{Sender: "APP@contoso.com"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printStories(&out, events, time.UTC)
	want := `message 0ab1cdef23456789 <inv-1042@erp.contoso.com> from app@contoso.com, 48213 bytes
  TIME                     EVENT    SOURCE    CONNECTOR / NEXT HOP                    RECIPIENTS                          REPLY
  2026-11-24 09:15:00.000  RECEIVE  SMTP      Apps 10.0.0.5 (erp01)                   bob@fabrikam.com,gone@fabrikam.com  250 2.6.0 Queued mail for delivery
  2026-11-24 09:15:00.004  SUBMIT   QUEUE     Apps → Exchange                         bob@fabrikam.com,gone@fabrikam.com  -
  2026-11-24 09:15:00.200  DEFER    DELIVERY  Exchange exch1.contoso.com [10.0.0.9]   bob@fabrikam.com,gone@fabrikam.com  451 4.4.1 cannot connect to exch1.contoso.com:25: connection refused
  2026-11-24 09:16:00.500  SEND     DELIVERY  Exchange exch2.contoso.com [10.0.0.10]  bob@fabrikam.com                    250 2.0.0 OK
  2026-11-24 09:16:00.500  FAIL     DELIVERY  Exchange exch2.contoso.com [10.0.0.10]  gone@fabrikam.com                   550 5.1.1 User unknown
  2026-11-24 09:16:00.600  DSN      QUEUE     -                                       gone@fabrikam.com                   failure notice to app@contoso.com (message 0ab1cdef2345abcd)

message 0ab1cdef2345abcd <0ab1cdef2345abcd@relay.contoso.com> from <>, 2310 bytes, notice about message 0ab1cdef23456789
  TIME                     EVENT   SOURCE    CONNECTOR / NEXT HOP                       RECIPIENTS       REPLY
  2026-11-24 09:16:00.600  SUBMIT  QUEUE     (delivery status notification) → Exchange  app@contoso.com  -
  2026-11-24 09:16:01.000  SEND    DELIVERY  Exchange exch2.contoso.com [10.0.0.10]     app@contoso.com  250 2.0.0 OK
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// A notice recorded before its events named the message it is about is
// still shown as a notice about it when that message's DSN event, which
// names the notice, is among the events.
func TestTrackNoticeWithoutRelated(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 9, 15, 0, 0, time.UTC)
	events := []tracking.Event{
		{Time: t0, Event: tracking.EventFail, Source: "DELIVERY", ID: "0ab1cdef23456789", Sender: "app@contoso.com", Recipients: []string{"gone@fabrikam.com"}},
		{Time: t0, Event: tracking.EventSubmit, Source: "QUEUE", ID: "0ab1cdef2345abcd", Sender: "<>", Recipients: []string{"app@contoso.com"}},
		{Time: t0, Event: tracking.EventDSN, Source: "QUEUE", ID: "0ab1cdef23456789", Sender: "app@contoso.com", Related: "0ab1cdef2345abcd"},
	}
	var out bytes.Buffer
	printStories(&out, events, time.UTC)
	if want := "message 0ab1cdef2345abcd from <>, notice about message 0ab1cdef23456789\n"; !strings.Contains(out.String(), want) {
		t.Errorf("want %q in\n%s", want, out.String())
	}
}

func TestTrackCommand(t *testing.T) {
	f := newTrackFixture(t, t.TempDir())
	const bounceHead = "message 0ab1cdef2345abcd <0ab1cdef2345abcd@relay.contoso.com> from <>, 2310 bytes, notice about message 0ab1cdef23456789"
	storyWithBounce := []string{"message 0ab1cdef23456789", "RECEIVE", "SUBMIT", "DEFER", "SEND", "FAIL",
		"DSN", "failure notice to app@contoso.com (message 0ab1cdef2345abcd)", bounceHead, "SUBMIT", "(delivery status notification) → Exchange", "SEND"}
	for _, tc := range []struct {
		name    string
		args    []string
		want    []string // in this order in the output
		notWant []string
		stderr  string
	}{
		{"by recipient, any case: the whole story, the bounce named, and its story",
			[]string{"--recipient", "GONE@fabrikam.com"},
			[]string{"message 0ab1cdef23456789", "RECEIVE", "SUBMIT", "DEFER", "connection refused", "SEND", "FAIL", "550 5.1.1", "DSN", "failure notice to app@contoso.com (message 0ab1cdef2345abcd)",
				bounceHead, "SUBMIT", "SEND"},
			[]string{"carol", "scanner"}, ""},
		{"by the bounce's recipient: the bounce and the whole story of the message it is about",
			[]string{"--recipient", "app@contoso.com"}, storyWithBounce, []string{"carol", "scanner"}, ""},
		{"by the bounce's id", []string{"--message-id", "0ab1cdef2345abcd"}, storyWithBounce, []string{"carol", "scanner"}, ""},
		{"by the bounce's Message-ID", []string{"--message-id", "<0ab1cdef2345abcd@relay.contoso.com>"}, storyWithBounce, []string{"carol", "scanner"}, ""},
		{"by the bounce's sender", []string{"--sender", "<>"}, storyWithBounce, []string{"carol", "scanner"}, ""},
		{"by the bounce's sender as MAILER-DAEMON", []string{"--sender", "MAILER-DAEMON"}, storyWithBounce, []string{"carol", "scanner"}, ""},
		{"by Message-ID", []string{"--message-id", "inv-1042@ERP.contoso.com"}, []string{"RECEIVE", "DSN"}, []string{"carol"}, ""},
		{"by Sluice id", []string{"--message-id", "0ab1cdef23456789"}, []string{"RECEIVE", "DSN"}, []string{"carol"}, ""},
		{"a refused relay", []string{"--sender", "spam@evil.example"},
			[]string{"refused before a message was accepted: from spam@evil.example", "FAIL", "Internet 203.0.113.9", "550 5.7.54"}, nil, ""},
		{"refusals stand alone, each with its sender", []string{"--recipient", "v@victim.example"},
			[]string{"refused before a message was accepted: from spam@evil.example", "203.0.113.9",
				"refused before a message was accepted: from more@evil.example", "203.0.113.10"}, nil, ""},
		{"one kind of event", []string{"--event", "send"}, []string{"message 0ab1cdef23456789", "SEND", bounceHead, "SEND"},
			[]string{"RECEIVE", "DEFER", "FAIL"}, ""},
		{"a window", []string{"--since", "2026-11-24T09:16:00Z", "--until", "2026-11-24T09:16:29Z"},
			[]string{"SEND", "FAIL", "DSN", "SUBMIT", "SEND"}, []string{"RECEIVE", "DEFER"}, ""},
		{"until a date includes the day", []string{"--sender", "app@contoso.com", "--until", "2026-11-24"}, []string{"RECEIVE", "DSN"}, nil, ""},
		{"until the day before", []string{"--until", "2026-11-23"}, []string{"no events match"}, nil, ""},
		{"since an age", []string{"--since", "1h"}, []string{"no events match"}, nil, ""},
		{"limit", []string{"--limit", "2"}, []string{"RECEIVE", "SUBMIT"}, []string{"DEFER"}, "showing the first 2 events"},
		{"nothing", []string{"--sender", "nobody@contoso.com"}, []string{"no events match"}, nil, ""},
		{"spaces copied around the values", []string{"--recipient", " gone@fabrikam.com ", "--message-id", "\t<inv-1042@erp.contoso.com> "},
			[]string{"message 0ab1cdef23456789", "RECEIVE"}, []string{"no events match"}, ""},
		{"a Sluice id with a space", []string{"--sender", "app@contoso.com ", "--message-id", " 0ab1cdef23456789"},
			[]string{"message 0ab1cdef23456789", "RECEIVE"}, []string{"no events match"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := run(t, "", append([]string{"track", "--data-dir", f.dir}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			rest := out
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("want %q (after the ones before it) in\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("%q should not be in\n%s", w, out)
				}
			}
			if !strings.Contains(errs, tc.stderr) || tc.stderr == "" && errs != "" {
				t.Errorf("stderr %q; want %q", errs, tc.stderr)
			}
		})
	}
}

func TestTrackJSON(t *testing.T) {
	f := newTrackFixture(t, t.TempDir())
	out, _, code := run(t, "", "track", "--data-dir", f.dir, "--sender", "app@contoso.com", "--json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var kinds []string
	for _, l := range lines {
		var e tracking.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if e.ID != f.a && e.ID != f.bounce {
			t.Errorf("an event of another message: %s", l)
		}
		kinds = append(kinds, string(e.Event))
	}
	if got := strings.Join(kinds, " "); got != "RECEIVE SUBMIT DEFER SEND FAIL SUBMIT DSN SEND" {
		t.Errorf("events %s", got)
	}
	if !strings.Contains(lines[0], `"message_id":"<inv-1042@erp.contoso.com>"`) {
		t.Errorf("--json should print the Message-ID as the log has it, greppable: %s", lines[0])
	}
	if !strings.Contains(lines[6], `"related":"0ab1cdef2345abcd"`) {
		t.Errorf("the DSN line should name the bounce: %s", lines[6])
	}
	if !strings.Contains(lines[7], `"related":"0ab1cdef23456789"`) {
		t.Errorf("the bounce's line should name the message it is about: %s", lines[7])
	}
}

func TestTrackFindsTheDataDir(t *testing.T) {
	// From -config FILE: node.data_dir, even when the config has other
	// problems (here: no send connector).
	dir := t.TempDir()
	newTrackFixture(t, filepath.Join(dir, "data"))
	cfg := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`node: {hostname: relay.test, data_dir: %s}
receive_connectors: [{name: A, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
`, filepath.Join(dir, "data")))
	if out, errs, code := run(t, "", "track", "-config", cfg, "--sender", "scanner@contoso.com"); code != 0 || !strings.Contains(out, "carol@fabrikam.com") {
		t.Errorf("with -config: exit %d\n%s%s", code, out, errs)
	}

	// Without -config: the embedded default's ./sluice-data.
	t.Chdir(dir)
	if _, errs, code := run(t, "", "track"); code != 1 || !strings.Contains(errs, filepath.Join(dir, "sluice-data", "tracking")) {
		t.Errorf("no log under ./sluice-data: exit %d, %q; want 1 and the path", code, errs)
	}
	newTrackFixture(t, filepath.Join(dir, "sluice-data"))
	if out, errs, code := run(t, "", "track", "--message-id", "0ab1cdef2345ffff"); code != 0 || !strings.Contains(out, "carol@fabrikam.com") {
		t.Errorf("with the default config: exit %d\n%s%s", code, out, errs)
	}

	// Tracking switched off: say so, with or without old records.
	off := writeFile(t, dir, "off.yaml", `node: {hostname: relay.test, data_dir: elsewhere}
receive_connectors: [{name: A, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
logs: {tracking: {enabled: false}}
`)
	if _, errs, code := run(t, "", "track", "-config", off); code != 1 ||
		!strings.Contains(errs, filepath.Join(dir, "elsewhere", "tracking")) || !strings.Contains(errs, "logs.tracking.enabled: false in "+off) {
		t.Errorf("tracking off, no log: exit %d, %q", code, errs)
	}
	newTrackFixture(t, filepath.Join(dir, "elsewhere"))
	if out, errs, code := run(t, "", "track", "-config", off, "--sender", "scanner@contoso.com"); code != 0 ||
		!strings.Contains(out, "carol") || !strings.Contains(errs, "older records") {
		t.Errorf("tracking off, old log: exit %d\n%s%s", code, out, errs)
	}

	// --data-dir wins over the config; a missing one says where it looked
	// and why it may be missing.
	missing := filepath.Join(dir, "nope")
	if _, errs, code := run(t, "", "track", "-config", cfg, "--data-dir", missing); code != 1 ||
		!strings.Contains(errs, filepath.Join(missing, "tracking")) || !strings.Contains(errs, "logs.tracking.enabled") {
		t.Errorf("missing directory: exit %d, %q", code, errs)
	}
	if _, errs, code := run(t, "", "track", "-config", filepath.Join(dir, "none.yaml")); code != 1 || !strings.Contains(errs, "--data-dir") {
		t.Errorf("unreadable config: exit %d, %q", code, errs)
	}
	notDir := filepath.Join(dir, "odd")
	if err := os.MkdirAll(notDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, notDir, "tracking", "")
	if _, errs, code := run(t, "", "track", "--data-dir", notDir); code != 1 || !strings.Contains(errs, "is not a directory") {
		t.Errorf("tracking is a file: exit %d, %q", code, errs)
	}
}

func TestTrackUsageErrors(t *testing.T) {
	dir := t.TempDir()
	newTrackFixture(t, dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--event", "BOUNCE"}, `"BOUNCE" is not an event`},
		{[]string{"--limit", "0"}, "--limit"},
		{[]string{"--since", "yesterday"}, "is not a time"},
		{[]string{"--until", "2026-13-01"}, "is not a time"},
		{[]string{"--since", "2026-11-24", "--until", "2026-11-23"}, "is before --since"},
		{[]string{"app@contoso.com"}, "filters are flags"},
		{[]string{"--bogus"}, "bogus"},
	} {
		_, errs, code := run(t, "", append([]string{"track", "--data-dir", dir}, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", tc.args, code, errs, tc.want)
		}
	}
}

func TestParseSinceUntil(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, loc)
	for _, tc := range []struct {
		in           string
		since, until time.Time
	}{
		{"2026-11-24T10:00:00Z", time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)},
		{"2026-11-24T10:00:00.5+02:00", time.Date(2026, 11, 24, 8, 0, 0, 5e8, time.UTC), time.Date(2026, 11, 24, 8, 0, 0, 5e8, time.UTC)},
		{"2026-11-24", time.Date(2026, 11, 24, 0, 0, 0, 0, loc), time.Date(2026, 11, 24, 23, 59, 59, 999999999, loc)},
		{"2026-11-24 14:30", time.Date(2026, 11, 24, 14, 30, 0, 0, loc), time.Date(2026, 11, 24, 14, 30, 0, 0, loc)},
		{"2026-11-24T14:30:15", time.Date(2026, 11, 24, 14, 30, 15, 0, loc), time.Date(2026, 11, 24, 14, 30, 15, 0, loc)},
		{"90m", now.Add(-90 * time.Minute), now.Add(-90 * time.Minute)},
		{"3d", now.Add(-72 * time.Hour), now.Add(-72 * time.Hour)},
		{"0d", now, now},
		{"", time.Time{}, time.Time{}},
	} {
		since, err := parseWhen(tc.in, now)
		if err != nil || !since.Equal(tc.since) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", tc.in, since, err, tc.since)
		}
		until, err := parseUntil(tc.in, now)
		if err != nil || !until.Equal(tc.until) {
			t.Errorf("parseUntil(%q) = %v, %v; want %v", tc.in, until, err, tc.until)
		}
	}
	for _, bad := range []string{"-2h", "-1d", "1.5d", "d", "3 d", "yesterday", "2026-11-31", "24.11.2026"} {
		if _, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q) should fail", bad)
		}
	}
}
