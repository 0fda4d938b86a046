package queue_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/dsn"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/store/sqlite"
	"github.com/sluice-relay/sluice/internal/syncbuf"
	"github.com/sluice-relay/sluice/internal/testclock"
	"github.com/sluice-relay/sluice/internal/tracking"
)

const testConfig = `
node: {hostname: relay.contoso.com, data_dir: DATA}
accepted_domains: [{domain: contoso.com}]
receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:25"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}
send_connectors:
  - {name: Exchange, address_spaces: [contoso.com], smarthosts: [exch1.contoso.com, exch2.contoso.com]}
  - {name: Internet, address_spaces: ["*.example"], delivery: mx}
`

type fixture struct {
	q     *queue.Queue
	store *sqlite.Store
	clock *testclock.Clock
	dir   string
	cfg   *config.Config
	track *tracking.Log // in dir/track
	logs  *syncBuffer   // the queue's log
}

// syncBuffer is a bytes.Buffer for a log written from several goroutines.
type syncBuffer = syncbuf.Buffer

func newFixture(t testing.TB, extra string) *fixture {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse("", []byte(strings.Replace(testConfig, "DATA", dir, 1)+extra))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: testclock.New(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)), dir: dir, cfg: cfg, logs: &syncBuffer{}}
	f.open(t)
	return f
}

