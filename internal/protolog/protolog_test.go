package protolog

import (
	encsv "encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/testclock"
)

func openAt(t *testing.T, dir, prefix string, retention time.Duration, c *testclock.Clock) *Log {
	t.Helper()
	l, err := open(dir, prefix, retention, nil, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// records reads a protocol log file as CSV; each record must have the
// seven fields.
func records(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := encsv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s is not CSV: %v", path, err)
	}
	for _, r := range recs {
		if len(r) != 7 {
			t.Fatalf("record %q: want 7 fields", r)
		}
	}
	return recs
}

// events is each record's "event data".
func events(recs [][]string) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r[5]+" "+r[6])
	}
	return out
}

func TestSessionLines(t *testing.T) {
	dir := t.TempDir()
	c := testclock.New(time.Date(2026, 11, 24, 14, 3, 7, 250e6, time.FixedZone("CET", 3600)))
	l := openAt(t, dir, "receive", 0, c)
	s := l.Session("Client submission", "sess1", "10.0.0.1:587", "10.0.0.20:50123")
	s.Sent("220 relay.contoso.com ESMTP")
	s.Received("EHLO sp01")
	s.Note("TLS negotiated: TLS1.2")
	s.Close()
	var nilLog *Log
	nilLog.Session("x", "y", "", "").Sent("nothing") // a nil log logs nothing
	nilLog.Close()
	l.Close()

	recs := records(t, filepath.Join(dir, "receive-20261124.log"))
	for _, r := range recs {
		if want := []string{"2026-11-24T13:03:07.250Z", "Client submission", "sess1", "10.0.0.1:587", "10.0.0.20:50123"}; !slices.Equal(r[:5], want) {
			t.Errorf("record %q: want it to start with %q (the time in UTC)", r, want)
		}
	}
	want := []string{"+ ", "> 220 relay.contoso.com ESMTP", "< EHLO sp01", "* TLS negotiated: TLS1.2", "- "}
	if got := events(recs); !slices.Equal(got, want) {
		t.Errorf("events\n%q\nwant\n%q", got, want)
	}
}

