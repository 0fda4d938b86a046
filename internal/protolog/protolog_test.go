package protolog

import (
	encsv "encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSessionLines(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, "receive", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := l.Session("Client submission", "sess1", "10.0.0.1:587", "10.0.0.20:50123")
	s.Sent("220 relay.contoso.com ESMTP")
	s.Received("EHLO sp01, the \"farm\"")
	s.Note("TLS negotiated: TLS1.2")
	s.Received("AUTH LOGIN ***")
	s.Close()
	var nilLog *Log
	nilLog.Session("x", "y", "", "").Sent("nothing") // a nil log logs nothing
	l.Close()

	name := filepath.Join(dir, "receive-"+time.Now().UTC().Format("20060102")+".log")
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := encsv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v", err)
	}
	var events []string
	for _, r := range recs {
		if len(r) != 7 || r[1] != "Client submission" || r[2] != "sess1" || r[3] != "10.0.0.1:587" || r[4] != "10.0.0.20:50123" {
			t.Fatalf("record %q", r)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", r[0]); err != nil {
			t.Errorf("timestamp %q: %v", r[0], err)
		}
		events = append(events, r[5]+" "+r[6])
	}
	want := []string{"+ ", "> 220 relay.contoso.com ESMTP", `< EHLO sp01, the "farm"`, "* TLS negotiated: TLS1.2", "< AUTH LOGIN ***", "- "}
	if strings.Join(events, "|") != strings.Join(want, "|") {
		t.Errorf("events\n%q\nwant\n%q", events, want)
	}
}

func TestLineBreaksCannotForgeRecords(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, "send", 0, nil)
	l.Session("Out", "s", "", "").Received("250 ok\r\n2026-01-01T00:00:00.000Z,Out,s,,,<,forged")
	l.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "send-"+time.Now().UTC().Format("20060102")+".log"))
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Errorf("%d lines; a CR LF in the data must not start a new record:\n%s", n, b)
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "receive-"+time.Now().UTC().Add(-10*24*time.Hour).Format("20060102")+".log")
	os.WriteFile(old, []byte("x\n"), 0o600)
	l, _ := Open(dir, "receive", 7*24*time.Hour, nil)
	l.Session("A", "s", "", "").Note("x")
	l.Close()
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("a file past the retention was kept")
	}
}