func (f *fixture) open(t testing.TB) {
	t.Helper()
	s, err := sqlite.Open(f.dir+"/queue", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f.track == nil {
		tl, err := tracking.Open(filepath.Join(f.dir, "track"), 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.track = tl
		t.Cleanup(tl.Close)
	}
	q, err := queue.Open(context.Background(), queue.Options{Store: s, Config: f.cfg, Now: f.clock.Now,
		Tracking: f.track, Log: slog.New(slog.NewTextHandler(f.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.q, f.store = q, s
	t.Cleanup(func() { s.Close() })
}

func (f *fixture) put(t testing.TB, from string, rcpts ...string) *mail.Envelope {
	t.Helper()
	env := &mail.Envelope{ID: mail.NewID(), From: mail.Address(from), Received: f.clock.Now()}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, mail.Recipient{Addr: mail.Address(r)})
	}
	body := "Subject: test\r\nMessage-ID: <" + string(env.ID) + "@test>\r\n\r\nhello\r\n"
	if err := f.q.Put(context.Background(), env, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if env.Size != int64(len(body)) {
		t.Errorf("Put set size %d, want %d", env.Size, len(body))
	}
	return env
}

func ok() queue.Outcome {
	return queue.Outcome{Delivered: true, Reply: reply.Reply{Code: 250, Enhanced: [3]int{2, 0, 0}, Text: "queued"}, Host: "exch1"}
}

func fail(line string) queue.Outcome {
	code := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	return queue.Outcome{Reply: reply.Parse(code, line[4:]), Host: "mx.fabrikam.example [192.0.2.1]"}
}

func (f *fixture) queueInfo(t *testing.T, name string) queue.QueueInfo {
	t.Helper()
	qi, found := f.q.QueueByName(name)
	if !found {
		t.Fatalf("no queue %q; queues: %+v", name, f.q.Queues())
	}
	return qi
}

// bounces returns the DSNs in the queue, parsed.
func (f *fixture) bounces(t *testing.T) []*dsn.Report {
	t.Helper()
	var out []*dsn.Report
	for _, b := range f.noticeTexts(t) {
		rep, err := dsn.Parse(b)
		if err != nil {
			t.Fatalf("notice does not parse: %v\n%s", err, b)
		}
		out = append(out, rep)
	}
	return out
}

// noticeTexts returns the DSNs in the queue as they were composed.
func (f *fixture) noticeTexts(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for _, m := range f.q.Messages(func(mi *queue.MessageInfo) bool { return mi.From == "<>" }) {
		r, err := f.store.Body(context.Background(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		out = append(out, b)
	}
	return out
}

func TestDeliverAndDelete(t *testing.T) {
	f := newFixture(t, "")
	env := f.put(t, "app@contoso.com", "bob@contoso.com")
	work, _ := f.q.Ready()
	if len(work) != 1 || work[0].Key != "Exchange" || work[0].Due != 1 {
		t.Fatalf("Ready = %+v", work)
	}
	if qi := f.queueInfo(t, "Exchange"); qi.Status != "Ready" || qi.MessageCount != 1 || qi.DeliveryType != "SmartHostConnectorDelivery" {
		t.Errorf("queue before delivery: %+v", qi)
	}
	l := f.q.Lease("Exchange")
	if l == nil || l.ID != env.ID || len(l.Env.Rcpts) != 1 {
		t.Fatalf("Lease = %+v", l)
	}
	if f.q.Lease("Exchange") != nil {
		t.Fatal("the same message was leased twice")
	}
	if qi := f.queueInfo(t, "Exchange"); qi.Status != "Active" {
		t.Errorf("queue during delivery: %s", qi.Status)
	}
	body, _ := l.Body(context.Background())
	b, _ := io.ReadAll(body)
	if !strings.Contains(string(b), "hello") {
		t.Errorf("body %q", b)
	}
	f.q.Done(context.Background(), l, []queue.Outcome{ok()})
	if f.q.Len() != 0 || len(f.q.Queues()) != 0 {
		t.Fatalf("after delivery: %d messages, queues %+v", f.q.Len(), f.q.Queues())
	}
	if _, err := f.store.Body(context.Background(), env.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("delivered message still in the store: %v", err)
	}
}

func TestPartialFailureBouncesOnlyFailed(t *testing.T) {
	f := newFixture(t, "")
	f.put(t, "app@contoso.com", "bob@contoso.com", "carol@fabrikam.example", "dave@northwind.example")
	names := []string{}
	for _, qi := range f.q.Queues() {
		names = append(names, qi.Identity)
	}
	if got := strings.Join(names, ","); got != "Exchange,Internet/fabrikam.example,Internet/northwind.example" {
		t.Fatalf("a message to three domains is in queues %s", got)
	}
	ctx := context.Background()
	f.q.Done(ctx, f.q.Lease("Exchange"), []queue.Outcome{ok()})
	f.q.Done(ctx, f.q.Lease("Internet/fabrikam.example"), []queue.Outcome{fail("550 5.1.1 carol: no such user")})
	f.q.Done(ctx, f.q.Lease("Internet/northwind.example"), []queue.Outcome{ok()})
	b := f.bounces(t)
	if len(b) != 1 {
		t.Fatalf("%d bounces, want 1", len(b))
	}
	if len(b[0].Recipients) != 1 || b[0].Recipients[0].Final != "carol@fabrikam.example" ||
		b[0].Recipients[0].Action != dsn.ActionFailed || b[0].Recipients[0].Status != [3]int{5, 1, 1} ||
		!strings.Contains(b[0].Recipients[0].Diagnostic, "550 5.1.1 carol: no such user") {
		t.Errorf("bounce reports %+v", b[0].Recipients)
	}
	if m := f.q.Messages(nil); len(m) != 1 || m[0].From != "<>" || m[0].Recipients[0].Address != "app@contoso.com" {
		t.Errorf("queue after partial failure: %+v (want only the bounce to the sender)", m)
	}
}

func TestRetryBackoffAndExpiry(t *testing.T) {
	f := newFixture(t, "")
	f.put(t, "app@contoso.com", "carol@fabrikam.example")
	ctx := context.Background()
	key := "Internet/fabrikam.example"
	var waits []time.Duration
	for i := 0; i < 9; i++ {
		l := f.q.Lease(key)
		if l == nil {
			t.Fatalf("attempt %d: nothing to lease", i+1)
		}
		f.q.Done(ctx, l, []queue.Outcome{fail("451 4.3.0 try later")})
		if f.q.Lease(key) != nil {
			t.Fatal("leased again before the retry time")
		}
		qi := f.queueInfo(t, key)
		if qi.Status != "Retry" || !strings.Contains(qi.LastError, "451 4.3.0 try later") {
			t.Fatalf("queue after a 4xx: %+v", qi)
		}
		wait := qi.NextRetryTime.Sub(f.clock.Now())
		waits = append(waits, wait)
		f.clock.Add(wait)
	}
	want := "[1m0s 2m0s 4m0s 8m0s 16m0s 32m0s 1h0m0s 1h0m0s 1h0m0s]"
	if got := fmtDurations(waits); got != want {
		t.Errorf("retry waits %s, want %s", got, want)
	}
	f.clock.Add(48 * time.Hour)
	f.q.Sweep(ctx)
	b := f.bounces(t)
	if len(b) != 1 || b[0].Recipients[0].Status != [3]int{5, 4, 7} || !strings.Contains(b[0].Recipients[0].Diagnostic, "451 4.3.0 try later") {
		t.Fatalf("expiry bounce: %+v", b)
	}
}

// An expiry is logged with the queue the message waited in and why, as
// Get-Queue and the tracking log's EXPIRE show them.
func TestExpiryLogNamesQueueAndLastError(t *testing.T) {
	f := newFixture(t, "")
	env := f.put(t, "app@contoso.com", "carol@fabrikam.example")
	f.q.Done(context.Background(), f.q.Lease("Internet/fabrikam.example"), []queue.Outcome{fail("451 4.4.1 no answer")})
	f.clock.Add(49 * time.Hour)
	f.q.Sweep(context.Background())
	var line string
	for _, l := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(l, `msg="message expired`) {
			line = l
		}
	}
	want := `msg=` + string(env.ID) + ` rcpts=1 queue=Internet/fabrikam.example last_error="mx.fabrikam.example [192.0.2.1] said: 451 4.4.1 no answer"`
	if !strings.Contains(line, want) {
		t.Errorf("expiry log line:\n%s\nwant it to contain\n%s\nlog:\n%s", line, want, f.logs)
	}
}

func fmtDurations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return "[" + strings.Join(s, " ") + "]"
}

func TestDelayNoticeOnce(t *testing.T) {
	f := newFixture(t, "")
	f.put(t, "app@contoso.com", "carol@fabrikam.example")
	ctx := context.Background()
	f.q.Done(ctx, f.q.Lease("Internet/fabrikam.example"), []queue.Outcome{fail("451 4.4.1 no answer")})
	f.clock.Add(4*time.Hour + time.Minute)
	f.q.Sweep(ctx)
	f.q.Sweep(ctx)
	b := f.bounces(t)
	if len(b) != 1 || b[0].Recipients[0].Action != dsn.ActionDelayed {
		t.Fatalf("delay notices: %+v", b)
	}
	if until := b[0].Recipients[0].WillRetryUntil; !until.Equal(f.clock.Now().Add(-4*time.Hour - time.Minute).Add(48 * time.Hour)) {
		t.Errorf("Will-Retry-Until %v", until)
	}
	if m, _ := f.q.Message(f.q.Messages(func(mi *queue.MessageInfo) bool { return mi.From != "<>" })[0].ID); m.Recipients[0].Status != queue.StatusQueued {
		t.Errorf("the delayed recipient is %s, want still queued", m.Recipients[0].Status)
	}
}

func TestNoBounceCases(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	env := &mail.Envelope{ID: mail.NewID(), From: mail.Null, Received: f.clock.Now(),
		Rcpts: []mail.Recipient{{Addr: "carol@fabrikam.example"}}}
	if err := f.q.Put(ctx, env, strings.NewReader("Subject: a bounce\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	env2 := &mail.Envelope{ID: mail.NewID(), From: "app@contoso.com", Received: f.clock.Now(),
		Rcpts: []mail.Recipient{{Addr: "dave@fabrikam.example", Notify: mail.NotifyNever}, {Addr: "erin@fabrikam.example", Notify: mail.NotifySuccess}}}
	if err := f.q.Put(ctx, env2, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for l := f.q.Lease("Internet/fabrikam.example"); l != nil; l = f.q.Lease("Internet/fabrikam.example") {
		failed += len(l.Rcpts)
		f.q.Done(ctx, l, repeat(fail("550 5.1.1 unknown"), len(l.Rcpts)))
	}
	if failed != 3 {
		t.Fatalf("%d recipients leased and refused, want all 3", failed)
	}
	if n := f.q.Len(); n != 0 {
		t.Fatalf("%d messages left: a bounce of <> or against NOTIFY was queued: %+v", n, f.q.Messages(nil))
	}
}

func repeat(o queue.Outcome, n int) []queue.Outcome {
	out := make([]queue.Outcome, n)
	for i := range out {
		out[i] = o
	}
	return out
}

func TestHopFailureAndRecovery(t *testing.T) {
	f := newFixture(t, "")
	for i := 0; i < 3; i++ {
		f.put(t, "app@contoso.com", "bob@contoso.com")
	}
	l := f.q.Lease("Exchange")
	seed003 := queue.Outcome{Reply: reply.Parse(454, "4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found"), Host: "exch1.contoso.com:25"}
	f.q.HopFailed("Exchange", l, seed003)
	qi := f.queueInfo(t, "Exchange")
	if qi.Status != "Retry" || qi.MessageCount != 3 || qi.RetryCount != 1 ||
		qi.LastError != "exch1.contoso.com:25 said: 454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found" ||
		!qi.NextRetryTime.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("Get-Queue after the hop failed: %+v", qi)
	}
	if work, next := f.q.Ready(); len(work) != 0 || !next.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("Ready during retry: %+v next %v", work, next)
	}
	// message show says when the leased message was tried and when all
	// three are tried next: the queue's retry, not "-".
	for _, mi := range f.q.Messages(nil) {
		m, _ := f.q.Message(mi.ID)
		rc := m.Recipients[0]
		if !rc.NextAttempt.Equal(qi.NextRetryTime) || mi.ID == l.ID && !rc.LastAttempt.Equal(f.clock.Now()) {
			t.Errorf("message %s: last attempt %v, next %v; want the hop's failure (%v) for the leased one and its retry %v for all",
				mi.ID, rc.LastAttempt, rc.NextAttempt, f.clock.Now(), qi.NextRetryTime)
		}
	}
	f.clock.Add(time.Minute)
	f.q.HopOK("Exchange", 1)
	for i := 0; i < 3; i++ {
		l := f.q.Lease("Exchange")
		if l == nil {
			t.Fatalf("message %d not leased after the retry time", i)
		}
		f.q.Done(context.Background(), l, []queue.Outcome{ok()})
	}
	if f.q.Len() != 0 {
		t.Fatal("messages left")
	}
}

// A queue going into Retry and out of it is one log line each, with
// what Get-Queue shows: the sessions of one attempt that fail together
// (up to max_connections) are one failure, and so are their log lines.
func TestRetryIsLoggedOnceEachWay(t *testing.T) {
	f := newFixture(t, "")
	f.put(t, "app@contoso.com", "bob@contoso.com")
	f.put(t, "app@contoso.com", "carol@contoso.com")
	a, b := f.q.Lease("Exchange"), f.q.Lease("Exchange")
	refused := queue.Outcome{Reply: reply.Parse(451, "4.4.1 cannot connect to exch1.contoso.com:25: connection refused")}
	f.q.HopFailed("Exchange", a, refused)
	f.q.HopFailed("Exchange", b, refused)
	f.clock.Add(time.Minute)
	f.q.HopOK("Exchange", 1)
	f.q.HopOK("Exchange", 1)
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	want := []string{
		`level=WARN msg="next hop failed; queue in retry" queue=Exchange retries=1 next_retry=2026-11-24T09:01:00.000Z last_error="451 4.4.1 cannot connect to exch1.contoso.com:25: connection refused"`,
		`level=INFO msg="next hop took a connection; queue out of retry" queue=Exchange retries=1`,
	}
	if len(lines) != len(want) {
		t.Fatalf("log:\n%s\nwant %d lines", f.logs, len(want))
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("log line %d:\n%s\nwant it to end in\n%s", i, lines[i], w)
		}
	}
}

// A message waiting in a queue that is in Retry is a Retry message, as
// Get-Message shows it, whether or not it was itself attempted: the
// ones never leased (the hop failed on another message's connection)
// too, or `message list --status Retry` misses them.
func TestMessagesOfARetryQueueAreRetry(t *testing.T) {
	f := newFixture(t, "")
	tried := f.put(t, "app@contoso.com", "bob@contoso.com")
	waiting := f.put(t, "app@contoso.com", "carol@contoso.com")
	unrouted := f.put(t, "app@contoso.com", "x@elsewhere.org")
	f.q.HopFailed("Exchange", f.q.Lease("Exchange"), queue.Outcome{Reply: reply.Parse(421, "4.4.2 connection dropped"), Host: "exch1.contoso.com:25"})
	for _, id := range []mail.ID{tried.ID, waiting.ID, unrouted.ID} {
		if m, _ := f.q.Message(id); m.Status != "Retry" {
			t.Errorf("message %s in a queue in Retry has status %q", id, m.Status)
		}
	}
	f.clock.Add(time.Minute)
	f.q.HopOK("Exchange", 1)
	if m, _ := f.q.Message(waiting.ID); m.Status != "Ready" {
		t.Errorf("after the queue's retry time the waiting message is %q, want Ready", m.Status)
	}
}

// A message whose recipients wait in several queues has one status
// whatever their order: Active while any is being delivered, else
// Suspended while any waits in a suspended queue, else Retry, else Ready.
func TestMessageStatusOfSeveralQueues(t *testing.T) {
	for _, order := range [][]string{{"bob@contoso.com", "carol@fabrikam.example"}, {"carol@fabrikam.example", "bob@contoso.com"}} {
		f := newFixture(t, "")
		m := f.put(t, "app@contoso.com", order...)
		if err := f.q.SuspendQueue("Exchange"); err != nil {
			t.Fatal(err)
		}
		f.q.HopFailed("Internet/fabrikam.example", f.q.Lease("Internet/fabrikam.example"), queue.Outcome{Reply: reply.Parse(421, "4.4.2 connection dropped")})
		if mi, _ := f.q.Message(m.ID); mi.Status != "Suspended" {
			t.Errorf("recipients %v, one in a suspended queue and one in Retry: status %q, want Suspended", order, mi.Status)
		}
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	f := newFixture(t, "")
	a := f.put(t, "app@contoso.com", "bob@contoso.com", "carol@fabrikam.example")
	f.q.Done(context.Background(), f.q.Lease("Exchange"), []queue.Outcome{ok()})
	f.q.Done(context.Background(), f.q.Lease("Internet/fabrikam.example"), []queue.Outcome{fail("451 4.4.1 later")})
	f.store.Close()
	f.open(t)
	m, found := f.q.Message(a.ID)
	if !found {
		t.Fatal("message lost in restart")
	}
	if m.Recipients[0].Status != queue.StatusDelivered || m.Recipients[1].Status != queue.StatusQueued ||
		m.Recipients[1].Attempts != 1 || !strings.Contains(m.Recipients[1].LastError, "4.4.1 later") {
		t.Errorf("recipient state after restart: %+v", m.Recipients)
	}
	if m.Size == 0 || m.From != "app@contoso.com" {
		t.Errorf("message after restart: %+v", m)
	}
	if _, found := f.q.QueueByName("Exchange"); found {
		t.Error("the delivered recipient's queue came back")
	}
	f.clock.Add(time.Minute)
	if l := f.q.Lease("Internet/fabrikam.example"); l == nil || len(l.Rcpts) != 1 || l.Env.Rcpts[0].Addr != "carol@fabrikam.example" {
		t.Fatalf("after restart the pending recipient is not scheduled: %+v", l)
	}
}

func TestUnreachableAndReroute(t *testing.T) {
	f := newFixture(t, "")
	f.put(t, "app@contoso.com", "x@elsewhere.org")
	qi := f.queueInfo(t, "Unreachable")
	if qi.Status != "Retry" || !strings.Contains(qi.LastError, "no send connector") {
		t.Errorf("Unreachable queue: %+v", qi)
	}
	if work, _ := f.q.Ready(); len(work) != 0 {
		t.Errorf("Ready offers the Unreachable queue: %+v", work)
	}
	cfg, err := config.Parse("", []byte(strings.Replace(testConfig, "DATA", f.dir, 1)+
		`  - {name: Everything else, address_spaces: ["*"], smarthosts: [relay.isp.example]}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.q.Apply(cfg)
	if _, found := f.q.QueueByName("Unreachable"); found {
		t.Error("Unreachable still there after adding a connector")
	}
	if qi := f.queueInfo(t, "Everything else"); qi.MessageCount != 1 || qi.NextHop != "relay.isp.example:25" {
		t.Errorf("rerouted queue: %+v", qi)
	}
}

func TestDiskFull(t *testing.T) {
	f := newFixture(t, "queue: {min_free_space: 1000000GB}\n")
	env := &mail.Envelope{ID: mail.NewID(), From: "a@contoso.com", Rcpts: []mail.Recipient{{Addr: "b@contoso.com"}}}
	err := f.q.Put(context.Background(), env, strings.NewReader("x\r\n"))
	if r, ok := reply.As(err); !ok || r.Error() != "452 4.3.1 Insufficient system storage, try again later" {
		t.Fatalf("Put on a full disk: %v", err)
	}
	if f.q.Len() != 0 {
		t.Fatal("message queued on a full disk")
	}
}

// A bounce is durable before the recipient it reports is final (package
// doc). While the disk is below min_free_space the queue refuses new
// messages, bounces too: the failed or expired recipient then stays
// queued, and its notice goes once there is room again. It was marked
// final and the message deleted: the sender never heard.
func TestBounceRefusedKeepsRecipient(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	failed := f.put(t, "app@contoso.com", "carol@fabrikam.example")
	expiring := f.put(t, "app@contoso.com", "dave@northwind.example")
	roomy := f.cfg
	f.diskFull(t)
	f.q.Done(ctx, f.q.Lease("Internet/fabrikam.example"), []queue.Outcome{fail("550 5.1.1 carol: no such user")})
	f.clock.Add(48 * time.Hour)
	f.q.Sweep(ctx)
	for _, id := range []mail.ID{failed.ID, expiring.ID} {
		m, found := f.q.Message(id)
		if !found || m.Recipients[0].Status != queue.StatusQueued {
			t.Fatalf("message %s after its bounce was refused: found %v, %+v; want kept with its recipient queued", id, found, m.Recipients)
		}
	}
	// Room again (and a restart: the state kept is the durable one).
	f.store.Close()
	f.cfg = roomy
	f.open(t)
	f.q.Sweep(ctx)
	if l := f.q.Lease("Internet/fabrikam.example"); l != nil {
		f.q.Done(ctx, l, []queue.Outcome{fail("550 5.1.1 carol: no such user")})
	}
	var about []string
	for _, b := range f.bounces(t) {
		for _, r := range b.Recipients {
			about = append(about, string(r.Final))
		}
	}
	if got := strings.Join(about, ","); got != "carol@fabrikam.example,dave@northwind.example" &&
		got != "dave@northwind.example,carol@fabrikam.example" {
		t.Errorf("bounces once there is room about %q; want carol's and dave's", got)
	}
	if m := f.q.Messages(func(mi *queue.MessageInfo) bool { return mi.From != "<>" }); len(m) != 0 {
		t.Errorf("messages left after their bounces were queued: %+v", m)
	}
}

func TestBodyErrorIsReply(t *testing.T) {
	f := newFixture(t, "")
	env := &mail.Envelope{ID: mail.NewID(), From: "a@contoso.com", Rcpts: []mail.Recipient{{Addr: "b@contoso.com"}}}
	err := f.q.Put(context.Background(), env, io.MultiReader(bytes.NewReader([]byte("x")), errReader{reply.TooBig}))
	if r, ok := reply.As(err); !ok || r.Code != 552 {
		t.Fatalf("Put with a body refused while read: %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestConcurrentHopFailuresAreOneAttempt(t *testing.T) {
	f := newFixture(t, "")
	for range 5 {
		f.put(t, "app@contoso.com", "bob@contoso.com")
	}
	// Five sessions lease at once and all fail to connect.
	var leases []*queue.Lease
	for l := f.q.Lease("Exchange"); l != nil; l = f.q.Lease("Exchange") {
		leases = append(leases, l)
	}
	if len(leases) != 5 {
		t.Fatalf("%d leases", len(leases))
	}
	for _, l := range leases {
		f.q.HopFailed("Exchange", l, fail("451 4.4.1 cannot connect to exch1.contoso.com:25: connection refused"))
	}
	qi := f.queueInfo(t, "Exchange")
	if qi.RetryCount != 1 || !qi.NextRetryTime.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("after one round of 5 failing sessions: retry count %d, next retry %v; want 1 and in 1m (the first retry)", qi.RetryCount, qi.NextRetryTime)
	}
	// The next round, after the wait, is the second attempt.
	f.clock.Add(time.Minute)
	l := f.q.Lease("Exchange")
	f.q.HopFailed("Exchange", l, fail("451 4.4.1 cannot connect to exch1.contoso.com:25: connection refused"))
	if qi := f.queueInfo(t, "Exchange"); qi.RetryCount != 2 {
		t.Fatalf("second round: retry count %d; want 2", qi.RetryCount)
	}
}

// A content the store cannot give (here a large message's file, gone)
// shows in its queue's info until an attempt reads it again.
func TestUnreadableContentShows(t *testing.T) {
	f := newFixture(t, "")
	env := &mail.Envelope{ID: mail.NewID(), From: "app@contoso.com", Received: f.clock.Now(),
		Rcpts: []mail.Recipient{{Addr: "bob@contoso.com"}}}
	big := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 20000) // 1.28 MB: a file of its own
	if err := f.q.Put(context.Background(), env, strings.NewReader("Subject: big\r\n\r\n"+big)); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(f.dir, "queue", "bodies", string(env.ID))
	if err := os.Rename(file, file+".away"); err != nil {
		t.Fatalf("the large content is not where this test looks: %v", err)
	}
	l := f.q.Lease("Exchange")
	if _, err := l.Body(context.Background()); err == nil {
		t.Fatal("Body read a content whose file is gone")
	}
	f.q.Done(context.Background(), l, []queue.Outcome{fail("451 4.3.0 cannot read the message from the queue")})
	qi := f.queueInfo(t, "Exchange")
	if qi.Unreadable != 1 || !strings.Contains(qi.UnreadableError, string(env.ID)) {
		t.Fatalf("queue info after a failed read: unreadable %d, %q", qi.Unreadable, qi.UnreadableError)
	}

	if err := os.Rename(file+".away", file); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour)
	l = f.q.Lease("Exchange")
	if l == nil {
		t.Fatal("the message was not retried")
	}
	r, err := l.Body(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if qi := f.queueInfo(t, "Exchange"); qi.Unreadable != 0 {
		t.Errorf("still %d unreadable after the content was read", qi.Unreadable)
	}
}

// An admin's remove with a non-delivery report that cannot be queued
// (the disk below min_free_space) leaves the message as it was and says
// so, rather than removing it without the notice asked for.
func TestRemoveWithBounceRefusedKeepsMessage(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	m := f.put(t, "app@contoso.com", "carol@fabrikam.example")
	f.diskFull(t)
	err := f.q.RemoveMessage(ctx, m.ID, true)
	if err == nil || !strings.Contains(err.Error(), "stays queued") {
		t.Fatalf("RemoveMessage with a bounce that cannot be queued: %v, want an error saying the message stays", err)
	}
	got, found := f.q.Message(m.ID)
	if !found || got.Recipients[0].Status != queue.StatusQueued {
		t.Fatalf("after the refused remove: found %v, %+v; want the message with its recipient queued", found, got.Recipients)
	}
	if l := f.q.Lease("Internet/fabrikam.example"); l == nil {
		t.Error("the message kept is not offered for delivery")
	}
}

// diskFull reopens the fixture's queue with min_free_space beyond any
// disk, so every Put (bounces too) is refused as on a full disk.
func (f *fixture) diskFull(t *testing.T) {
	t.Helper()
	full, err := config.Parse("", []byte(strings.Replace(testConfig, "DATA", f.dir, 1)+"queue: {min_free_space: 1000000GB}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.store.Close()
	f.cfg = full
	f.open(t)
}

// A reload that routes a queue's mail elsewhere while a message of the
// queue is being delivered: the queue left with only that message keeps
// its own identity, and the queue the rest moved to keeps its messages
// once the delivery ends. The old queue took the new route's identity,
// and dropping it when it emptied dropped the new queue instead: its
// messages were in no queue, never delivered until the next reload.
func TestReloadDuringDeliveryKeepsTheNewQueue(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	f.put(t, "app@contoso.com", "bob@contoso.com")
	moved := f.put(t, "app@contoso.com", "carol@contoso.com")
	l := f.q.Lease("Exchange")
	if l == nil {
		t.Fatal("nothing to lease")
	}
	cfg, err := config.Parse("", []byte(strings.Replace(strings.Replace(testConfig, "DATA", f.dir, 1),
		"name: Exchange,", "name: Exchange 2019,", 1)))
	if err != nil {
		t.Fatal(err)
	}
	f.q.Apply(cfg)
	f.q.Done(ctx, l, []queue.Outcome{ok()})
	var names []string
	for _, qi := range f.q.Queues() {
		names = append(names, qi.Identity)
	}
	if got := strings.Join(names, ","); got != "Exchange 2019" {
		t.Fatalf("queues after the delivery under way ended: %s; want Exchange 2019", got)
	}
	if qi := f.queueInfo(t, "Exchange 2019"); qi.MessageCount != 1 {
		t.Errorf("Exchange 2019 holds %d messages, want 1", qi.MessageCount)
	}
	if l := f.q.Lease("Exchange 2019"); l == nil || l.ID != moved.ID {
		t.Fatalf("the message routed to the new connector is not offered for delivery: %+v", l)
	}
}

// A record that cannot be read (invalid JSON, a version from a newer
// Sluice) is kept in the store and shown, in the Poison queue as
// Exchange does, rather than left where no listing shows it; the others
// are delivered, and an admin can remove it.
func TestDamagedRecordShows(t *testing.T) {
	for _, tc := range []struct{ name, sql, want string }{
		{"invalid JSON", "UPDATE messages SET meta = substr(meta, 1, 40) WHERE id = ?", "is damaged"},
		{"newer version", `UPDATE messages SET meta = replace(meta, '{"v":1', '{"v":9') WHERE id = ?`, "has version 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "")
			bad := f.put(t, "app@contoso.com", "bob@contoso.com")
			good := f.put(t, "app@contoso.com", "carol@contoso.com")
			f.store.Close()
			db, err := sql.Open("sqlite", filepath.Join(f.dir, "queue", "queue.db"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(tc.sql, string(bad.ID)); err != nil {
				t.Fatal(err)
			}
			db.Close()
			f.open(t)

			if !strings.Contains(f.logs.String(), string(bad.ID)) {
				t.Errorf("no log line names %s:\n%s", bad.ID, f.logs.String())
			}
			qi := f.queueInfo(t, queue.Poison)
			if qi.MessageCount != 1 || qi.Unreadable != 1 || !strings.Contains(qi.UnreadableError, tc.want) {
				t.Errorf("Poison queue: %+v", qi)
			}
			m, found := f.q.Message(bad.ID)
			if !found || !strings.Contains(m.Error, tc.want) || len(m.Queues) != 1 || m.Queues[0] != queue.Poison {
				t.Errorf("the damaged message: found %v, %+v", found, m)
			}
			if ms := f.q.Messages(nil); len(ms) != 2 {
				t.Errorf("message list has %d messages, want the damaged one too: %+v", len(ms), ms)
			}
			if l := f.q.Lease("Exchange"); l == nil || l.ID != good.ID {
				t.Fatalf("the undamaged message is not delivered: %+v", l)
			}

			// Nothing but remove can act on it, and the answers say so
			// rather than that the message is gone.
			for what, err := range map[string]error{
				"message retry":    func() error { _, err := f.q.RetryMessage(bad.ID); return err }(),
				"message redirect": f.q.RedirectMessage(context.Background(), bad.ID, []mail.Address{"x@contoso.com"}),
				"queue retry":      f.q.RetryQueue(queue.Poison),
				"queue resume":     f.q.ResumeQueue(queue.Poison),
			} {
				if !errors.Is(err, queue.ErrPoisoned) {
					t.Errorf("%s of the damaged message: %v; want queue.ErrPoisoned", what, err)
				}
			}
			if err := f.q.RemoveMessage(context.Background(), bad.ID, true); err == nil {
				t.Error("a bounce for a message whose record cannot be read was accepted")
			}
			if err := f.q.RemoveMessage(context.Background(), bad.ID, false); err != nil {
				t.Fatal(err)
			}
			if _, found := f.q.QueueByName(queue.Poison); found {
				t.Error("the Poison queue stays after its message was removed")
			}
			if _, err := f.store.Body(context.Background(), bad.ID); !errors.Is(err, queue.ErrNotFound) {
				t.Errorf("the removed message's content is still in the store (%v)", err)
			}
		})
	}
}

// A recipient a reload routes to another next hop is due there at once:
// the wait it was in belonged to the old one (up to max_interval, an
// hour), and the reload is usually the fix.
func TestReloadReroutedRecipientIsDueAtOnce(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	f.put(t, "app@contoso.com", "carol@fabrikam.example")
	f.q.Done(ctx, f.q.Lease("Internet/fabrikam.example"), []queue.Outcome{fail("451 4.4.1 no answer")})
	if l := f.q.Lease("Internet/fabrikam.example"); l != nil {
		t.Fatal("leased again before its retry")
	}
	cfg, err := config.Parse("", []byte(strings.Replace(testConfig, "DATA", f.dir, 1)+
		"  - {name: Fabrikam, address_spaces: [fabrikam.example], smarthosts: [smtp.fabrikam.example]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.q.Apply(cfg)
	if l := f.q.Lease("Fabrikam"); l == nil {
		qi, _ := f.q.QueueByName("Fabrikam")
		t.Fatalf("carol, routed to Fabrikam by the reload, is not due there: %+v", qi)
	}
}

// A message to two domains leaves no empty queue behind: the domain
// delivered first while the other's recipient still waited kept its
// queue, empty, for good (until a message to it alone), so a relay
// writing to new domains grew its queue list, metrics and every
// dispatch's scan of the queues for months.
func TestNoEmptyQueueLeftByAMessageToTwoDomains(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	for i := range 50 {
		f.put(t, "app@contoso.com", fmt.Sprintf("x@a%d.example", i), fmt.Sprintf("y@b%d.example", i))
		la := f.q.Lease(fmt.Sprintf("Internet/a%d.example", i))
		lb := f.q.Lease(fmt.Sprintf("Internet/b%d.example", i))
		if la == nil || lb == nil {
			t.Fatalf("message %d: no lease for each domain", i)
		}
		f.q.Done(ctx, la, repeat(ok(), len(la.Rcpts)))
		f.q.Done(ctx, lb, repeat(ok(), len(lb.Rcpts)))
	}
	if qs := f.q.Queues(); len(qs) != 0 {
		t.Errorf("%d queues left with the mail gone, e.g. %+v; want none", len(qs), qs[0])
	}
}
