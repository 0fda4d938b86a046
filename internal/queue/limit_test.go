package queue_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/queue"
)

// A session refused while two others work lowers the hop's session limit
// to two, without an attempt, an error or Retry; the limit rises by one a
// minute, to at least what the upstream has taken at once, and never
// above max_connections, also after a reload lowers it.
func TestHopBusy(t *testing.T) {
	f := newFixture(t, "")
	for range 5 {
		f.put(t, "app@contoso.com", "bob@contoso.com")
	}
	sessions := func(want int, when string) {
		t.Helper()
		if qi := f.queueInfo(t, "Exchange"); qi.SessionLimit != want || qi.MaxConnections != 20 {
			t.Errorf("%s: session limit %d of max_connections %d; want %d of 20", when, qi.SessionLimit, qi.MaxConnections, want)
		}
	}
	sessions(20, "at first")
	f.q.Lease("Exchange")
	f.q.Lease("Exchange")
	refused := f.q.Lease("Exchange")
	if n := f.q.HopBusy("Exchange", refused, 2); n != 2 {
		t.Fatalf("HopBusy with 2 working = %d; want 2", n)
	}
	qi := f.queueInfo(t, "Exchange")
	if qi.Status != queue.HopActive || qi.RetryCount != 0 || !qi.LastRetryTime.IsZero() || qi.LastError != "" {
		t.Errorf("queue after a refusal while sessions work: %+v; want Active, no retry, no error", qi)
	}
	mi, _ := f.q.Message(refused.ID)
	if r := mi.Recipients[0]; r.Attempts != 0 || r.LastError != "" || !r.NextAttempt.IsZero() {
		t.Errorf("refused session's recipient: %+v; want it untouched", r)
	}
	if work, _ := f.q.Ready(); len(work) != 1 || work[0].Sessions != 2 || work[0].Due != 2 {
		t.Errorf("Ready after the refusal: %+v; want 2 sessions, 2 due counted", work)
	}

	f.clock.Add(queue.RaiseEvery - time.Second)
	sessions(2, "just under a minute later")
	f.clock.Add(time.Second)
	sessions(3, "a minute later")
	f.q.HopOK("Exchange", 5) // five connected at once after all
	sessions(5, "after five sessions connected")
	f.q.HopBusy("Exchange", nil, 0)
	sessions(1, "refused with none working: never below one")
	f.clock.Add(30 * queue.RaiseEvery)
	sessions(20, "half an hour later")

	f.q.HopBusy("Exchange", nil, 6)
	cfg, err := config.Parse("", []byte(strings.Replace(
		strings.Replace(testConfig, "DATA", f.dir, 1), "smarthosts: [exch1.contoso.com, exch2.contoso.com]", "smarthosts: [exch1.contoso.com], max_connections: 4", 1)))
	if err != nil {
		t.Fatal(err)
	}
	f.q.Apply(cfg)
	if qi := f.queueInfo(t, "Exchange"); qi.SessionLimit != 4 || qi.MaxConnections != 4 {
		t.Errorf("after a reload to max_connections 4: session limit %d of %d; want 4 of 4", qi.SessionLimit, qi.MaxConnections)
	}
}
