package queue_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/dsn"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
)

// RFC 3461 §6.2: RET=FULL returns the whole original with a failure,
// unless it is larger than dsn.MaxReturn; then, and with a success or
// delay notice, only its header, and the text says why.
func TestReturnFull(t *testing.T) {
	line := strings.Repeat("y", 78) + "\r\n"
	small := "Subject: small\r\n\r\n" + strings.Repeat(line, 10) + "end of the body\r\n"
	large := "Subject: large\r\n\r\n" + strings.Repeat(line, 700) + "end of the body\r\n" // 56 KB
	cases := []struct {
		name     string
		body     string
		ret      mail.Ret
		delay    bool
		wantFull bool
		tooLarge bool // the text says so
	}{
		{name: "small with RET=FULL", body: small, ret: mail.RetFull, wantFull: true},
		{name: "large with RET=FULL", body: large, ret: mail.RetFull, tooLarge: true},
		{name: "large with RET=HDRS", body: large, ret: mail.RetHeaders},
		{name: "large by default", body: large},
		{name: "delay notice with RET=FULL", body: small, ret: mail.RetFull, delay: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "")
			ctx := context.Background()
			env := &mail.Envelope{ID: mail.NewID(), From: "app@contoso.com", Received: f.clock.Now(), Ret: tc.ret,
				Rcpts: []mail.Recipient{{Addr: "carol@fabrikam.example"}}}
			if err := f.q.Put(ctx, env, strings.NewReader(tc.body)); err != nil {
				t.Fatal(err)
			}
			if tc.delay {
				f.q.Done(ctx, f.q.Lease("Internet/fabrikam.example"), []queue.Outcome{fail("451 4.4.1 no answer")})
				f.clock.Add(4*time.Hour + time.Minute)
				f.q.Sweep(ctx)
			} else {
				f.q.Done(ctx, f.q.Lease("Internet/fabrikam.example"), []queue.Outcome{fail("550 5.1.1 carol: no such user")})
			}
			texts := f.noticeTexts(t)
			if len(texts) != 1 {
				t.Fatalf("%d notices; want 1", len(texts))
			}
			n, err := dsn.Parse(texts[0])
			if err != nil {
				t.Fatal(err)
			}
			head, _, _ := strings.Cut(tc.body, "\r\n\r\n")
			want, wantRet := head+"\r\n", mail.RetHeaders
			if tc.wantFull {
				want, wantRet = tc.body, mail.RetFull
			}
			if n.Return != wantRet || string(n.Original) != want {
				t.Errorf("notice returns %s, %d octets; want %s, %d octets", n.Return, len(n.Original), wantRet, len(want))
			}
			if said := bytes.Contains(texts[0], []byte("too large to return")); said != tc.tooLarge {
				t.Errorf("the text says the original is too large to return: %v; want %v", said, tc.tooLarge)
			}
		})
	}
}
