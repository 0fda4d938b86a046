package queue

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// recordStrings are values real records hold, and ones that take every
// branch of JSON's string escaping.
var recordStrings = []string{
	"", "app@contoso.com", "bob@fabrikam.com", "rfc822;bob@fabrikam.com", `"odd,\"name"@fabrikam.com`,
	"<inv-1042@erp.contoso.com>", "mx.fabrikam.example [192.0.2.1] said: 451 4.4.1 no answer",
	`exch1.contoso.com:25 said: 550 5.1.1 "bob" unknown`, "451 4.4.1 <refused> & \"done\"\r\n\tnext",
	"queued", "delivered", "failed", "FULL", "HDRS", "8BITMIME", "TLS1.3 TLS_AES_128_GCM_SHA256",
	"é日本", "jürgen@bücher.example", "𝄞", "\xff\xfe", "a\xedb", "\xed\xa0\x80", "\u2028\u2029", "\ufffd",
	"\x00\x01\x1f\x7f", "\b\f/\\", "</script>",
}

// randString is one of recordStrings, or now and then bytes of any value.
func randString(rng *rand.Rand) string {
	if rng.IntN(4) > 0 {
		return recordStrings[rng.IntN(len(recordStrings))]
	}
	b := make([]byte, rng.IntN(12))
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return string(b)
}

// randTime is a time appendRecord can write, in UTC, Local or at an
// offset, now and then zero.
func randTime(rng *rand.Rand) time.Time {
	if rng.IntN(4) == 0 {
		return time.Time{}
	}
	const first, last = -62135596800 + 2*86400, 253402300799 - 2*86400 // years 1 to 9999, with a day for any offset
	t := time.Unix(first+rng.Int64N(last-first), rng.Int64N(1e9))
	switch rng.IntN(4) {
	case 0:
		return t.UTC()
	case 1:
		return t.Local()
	case 2:
		return t.In(time.FixedZone("", (rng.IntN(47)-23)*3600+rng.IntN(4)*15*60))
	}
	return t.In(time.FixedZone("CET", rng.IntN(2*86400-1)-86400+1)) // seconds too
}

func randInt(rng *rand.Rand) int64 {
	switch rng.IntN(4) {
	case 0:
		return []int64{0, 1, -1, math.MaxInt64, math.MinInt64, math.MaxInt32}[rng.IntN(6)]
	case 1:
		return rng.Int64() - rng.Int64()
	}
	return rng.Int64N(100)
}

func randAddr(rng *rand.Rand) netip.Addr {
	switch rng.IntN(5) {
	case 0:
		return netip.Addr{}
	case 1:
		return netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(256))})
	case 2:
		return netip.MustParseAddr("::ffff:192.0.2.1")
	case 3:
		if z := randString(rng); z != "" {
			return netip.MustParseAddr("fe80::1").WithZone(z)
		}
	}
	return netip.MustParseAddr("2001:db8::5")
}

func randRecipient(rng *rand.Rand) mail.Recipient {
	return mail.Recipient{Addr: mail.Address(randString(rng)), Notify: mail.Notify(rng.IntN(256)), ORcpt: randString(rng)}
}

// randRecord is a record appendRecord can write, with every field set,
// unset or odd now and then.
func randRecord(rng *rand.Rand) record {
	at := randTime(rng)
	if at.IsZero() && rng.IntN(2) == 0 {
		at = time.Now()
	}
	r := record{V: recordVersion, Env: mail.Envelope{
		ID: mail.NewID(), From: mail.Address(randString(rng)), Ret: mail.Ret(randString(rng)), EnvID: randString(rng),
		SMTPUTF8: rng.IntN(2) == 0, SMTPUTF8Asked: rng.IntN(2) == 0, Body: mail.Body(randString(rng)), Size: randInt(rng),
		Received: at, Origin: mail.Origin{Connector: randString(rng), ClientIP: randAddr(rng), ClientHelo: randString(rng),
			AuthUser: randString(rng), TLS: randString(rng), Session: randString(rng)},
		MessageID: randString(rng), Via: randString(rng), About: mail.ID(randString(rng)),
	}}
	if rng.IntN(8) == 0 {
		r.V = int(randInt(rng))
	}
	if rng.IntN(4) == 0 {
		r.Env.ID = mail.ID(randString(rng))
	}
	if n := rng.IntN(4) - 1; n >= 0 {
		r.Env.Rcpts = make([]mail.Recipient, n)
		for i := range r.Env.Rcpts {
			r.Env.Rcpts[i] = randRecipient(rng)
		}
	}
	if n := rng.IntN(7) - 1; n >= 0 {
		r.Rcpts = make([]Rcpt, n)
		for i := range r.Rcpts {
			r.Rcpts[i] = Rcpt{Recipient: randRecipient(rng), Status: Status(randString(rng)), Attempts: int(randInt(rng)),
				LastError: randString(rng), LastAttempt: randTime(rng), NextAttempt: randTime(rng), DelayNotified: rng.IntN(2) == 0}
		}
	}
	return r
}

