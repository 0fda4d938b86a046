package tracking

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// jsonRecord is the reference appendRecord must match.
func jsonRecord(e *Event) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(e)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func TestAppendRecordMatchesJSON(t *testing.T) {
	full := Event{
		Time: time.Date(2026, 11, 24, 9, 15, 0, 200_000_000, time.UTC), Event: EventDefer, Source: "DELIVERY",
		ID: "0ab1cdef23456789", MessageID: "<inv-1042@erp.contoso.com>", Sender: "app@contoso.com",
		Recipients: []string{"bob@fabrikam.com", `"odd,\"name"@fabrikam.com`}, Connector: "Exchange",
		ClientIP: "10.0.0.5", ClientName: "erp01", AuthUser: "erp", NextHop: "Exchange",
		Host: "exch1.contoso.com [10.0.0.9]", Reply: "451 4.4.1 cannot connect: <refused> & done\r\n\tnext",
		Size: 48213, Related: "0ab1cdef23456790", Session: "06h0s7sbfk004of0",
	}
	for _, e := range []Event{
		full,
		{Time: time.Date(2026, 11, 24, 9, 15, 0, 0, time.FixedZone("CET", 3600)), Event: EventReceive},
		{Time: time.Now(), Event: EventFail, Source: "SMTP", Sender: "bad\xffutf8\x00\x1f\x7f", Reply: "line\u2028sep\u2029 é ü 日本"},
	} {
		if got, want := appendRecord(nil, &e), jsonRecord(&e); !bytes.Equal(got, want) {
			t.Errorf("appendRecord:\n%s\nencoding/json:\n%s", got, want)
		}
	}
}
