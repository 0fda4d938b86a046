package queue

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// jsonRecord is the reference appendRecord must match.
func jsonRecord(t *testing.T, r *record) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func checkRecord(t *testing.T, r *record) {
	t.Helper()
	got, ok := appendRecord(nil, r)
	if !ok {
		t.Fatalf("appendRecord refused %+v", r)
	}
	if want := jsonRecord(t, r); !bytes.Equal(got, want) {
		t.Fatalf("appendRecord:\n%s\nencoding/json:\n%s", got, want)
	}
}

func TestAppendRecordMatchesJSON(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 15, 0, 200_000_000, time.UTC)
	full := record{V: recordVersion, Env: mail.Envelope{
		ID: "0ab1cdef23456789", From: "app@contoso.com", Ret: mail.RetHeaders, EnvID: "QQ314159",
		SMTPUTF8: true, Body: mail.Body8BitMIME, Size: 48213, Received: at,
		Origin: mail.Origin{Connector: "Apps", ClientIP: netip.MustParseAddr("2001:db8::5"), ClientHelo: "erp01",
			AuthUser: "erp", TLS: "TLS1.3 TLS_AES_128_GCM_SHA256", Session: "06h0s7sbfk004of0"},
		MessageID: "<inv-1042@erp.contoso.com>", Via: "Exchange", About: "0ab1cdef2345abcd",
	}, Rcpts: []Rcpt{
		{Recipient: mail.Recipient{Addr: "bob@fabrikam.com", Notify: mail.NotifySuccess | mail.NotifyDelay, ORcpt: "rfc822;bob@fabrikam.com"},
			Status: StatusQueued, Attempts: 3, LastError: "451 4.4.1 <refused> & \"done\"\r\n\tnext", LastAttempt: at,
			NextAttempt: at.Add(time.Minute).In(time.FixedZone("CET", 3600)), DelayNotified: true},
		{Recipient: mail.Recipient{Addr: `"odd,\"name"@fabrikam.com`}, Status: StatusDelivered},
	}}
	checkRecord(t, &full)
	checkRecord(t, &record{})
	withRcpts := full
	withRcpts.Env.Rcpts = []mail.Recipient{{Addr: "a@b.example", Notify: mail.NotifyNever}, {}}
	withRcpts.Env.Via, withRcpts.Env.About = "", ""
	withRcpts.Rcpts = []Rcpt{}
	checkRecord(t, &withRcpts)
	zoned := full
	zoned.Env.Origin.ClientIP = netip.MustParseAddr("fe80::1").WithZone(`we"ird\0`)
	checkRecord(t, &zoned)

	far := full
	far.Env.Received = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, ok := appendRecord(nil, &far); ok {
		t.Error("appendRecord wrote the year 10000, which encoding/json refuses")
	}
	m := &Message{ID: "x", Env: far.Env}
	if b := func() (b []byte) {
		defer func() { recover() }()
		return m.encode()
	}(); b != nil {
		t.Errorf("encode wrote a record encoding/json refuses: %s", b)
	}
}

// Every record appendRecord writes reads back as what was written.
func TestAppendRecordDecodes(t *testing.T) {
	m := &Message{ID: "0ab1cdef23456789", Size: 10240, Env: mail.Envelope{
		ID: "0ab1cdef23456789", Size: 10240, From: "app@contoso.com", Received: time.Now(), Origin: mail.Origin{ClientIP: netip.MustParseAddr("127.0.0.1")},
		Rcpts: []mail.Recipient{{Addr: "bob@fabrikam.com"}},
	}, Rcpts: []Rcpt{{Recipient: mail.Recipient{Addr: "bob@fabrikam.com"}, Status: StatusQueued, NextAttempt: time.Now()}}}
	got, err := decode(m.ID, m.encode(), m.Size)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(m)
	if !bytes.Equal(a, b) {
		t.Errorf("decoded:\n%s\nwritten:\n%s", a, b)
	}
}

func FuzzAppendRecord(f *testing.F) {
	f.Add("app@contoso.com", "bob@fabrikam.com", "<a&b>\u2028\xff", "451 4.4.1 \"x\"\r\n", int64(1764000000), int64(123456789), 3, uint8(6), "10.0.0.5", "")
	f.Add("", "", "", "", int64(0), int64(0), 0, uint8(0), "", "")
	f.Add("a@b", "c@d", "x", "", int64(1), int64(0), 1, uint8(2), "fe80::1", `we"ird\0`)
	f.Fuzz(func(t *testing.T, from, rcpt, text, lastErr string, sec, nsec int64, attempts int, notify uint8, ip, zone string) {
		at := time.Unix(sec, nsec)
		if y := at.Year(); y < 0 || y > 9999 {
			return
		}
		addr, _ := netip.ParseAddr(ip)
		if addr.Is6() {
			addr = addr.WithZone(zone)
		}
		r := record{V: recordVersion, Env: mail.Envelope{From: mail.Address(from), EnvID: text, MessageID: text,
			Received: at, Via: text, Origin: mail.Origin{ClientIP: addr, ClientHelo: text, AuthUser: from}},
			Rcpts: []Rcpt{{Recipient: mail.Recipient{Addr: mail.Address(rcpt), Notify: mail.Notify(notify), ORcpt: text},
				Status: Status(text), Attempts: attempts, LastError: lastErr, NextAttempt: at, DelayNotified: attempts%2 == 0}}}
		checkRecord(t, &r)
	})
}
