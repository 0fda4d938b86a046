package delivery_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/delivery"
	"github.com/sluice-relay/sluice/internal/dsn"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/protolog"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/store/sqlite"
	"github.com/sluice-relay/sluice/internal/syncbuf"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// relay is a real queue on a SQLite store and a Deliverer running over
// it, configured from YAML; mail for contoso.com (the senders' domain)
// goes to a drop directory, so bounces can be read.
type relay struct {
	t    *testing.T
	dir  string
	q    *queue.Queue
	d    *delivery.Deliverer
	logs *syncBuffer // the queue's and the deliverer's log
	// track is the queue's tracking log, under dir/tracking.
	track *tracking.Log
}

// syncBuffer is a bytes.Buffer for a log written from several goroutines.
type syncBuffer = syncbuf.Buffer

// protocolLog returns the send protocol log written so far (it reaches
// the file within 200 ms).
func (r *relay) protocolLog() string {
	files, _ := filepath.Glob(filepath.Join(r.dir, "protocol", "send-*.log"))
	var out string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		out += string(b)
	}
	return out
}

// protoLine is one line of the send protocol log.
type protoLine struct {
	connector, session, local, remote, event, data string
}

// conversation returns the send protocol log's lines of one session,
// once its disconnect line is there.
func (r *relay) conversation(session string) []protoLine {
	r.t.Helper()
	var lines []protoLine
	waitFor(r.t, "session "+session+" to end in the protocol log", func() bool {
		lines = nil
		cr := csv.NewReader(strings.NewReader(r.protocolLog()))
		cr.FieldsPerRecord = 7
		records, err := cr.ReadAll()
		if err != nil {
			return false // a line the writer has not finished
		}
		for _, f := range records {
			if f[2] == session {
				lines = append(lines, protoLine{f[1], f[2], f[3], f[4], f[5], f[6]})
			}
		}
		return len(lines) > 0 && lines[len(lines)-1].event == "-"
	})
	return lines
}

// events returns the tracking events of message id recorded so far.
func (r *relay) events(id mail.ID) []tracking.Event {
	r.t.Helper()
	r.track.Flush()
	evs, err := tracking.Search(filepath.Join(r.dir, "tracking"), tracking.Query{MessageID: string(id)})
	if err != nil {
		r.t.Fatal(err)
	}
	return evs
}

// logLines returns the lines of the log with the given msg="...".
func (r *relay) logLines(msg string) []string {
	var out []string
	for _, l := range strings.Split(r.logs.String(), "\n") {
		if strings.Contains(l, "msg=\""+msg+"\"") {
			out = append(out, l)
		}
	}
	return out
}

// start runs a relay whose config has the given send connectors (YAML
// list items) before the Drop connector, and node settings in node.
func start(t *testing.T, node, connectors string) *relay {
	t.Helper()
	r := stopped(t, node, connectors)
	r.run()
	return r
}

// stopped is start without delivery, for a test to fill the queue
// before run: delivery then finds all its mail due at once.
func stopped(t *testing.T, node, connectors string) *relay {
	t.Helper()
	dir := t.TempDir()
	cfg := relayConfig(t, dir, node, connectors)
	st, err := sqlite.Open(filepath.Join(dir, "queue"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	track, err := tracking.Open(filepath.Join(dir, "tracking"), 0, log)
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(context.Background(), queue.Options{Store: st, Config: cfg, Log: log, Tracking: track})
	if err != nil {
		t.Fatal(err)
	}
	proto, err := protolog.Open(filepath.Join(dir, "protocol"), "send", 0, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		q.Close()
		proto.Close()
		track.Close()
	})
	return &relay{t: t, dir: dir, q: q, logs: logs, track: track,
		d: delivery.New(delivery.Options{Queue: q, Config: cfg, Log: log, Protocol: proto})}
}

// relayConfig is the config of a relay with data in dir, node settings
// in node and the given send connectors (YAML list items) before the
// Drop connector.
func relayConfig(t *testing.T, dir, node, connectors string) *config.Config {
	t.Helper()
	yaml := fmt.Sprintf(`node: {hostname: relay.test, data_dir: %s%s}
receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.0/8], permissions: [anonymous, relay]}
send_connectors:
%s
  - {name: Drop, address_spaces: [contoso.com], delivery: directory, directory: drop}
admin: {listen: "off"}
`, dir, node, connectors)
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", yaml, err)
	}
	return cfg
}

// run starts delivery; it stops before the queue closes.
func (r *relay) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.d.Run(ctx); close(done) }()
	r.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// put queues a message from app@contoso.com with the given header lines
