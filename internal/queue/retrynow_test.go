package queue_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// tryNow are the ways a queue in Retry is tried before its next retry:
// a reload (the config may have fixed the hop) and an operator's queue
// retry or message retry.
var tryNow = []struct {
	name string
	do   func(t *testing.T, f *fixture, id mail.ID)
}{
	{"reload", func(t *testing.T, f *fixture, id mail.ID) { f.q.Apply(f.reloaded(t, "")) }},
	{"queue retry", func(t *testing.T, f *fixture, id mail.ID) {
		if err := f.q.RetryQueue("Exchange"); err != nil {
			t.Fatal(err)
		}
	}},
	{"message retry", func(t *testing.T, f *fixture, id mail.ID) {
		if _, err := f.q.RetryMessage(id); err != nil {
			t.Fatal(err)
		}
	}},
}

// An attempt made out of schedule (a reload, queue retry, message retry)
// that fails again is recorded (last error, last retry, the log line, a
// tracking DEFER) but is not a scheduled retry: the retry count and the
// next retry stay as they were, the next retry at least a minute away.
// Counted, every reload of an unrelated setting doubled a failing hop's
// wait: five reloads took a queue from 2 retries to 7, an hour away.
func TestAttemptOutOfScheduleKeepsTheRetrySchedule(t *testing.T) {
	for _, how := range tryNow {
		t.Run(how.name, func(t *testing.T) {
			f := newFixture(t, "")
			env := f.put(t, "app@contoso.com", "bob@contoso.com")
			f.put(t, "app@contoso.com", "carol@contoso.com")
			refused := func(n int) queue.Outcome {
				return fail(fmt.Sprintf("451 4.4.1 cannot connect to exch1.contoso.com:25: connection refused (%d)", n))
			}
			// Two scheduled retries that fail: retry count 2, the next
			// retry 2 minutes after the second.
			f.q.HopFailed("Exchange", f.q.Lease("Exchange"), refused(0))
			f.clock.Add(time.Minute)
			f.q.HopFailed("Exchange", f.q.Lease("Exchange"), refused(0))
			scheduled := f.queueInfo(t, "Exchange")
			if scheduled.RetryCount != 2 || !scheduled.NextRetryTime.Equal(f.clock.Now().Add(2*time.Minute)) {
				t.Fatalf("after two failed retries: %+v", scheduled)
			}

			for i := 1; i <= 6; i++ {
				f.clock.Add(20 * time.Second)
				how.do(t, f, env.ID)
				// Both sessions of the attempt fail: one failure.
				a := f.q.Lease("Exchange")
				if a == nil {
					t.Fatalf("%s %d: the queue in Retry is not tried at once", how.name, i)
				}
				b := f.q.Lease("Exchange")
				f.q.HopFailed("Exchange", a, refused(i))
				f.q.HopFailed("Exchange", b, refused(i))
				qi := f.queueInfo(t, "Exchange")
				next := scheduled.NextRetryTime
				if min := f.clock.Now().Add(time.Minute); min.After(next) {
					next = min // the 6th, 20s before the retry: not at once again
				}
				if qi.RetryCount != 2 || !qi.NextRetryTime.Equal(next) {
					t.Fatalf("%s %d, failed again: retry count %d, next retry %s; want 2 and %s, as scheduled",
						how.name, i, qi.RetryCount, qi.NextRetryTime.Format(time.TimeOnly), next.Format(time.TimeOnly))
				}
				if !strings.Contains(qi.LastError, fmt.Sprintf("refused (%d)", i)) || !qi.LastRetryTime.Equal(f.clock.Now()) {
					t.Errorf("%s %d: last error %q at %s; want this attempt's", how.name, i, qi.LastError, qi.LastRetryTime.Format(time.TimeOnly))
				}
				if f.q.Lease("Exchange") != nil {
					t.Fatalf("%s %d: leased again after the attempt failed", how.name, i)
				}
			}
			if n := strings.Count(f.logs.String(), `msg="next hop failed; queue in retry" queue=Exchange retries=2`); n != 7 {
				t.Errorf("%d log lines for the failures at retry count 2; want 7 (the second retry and 6 out of schedule):\n%s", n, f.logs)
			}
			f.track.Flush()
			defers, err := tracking.Search(f.dir+"/track", tracking.Query{MessageID: string(env.ID), Event: tracking.EventDefer})
			if err != nil {
				t.Fatal(err)
			}
			if len(defers) < 4 {
				t.Errorf("%d DEFER events for %s; want each failed attempt that leased it", len(defers), env.ID)
			}

			// The scheduled retry, when it comes, counts.
			f.clock.Set(f.queueInfo(t, "Exchange").NextRetryTime)
			f.q.HopFailed("Exchange", f.q.Lease("Exchange"), refused(9))
			if qi := f.queueInfo(t, "Exchange"); qi.RetryCount != 3 || !qi.NextRetryTime.Equal(f.clock.Now().Add(4*time.Minute)) {
				t.Errorf("the scheduled retry after: retry count %d, next retry in %s; want 3 and 4m", qi.RetryCount, qi.NextRetryTime.Sub(f.clock.Now()))
			}
		})
	}
}