// checkFastPath fails unless decodeRecord reads b, and reads it as
// json.Unmarshal does.
func checkFastPath(t *testing.T, b []byte) {
	t.Helper()
	var fast, ref record
	if !decodeRecord(b, &fast) {
		t.Fatalf("decodeRecord left to json.Unmarshal:\n%q", b)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatalf("decodeRecord read what json.Unmarshal refuses (%v):\n%q", err, b)
	}
	if !reflect.DeepEqual(fast, ref) {
		t.Fatalf("decodeRecord:\n%#v\njson.Unmarshal:\n%#v\nof %q", fast, ref, b)
	}
}

// Whatever appendRecord writes, and what encoding/json wrote for the
// same record in older versions (HTML escaped: \u003c, \u0026), is read
// by the fast path.
func TestDecodeRecordReadsWhatIsWritten(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 200000))
	for range 5000 {
		r := randRecord(rng)
		b, ok := appendRecord(nil, &r)
		if !ok {
			t.Fatalf("appendRecord refused %#v", r)
		}
		checkFastPath(t, b)
		old, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		checkFastPath(t, old)
	}
}

// Records written before a field existed, or with other escapes, are
// read by the fast path too.
func TestDecodeRecordOlderRecords(t *testing.T) {
	for _, s := range []string{
		`{}`,
		`{"v":1,"env":{},"rcpts":null}`,
		`{"v":1,"env":{"ID":"0ab1cdef23456789","From":"app@contoso.com","Rcpts":null,"Ret":"","EnvID":"","SMTPUTF8":false,"Body":"","Size":1024,"Received":"2026-11-24T09:15:00.2+01:00","Origin":{"Connector":"Default","ClientIP":"127.0.0.1","ClientHelo":"erp01","AuthUser":"","TLS":"","Session":"06h0s7sbfk004of0"}},"rcpts":[{"Addr":"bob@fabrikam.com","Notify":0,"ORcpt":"","status":"queued","next_attempt":"2026-11-24T09:15:00.2Z"}]}`,
		`{"v":1,"env":{"From":"\u003capp\u003e \u0026 \/ \u00e9 \uD834\uDD1E \ud834 \udd1e \ud834\u0041 \"\\\b\f\n\r\t","MessageID":"\u003cinv-1042@erp.contoso.com\u003e"},"rcpts":[]}`,
		`{"v":-0,"env":{"Rcpts":[{"Addr":"a@b"},{}],"Size":-9223372036854775808},"rcpts":[{"attempts":-9223372036854775808,"delay_notified":false},{"status":"failed","attempts":0}]}`,
	} {
		checkFastPath(t, []byte(s))
	}
}

// decodeRecord reads only what it fully understands; json.Unmarshal
// reads the rest, or refuses it.
func TestDecodeRecordLeavesTheRest(t *testing.T) {
	for _, s := range []string{
		``, `null`, `{`, ` {}`, `{} `, `{}{}`, `[]`,
		`{"V":1}`, `{"v":1,"v":2}`, `{"env":{},"v":1}`, `{"v":1,"other":2}`, `{"v": 1}`, `{"v":1.0}`, `{"v":1e2}`,
		`{"v":01}`, `{"v":"1"}`, `{"v":99999999999999999999}`, `{"v":-}`, `{"v":+1}`,
		`{"env":{"Rcpts":[{"Notify":256}]}}`, `{"env":{"Rcpts":[{"Notify":-1}]}}`, `{"env":{"Rcpts":[{"Notify":-0}]}}`,
		`{"env":{"Rcpts":[,]}}`, `{"env":{"Rcpts":[{}]` + "\n" + `}}`, `{"env":{"Rcpts":{}}}`, `{"rcpts":[{}],}`,
		`{"env":{"From":"a\'b"}}`, `{"env":{"From":"a\xb"}}`, `{"env":{"From":"a\u12"}}`, "{\"env\":{\"From\":\"a\tb\"}}",
		`{"env":{"From":"a}}`, `{"env":{"From":null}}`, `{"env":{"SMTPUTF8":1}}`, `{"env":{"SMTPUTF8":tru}}`,
		`{"env":{"Received":"2026-11-24T09:15:00Z "}}`, `{"env":{"Received":"2026-11-24"}}`, `{"env":{"Received":null}}`,
		`{"env":{"Received":"2026-11-24T09:15:00\u005a"}}`, `{"env":{"Origin":{"ClientIP":"300.0.0.1"}}}`,
		`{"env":{"Origin":{"ClientIP":null}}}`, `{"env":{"Origin":{"ClientIP":"fe80::1%"}}}`,
	} {
		var r record
		if decodeRecord([]byte(s), &r) {
			t.Errorf("decodeRecord read %q", s)
		}
	}
}