func TestCSVQuoting(t *testing.T) {
	for _, tc := range []struct{ in, raw string }{
		{"250 OK", "250 OK"},
		{"EHLO sp01, the farm", `"EHLO sp01, the farm"`},
		{`MAIL FROM:<"john doe"@contoso.com>`, `"MAIL FROM:<""john doe""@contoso.com>"`},
		{"250 ok\r\nforged", `250 ok\r\nforged`},
		// A NUL or an escape sequence from a client or upstream would make
		// grep call the day's file binary and hide every match in it, or
		// paint the admin's terminal.
		{"535 5.7.8 failed \x00user\x00", `535 5.7.8 failed \x00user\x00`},
		{"EHLO \x1b[31mred\x7f", `EHLO \x1b[31mred\x7f`},
		{"EHLO tab\there, ünïcode", `"EHLO tab` + "\t" + `here, ünïcode"`},
		{"", ""},
	} {
		if got := csv(tc.in); got != tc.raw {
			t.Errorf("csv(%q) = %s; want %s", tc.in, got, tc.raw)
		}
	}

	// Every field a caller gives goes through the same quoting, and a
	// CSV reader gets each back whole.
	dir := t.TempDir()
	c := testclock.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	l := openAt(t, dir, "send", 0, c)
	s := l.Session(`Office 365, "primary"`, "s,1", "", "[2603:10a6::1]:587")
	s.Received(`250-SIZE 157286400, "big"`)
	s.Received("250 ok\r\n2026-01-01T00:00:00.000Z,Out,s,,,<,forged")
	l.Close()
	b, err := os.ReadFile(filepath.Join(dir, "send-20261124.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 3 {
		t.Errorf("%d lines; want 3: a CR LF in the data must not start a new record:\n%s", n, b)
	}
	recs := records(t, filepath.Join(dir, "send-20261124.log"))
	if r := recs[1]; r[1] != `Office 365, "primary"` || r[2] != "s,1" || r[4] != "[2603:10a6::1]:587" || r[6] != `250-SIZE 157286400, "big"` {
		t.Errorf("fields did not survive quoting: %q", r)
	}
	if r := recs[2]; r[6] != `250 ok\r\n2026-01-01T00:00:00.000Z,Out,s,,,<,forged` {
		t.Errorf("line breaks should show as \\r\\n: %q", r[6])
	}
}

func TestAuthIsMasked(t *testing.T) {
	dir := t.TempDir()
	c := testclock.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	l := openAt(t, dir, "receive", 0, c)

	// Sluice serves: what the client answers to 334 is masked, and an
	// initial response on the AUTH line, even if the caller forgot.
	in := l.Session("Apps", "a", "", "")
	in.Received("AUTH PLAIN AGFwcEBjb250b3NvLmNvbQBzZWNyZXQ=")
	in.Sent("235 2.7.0 Authentication successful")
	in.Received("auth login")
	in.Sent("334 VXNlcm5hbWU6")
	in.Received("YXBwQGNvbnRvc28uY29t")
	in.Sent("334 UGFzc3dvcmQ6")
	in.Received("c2VjcmV0")
	in.Sent("235 2.7.0 Authentication successful")
	in.Received("MAIL FROM:<app@contoso.com>")
	in.Received("AUTH LOGIN ***") // masked by the caller already
	in.Sent("334 VXNlcm5hbWU6")
	in.Received("*") // cancelled
	in.Sent("501 5.0.0 Authentication cancelled")
	in.Received("RCPT TO:<bob@fabrikam.com>")
	in.Received("AUTH PLAIN\tAGFwcEBjb250b3NvLmNvbQBzZWNyZXQ=") // a tab, not a space
	in.Received("auth\tplain  AGFwcEBjb250b3NvLmNvbQBzZWNyZXQ=")

	// Sluice sends: its own answers to the upstream's 334 are masked.
	out := l.Session("Office 365", "b", "", "")
	out.Sent("AUTH XOAUTH2 dXNlcj1yZWxheUBjb250b3NvLmNvbQFhdXRoPUJlYXJlciB0b2tlbgEB")
	out.Received("334 eyJzdGF0dXMiOiI0MDEifQ==")
	out.Sent("")
	out.Received("535 5.7.3 Authentication unsuccessful")
	out.Sent("AUTH LOGIN")
	out.Received("334 VXNlcm5hbWU6")
	out.Sent("cmVsYXlAY29udG9zby5jb20=")
	out.Received("334 UGFzc3dvcmQ6")
	out.Note("a note between does not end the challenge")
	out.Sent("c2VjcmV0")
	out.Received("235 2.7.0 Authentication successful")
	out.Sent("MAIL FROM:<relay@contoso.com>")
	l.Close()

	b, err := os.ReadFile(filepath.Join(dir, "receive-20261124.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"AGFwcEBjb250b3NvLmNvbQBzZWNyZXQ=", "YXBwQGNvbnRvc28uY29t", "c2VjcmV0", "dXNlcj1yZWxheUBjb250b3NvLmNvbQFhdXRoPUJlYXJlciB0b2tlbgEB", "cmVsYXlAY29udG9zby5jb20="} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the log shows %s:\n%s", secret, b)
		}
	}
	var got []string
	for _, r := range records(t, filepath.Join(dir, "receive-20261124.log")) {
		got = append(got, r[2]+" "+r[5]+" "+r[6])
	}
	want := []string{
		"a + ",
		"a < AUTH PLAIN ***",
		"a > 235 2.7.0 Authentication successful",
		"a < auth login",
		"a > 334 VXNlcm5hbWU6",
		"a < ***",
		"a > 334 UGFzc3dvcmQ6",
		"a < ***",
		"a > 235 2.7.0 Authentication successful",
		"a < MAIL FROM:<app@contoso.com>",
		"a < AUTH LOGIN ***",
		"a > 334 VXNlcm5hbWU6",
		"a < *",
		"a > 501 5.0.0 Authentication cancelled",
		"a < RCPT TO:<bob@fabrikam.com>",
		"a < AUTH PLAIN ***",
		"a < auth plain ***",
		"b + ",
		"b > AUTH XOAUTH2 ***",
		"b < 334 eyJzdGF0dXMiOiI0MDEifQ==",
		"b > ***",
		"b < 535 5.7.3 Authentication unsuccessful",
		"b > AUTH LOGIN",
		"b < 334 VXNlcm5hbWU6",
		"b > ***",
		"b < 334 UGFzc3dvcmQ6",
		"b * a note between does not end the challenge",
		"b > ***",
		"b < 235 2.7.0 Authentication successful",
		"b > MAIL FROM:<relay@contoso.com>",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNewFileEachDay(t *testing.T) {
	dir := t.TempDir()
	c := testclock.New(time.Date(2026, 11, 23, 23, 59, 59, 900e6, time.UTC))
	l := openAt(t, dir, "send", 0, c)
	s := l.Session("Exchange", "s1", "10.0.0.1:41000", "10.0.0.9:25")
	s.Sent("EHLO relay.contoso.com")
	c.Set(time.Date(2026, 11, 24, 0, 0, 0, 100e6, time.UTC))
	s.Received("250 exch1.contoso.com")
	s.Close()
	l.Close()

	if got := events(records(t, filepath.Join(dir, "send-20261123.log"))); !slices.Equal(got, []string{"+ ", "> EHLO relay.contoso.com"}) {
		t.Errorf("before midnight: %q", got)
	}
	recs := records(t, filepath.Join(dir, "send-20261124.log"))
	if got := events(recs); !slices.Equal(got, []string{"< 250 exch1.contoso.com", "- "}) {
		t.Errorf("after midnight: %q", got)
	}
	if recs[0][0] != "2026-11-24T00:00:00.100Z" {
		t.Errorf("time %q", recs[0][0])
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	day := func(d int) time.Time { return time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC) }
	for d := 1; d <= 10; d++ {
		for _, prefix := range []string{"receive", "send"} {
			if err := os.WriteFile(filepath.Join(dir, prefix+day(d).Format("-20060102")+".log"), []byte("x\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := testclock.New(day(10))
	l := openAt(t, dir, "receive", 7*24*time.Hour, c)
	l.Session("A", "s", "", "").Note("x")
	c.Set(day(12)) // the log runs on: the next day's file prunes again
	l.Session("A", "t", "", "").Note("y")
	l.Close()

	var got []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		got = append(got, e.Name())
	}
	var want []string
	for d := 1; d <= 10; d++ {
		want = append(want, "send"+day(d).Format("-20060102")+".log") // another log's files are not this one's to prune
	}
	want = append(want, "receive-20261105.log", "receive-20261106.log", "receive-20261107.log", "receive-20261108.log",
		"receive-20261109.log", "receive-20261110.log", "receive-20261112.log")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("files after 7 days' retention on the 12th\n%q\nwant\n%q", got, want)
	}
}

func TestLinesAfterCloseAreDropped(t *testing.T) {
	dir := t.TempDir()
	c := testclock.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	l := openAt(t, dir, "receive", 0, c)
	s := l.Session("A", "s", "", "")
	l.Close()
	s.Received("QUIT") // a session cut off at shutdown: no panic
	s.Close()
	l.Close()
	if got := events(records(t, filepath.Join(dir, "receive-20261124.log"))); !slices.Equal(got, []string{"+ "}) {
		t.Errorf("events %q", got)
	}
}