// A queue whose retry time has come while an attempt out of schedule
// waited (here a suspended queue, resumed after it) makes a scheduled
// retry: a failure counts.
func TestAttemptOutOfScheduleLateIsScheduled(t *testing.T) {
	f := newFixture(t, "")
	f.put(t, "app@contoso.com", "bob@contoso.com")
	f.q.HopFailed("Exchange", f.q.Lease("Exchange"), fail("451 4.4.1 connection refused"))
	if err := f.q.SuspendQueue("Exchange"); err != nil {
		t.Fatal(err)
	}
	if err := f.q.RetryQueue("Exchange"); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour)
	if err := f.q.ResumeQueue("Exchange"); err != nil {
		t.Fatal(err)
	}
	f.q.HopFailed("Exchange", f.q.Lease("Exchange"), fail("451 4.4.1 connection refused"))
	if qi := f.queueInfo(t, "Exchange"); qi.RetryCount != 2 {
		t.Errorf("an attempt after the retry time failed: retry count %d; want 2", qi.RetryCount)
	}
}

// A recipient the upstream deferred (a full mailbox, greylisting) and an
// operator retries out of schedule keeps its schedule when deferred
// again, as a queue does: its attempts drive its backoff.
func TestRecipientRetriedOutOfScheduleKeepsItsSchedule(t *testing.T) {
	for _, how := range []string{"message retry", "queue retry"} {
		t.Run(how, func(t *testing.T) {
			f := newFixture(t, "")
			ctx := context.Background()
			env := f.put(t, "app@contoso.com", "carol@fabrikam.example")
			key := "Internet/fabrikam.example"
			full := fail("452 4.2.2 mailbox full")
			f.q.Done(ctx, f.q.Lease(key), []queue.Outcome{full})
			f.clock.Add(time.Minute)
			f.q.Done(ctx, f.q.Lease(key), []queue.Outcome{full})
			before, _ := f.q.Message(env.ID)
			if r := before.Recipients[0]; r.Attempts != 2 || !r.NextAttempt.Equal(f.clock.Now().Add(2*time.Minute)) {
				t.Fatalf("after two deferrals: %+v", r)
			}
			for i := range 3 {
				f.clock.Add(20 * time.Second)
				var err error
				if how == "message retry" {
					_, err = f.q.RetryMessage(env.ID)
				} else {
					err = f.q.RetryQueue(key)
				}
				if err != nil {
					t.Fatal(err)
				}
				l := f.q.Lease(key)
				if l == nil {
					t.Fatalf("%s %d: not due", how, i)
				}
				f.q.Done(ctx, l, []queue.Outcome{fail(fmt.Sprintf("452 4.2.2 mailbox full (%d)", i))})
				m, _ := f.q.Message(env.ID)
				r := m.Recipients[0]
				if r.Attempts != 2 || !r.NextAttempt.Equal(before.Recipients[0].NextAttempt) {
					t.Fatalf("%s %d, deferred again: attempts %d, next attempt %s; want 2 and %s, as scheduled",
						how, i, r.Attempts, r.NextAttempt.Format(time.TimeOnly), before.Recipients[0].NextAttempt.Format(time.TimeOnly))
				}
				if !strings.Contains(r.LastError, fmt.Sprintf("full (%d)", i)) || !r.LastAttempt.Equal(f.clock.Now()) {
					t.Errorf("%s %d: last error %q at %s; want this attempt's", how, i, r.LastError, r.LastAttempt.Format(time.TimeOnly))
				}
			}
			// The scheduled attempt counts.
			f.clock.Set(before.Recipients[0].NextAttempt)
			f.q.Done(ctx, f.q.Lease(key), []queue.Outcome{full})
			m, _ := f.q.Message(env.ID)
			if r := m.Recipients[0]; r.Attempts != 3 || !r.NextAttempt.Equal(f.clock.Now().Add(4*time.Minute)) {
				t.Errorf("the scheduled attempt: attempts %d, next in %s; want 3 and 4m", r.Attempts, r.NextAttempt.Sub(f.clock.Now()))
			}
		})
	}
}

// message retry of a message whose queue is in Retry tries the queue's
// next hop now too, as queue retry does: it said "due now" and nothing
// went until the queue's retry time. A suspended queue stays suspended,
// and the answer says which queues it found so.
func TestMessageRetryTriesItsQueueInRetry(t *testing.T) {
	f := newFixture(t, "")
	env := f.put(t, "app@contoso.com", "bob@contoso.com", "carol@fabrikam.example")
	f.q.HopFailed("Exchange", f.q.Lease("Exchange"), fail("451 4.4.1 connection refused"))
	if err := f.q.SuspendQueue("Internet/fabrikam.example"); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(10 * time.Second)
	got, err := f.q.RetryMessage(env.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.InRetry) != "[Exchange]" || fmt.Sprint(got.Suspended) != "[Internet/fabrikam.example]" {
		t.Errorf("message retry says the queues in Retry are %v and the suspended ones %v; want [Exchange] and [Internet/fabrikam.example]", got.InRetry, got.Suspended)
	}
	if l := f.q.Lease("Exchange"); l == nil || l.ID != env.ID {
		t.Fatalf("after message retry the message is not delivered through its queue in Retry: %+v", l)
	}
	if l := f.q.Lease("Internet/fabrikam.example"); l != nil {
		t.Error("message retry delivered through a suspended queue")
	}
}