// If the fast path reads a record, it reads what json.Unmarshal reads;
// and whatever json.Unmarshal reads, written again by appendRecord, the
// fast path reads.
func FuzzDecodeRecord(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 14159))
	for range 40 {
		r := randRecord(rng)
		b, _ := appendRecord(nil, &r)
		f.Add(b)
		old, _ := json.Marshal(r)
		f.Add(old)
		if len(b) > 2 {
			f.Add(b[:rng.IntN(len(b))])
			f.Add(bytes.Replace(b, []byte(`,"`), []byte(`, "`), 1))
		}
	}
	f.Add([]byte(`{"v":1,"env":{"From":"\u003c\uD834\uDD1E\ud834\u0041"},"rcpts":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, ref record
		fastOK := decodeRecord(b, &fast)
		err := json.Unmarshal(b, &ref)
		if fastOK {
			if err != nil {
				t.Fatalf("decodeRecord read what json.Unmarshal refuses (%v): %q", err, b)
			}
			if !reflect.DeepEqual(fast, ref) {
				t.Fatalf("decodeRecord:\n%#v\njson.Unmarshal:\n%#v\nof %q", fast, ref, b)
			}
		}
		if err != nil {
			return
		}
		if again, ok := appendRecord(nil, &ref); ok {
			checkFastPath(t, again)
		}
	})
}

// A record the fast path gives up on part way is read by json.Unmarshal
// from the start.
func TestDecodeFallsBack(t *testing.T) {
	b := []byte(`{"v":1,"env":{"From":"app@contoso.com","Size":1}, "rcpts":[{"Addr":"bob@fabrikam.com","status":"queued","attempts":1}]}`)
	if decodeRecord(b, &record{}) {
		t.Fatalf("decodeRecord read %s", b)
	}
	m, err := decode("0ab1cdef23456789", b, 10)
	if err != nil {
		t.Fatal(err)
	}
	if m.Env.From != "app@contoso.com" || len(m.Rcpts) != 1 || m.Rcpts[0].Addr != "bob@fabrikam.com" || m.Rcpts[0].Attempts != 1 {
		t.Errorf("decoded %+v", m)
	}
}

// BenchmarkDecode reads a record as a restart does, by the fast path and
// by json.Unmarshal: a message just received, and one for five recipients
// after a few refusals.
func BenchmarkDecode(b *testing.B) {
	at := time.Date(2026, 11, 24, 9, 15, 0, 123456789, time.UTC)
	fresh := record{V: recordVersion, Env: mail.Envelope{
		ID: "0ab1cdef23456789", From: "app@contoso.com", Body: mail.Body8BitMIME, Size: 10240, Received: at,
		Origin: mail.Origin{Connector: "Default", ClientIP: netip.MustParseAddr("192.0.2.10"), ClientHelo: "erp01.contoso.com",
			TLS: "TLS1.3 TLS_AES_128_GCM_SHA256", Session: "06h0s7sbfk004of0"},
		MessageID: "<inv-1042@erp.contoso.com>",
	}, Rcpts: []Rcpt{{Recipient: mail.Recipient{Addr: "bob@fabrikam.example"}, Status: StatusQueued}}}
	retried := fresh
	retried.Rcpts = nil
	for _, addr := range []mail.Address{"bob", "carol", "dave", "erin", "frank"} {
		retried.Rcpts = append(retried.Rcpts, Rcpt{Recipient: mail.Recipient{Addr: addr + "@fabrikam.example"}, Status: StatusQueued,
			Attempts: 3, LastError: `mx.fabrikam.example [192.0.2.1] said: 451 4.7.1 "Greylisted", try again later`,
			LastAttempt: at.Add(20 * time.Minute), NextAttempt: at.Add(50 * time.Minute)})
	}
	for _, c := range []struct {
		name string
		r    record
	}{{"1rcpt", fresh}, {"5rcpts", retried}} {
		rec, _ := appendRecord(nil, &c.r)
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r record
				if !decodeRecord(rec, &r) {
					b.Fatal("not read")
				}
			}
		})
		b.Run(c.name+"/json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r record
				if err := json.Unmarshal(rec, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