// (besides From/To/Subject) and returns its id.
func (r *relay) put(subject string, to ...string) mail.ID {
	return r.putFrom("app@contoso.com", subject, "", to...)
}

func (r *relay) putFrom(from, subject, extraHeader string, to ...string) mail.ID {
	r.t.Helper()
	return r.putNotify(from, mail.NotifyDefault, subject, extraHeader, to...)
}

// putNotify is putFrom with NOTIFY (RFC 3461 §4.1) set for every recipient.
func (r *relay) putNotify(from string, notify mail.Notify, subject, extraHeader string, to ...string) mail.ID {
	r.t.Helper()
	env := &mail.Envelope{ID: mail.NewID(), Received: time.Now()}
	var err error
	if env.From, _, err = mail.ParsePath("<"+from+">", true, false); err != nil {
		r.t.Fatal(err)
	}
	for _, a := range to {
		addr, err := mail.ParseMailbox(a, false)
		if err != nil {
			r.t.Fatal(err)
		}
		env.Rcpts = append(env.Rcpts, mail.Recipient{Addr: addr, Notify: notify})
	}
	body := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\n%s\r\nbody\r\n", from, strings.Join(to, ", "), subject, extraHeader)
	if err := r.q.Put(context.Background(), env, strings.NewReader(body)); err != nil {
		r.t.Fatal(err)
	}
	return env.ID
}

// outcome waits until the message has left the queue or its first
// recipient has a last error, and returns it as it is then (ok false:
// gone, delivered or bounced).
func (r *relay) outcome(id mail.ID) (mi queue.MessageInfo, ok bool) {
	r.t.Helper()
	waitFor(r.t, "delivery or a failure of "+string(id), func() bool {
		mi, ok = r.q.Message(id)
		return !ok || mi.Recipients[0].LastError != ""
	})
	return mi, ok
}

// putCutShort queues a message to one recipient whose content the
// queue can no longer read in full: big enough for a file of its own,
// then truncated.
func (r *relay) putCutShort(to string) mail.ID {
	r.t.Helper()
	env := &mail.Envelope{ID: mail.NewID(), Received: time.Now()}
	env.From, _, _ = mail.ParsePath("<app@contoso.com>", true, false)
	addr, err := mail.ParseMailbox(to, false)
	if err != nil {
		r.t.Fatal(err)
	}
	env.Rcpts = []mail.Recipient{{Addr: addr}}
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 20000) // 1.3 MB
	if err := r.q.Put(context.Background(), env, strings.NewReader(big)); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(r.dir, "queue", "bodies", string(env.ID)), 1000); err != nil {
		r.t.Fatal(err)
	}
	return env.ID
}

// waitQueue polls the queue until cond holds for the named queue.
func (r *relay) waitQueue(name, what string, cond func(queue.QueueInfo) bool) queue.QueueInfo {
	r.t.Helper()
	var qi queue.QueueInfo
	waitFor(r.t, what, func() bool {
		var ok bool
		qi, ok = r.q.QueueByName(name)
		return ok && cond(qi)
	})
	return qi
}

// waitDone waits until the message has left the queue.
func (r *relay) waitDone(id mail.ID) {
	r.t.Helper()
	waitFor(r.t, "message "+string(id)+" to leave the queue", func() bool { _, ok := r.q.Message(id); return !ok })
}

// bounces returns the drop files addressed to app@contoso.com.
func (r *relay) bounces() []string {
	files, _ := filepath.Glob(filepath.Join(r.dir, "drop", "*.eml"))
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "X-Receiver: <app@contoso.com>") {
			out = append(out, string(b))
		}
	}
	return out
}

// notices waits until no delivery status notification is left in the
// queue and returns those in the drop directory, parsed. Called once the
// original has left the queue, it sees every notice about it: Done
// queues them before the original's state is written.
func (r *relay) notices() []*dsn.Report {
	r.t.Helper()
	waitFor(r.t, "the notices to leave the queue", func() bool {
		return len(r.q.Messages(func(mi *queue.MessageInfo) bool { return mi.From == "<>" })) == 0
	})
	var out []*dsn.Report
	for _, b := range r.bounces() {
		// The drop file's envelope lines come before the message.
		msg := b
		for strings.HasPrefix(msg, "X-Sender: ") || strings.HasPrefix(msg, "X-Receiver: ") {
			_, msg, _ = strings.Cut(msg, "\r\n")
		}
		rep, err := dsn.Parse([]byte(msg))
		if err != nil {
			r.t.Fatalf("notice does not parse: %v\n%s", err, b)
		}
		out = append(out, rep)
	}
	return out
}

// waitFor polls cond; its deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
