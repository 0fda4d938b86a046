package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/admin"
	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/cli"
	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/delivery"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/metrics"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/store/sqlite"
	"github.com/sluice-relay/sluice/internal/testport"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// relay is a queue, delivery and the admin API on loopback: mail for
// fabrikam.com goes to a smarthost that is not listening (so it stays
// queued, in Retry), everything else to a drop directory.
type relay struct {
	t     *testing.T
	dir   string
	cfg   *config.Config
	q     *queue.Queue
	adm   *admin.Server
	url   string
	track *tracking.Log
}

func deadPort(t *testing.T) int { return testport.Free(t) }

func start(t *testing.T, extra string) *relay {
	t.Helper()
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
node: {hostname: relay.test, data_dir: %s}
receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.0/8], permissions: [anonymous, relay]}
send_connectors:
  - name: Fabrikam
    address_spaces: [fabrikam.com]
    delivery: smarthost
    smarthosts: ["127.0.0.1:%d"]
    tls: {mode: none}
    connect_timeout: 2s
  - {name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}
admin: {listen: "127.0.0.1:0"}
%s`, dir, deadPort(t), extra)
	cfg, err := config.Parse("", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, "queue"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tl, err := tracking.Open(filepath.Join(dir, "tracking"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(context.Background(), queue.Options{Store: st, Config: cfg, Tracking: tl})
	if err != nil {
		t.Fatal(err)
	}
	d := delivery.New(delivery.Options{Queue: q, Config: cfg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	adm := admin.New(admin.Options{Queue: q, Metrics: metrics.New(), Ready: q.Accepting, FlushTracking: tl.Flush}, cfg)
	if err := adm.Start(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		adm.Shutdown(context.Background())
		cancel()
		<-done
		q.Close()
		tl.Close()
	})
	return &relay{t: t, dir: dir, cfg: cfg, q: q, adm: adm, url: "http://" + adm.Addr().String(), track: tl}
}

// put queues a message as smtpd would.
func (r *relay) put(from string, to ...string) mail.ID {
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
		env.Rcpts = append(env.Rcpts, mail.Recipient{Addr: addr})
	}
	body := "From: " + from + "\r\nTo: " + strings.Join(to, ", ") + "\r\nSubject: test\r\n\r\nhello\r\n"
	if err := r.q.Put(context.Background(), env, strings.NewReader(body)); err != nil {
		r.t.Fatal(err)
	}
	return env.ID
}

// putTried is put, then waits until the dead Fabrikam smarthost has
// been tried and the message is not leased: until then a redirect or
// remove is rightly refused as "being delivered right now". Once the
// queue is in Retry nothing is leased from it for minutes.
func (r *relay) putTried(from string, to ...string) mail.ID {
	r.t.Helper()
	id := r.put(from, to...)
	waitFor(r.t, "the Fabrikam queue to be tried and "+string(id)+" not leased", func() bool {
		mi, ok := r.q.Message(id)
		return ok && mi.Status != "Active" && r.queueInfo("Fabrikam").RetryCount > 0
	})
	return id
}

// sluice runs the CLI against this relay's admin API.
func (r *relay) sluice(args ...string) (string, int) {
	var out, errb bytes.Buffer
	args = append(args, "--admin", r.url)
	code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String() + errb.String(), code
}

// sluiceStreams is sluice with standard output and error apart.
func (r *relay) sluiceStreams(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	args = append(args, "--admin", r.url)
	code = cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// waitFor polls cond; the deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *relay) queueInfo(id string) queue.QueueInfo {
	qi, _ := r.q.QueueByName(id)
	return qi
}

func TestQueueCommands(t *testing.T) {
	r := start(t, "")
	id := r.put("app@contoso.com", "user@fabrikam.com")
	waitFor(t, "the Fabrikam queue to go into retry", func() bool {
		return r.queueInfo("Fabrikam").Status == queue.HopRetry && r.queueInfo("Fabrikam").LastError != ""
	})

	out, code := r.sluice("queue", "list")
	if code != 0 || !strings.Contains(out, "Fabrikam") || !strings.Contains(out, "Retry") || !strings.Contains(out, "connection refused") {
		t.Fatalf("queue list = %d\n%s\nwant the Fabrikam queue in Retry with the connection error", code, out)
	}
	out, code = r.sluice("queue", "list", "--json")
	var qs []queue.QueueInfo
	if code != 0 || json.Unmarshal([]byte(out), &qs) != nil || len(qs) != 1 || qs[0].MessageCount != 1 || qs[0].RetryCount == 0 {
		t.Fatalf("queue list --json = %d\n%s", code, out)
	}
	out, code = r.sluice("queue", "show", "Fabrikam")
	if code != 0 || !strings.Contains(out, "SmartHostConnectorDelivery") {
		t.Fatalf("queue show = %d\n%s", code, out)
	}
	if out, code = r.sluice("queue", "show", "Nowhere"); code != 1 || !strings.Contains(out, "no such queue") {
		t.Fatalf("queue show of an unknown queue = %d\n%s", code, out)
	}

	if out, code = r.sluice("queue", "suspend", "Fabrikam"); code != 0 || !strings.Contains(out, "Suspended") {
		t.Fatalf("queue suspend = %d\n%s", code, out)
	}
	if _, code = r.sluice("queue", "retry", "Fabrikam"); code != 0 {
		t.Fatalf("queue retry of a suspended queue = %d", code)
	}
	if s := r.queueInfo("Fabrikam").Status; s != queue.HopSuspended {
		t.Fatalf("after retry the queue is %s; a retry must not end a suspension", s)
	}
	if out, code = r.sluice("queue", "resume", "Fabrikam"); code != 0 || strings.Contains(out, "Suspended") {
		t.Fatalf("queue resume = %d\n%s", code, out)
	}

	out, code = r.sluice("message", "list", "--queue", "Fabrikam")
	if code != 0 || !strings.Contains(out, string(id)) || !strings.Contains(out, "user@fabrikam.com") {
		t.Fatalf("message list = %d\n%s", code, out)
	}
	if out, _ = r.sluice("message", "list", "--sender", "nobody@contoso.com"); !strings.Contains(out, "no messages match") {
		t.Fatalf("message list filtered by another sender:\n%s", out)
	}
	out, code = r.sluice("message", "show", string(id))
	if code != 0 || !strings.Contains(out, "connection refused") || !strings.Contains(out, "Fabrikam") {
		t.Fatalf("message show = %d\n%s", code, out)
	}
}

func TestMessageRedirectAndRemove(t *testing.T) {
	r := start(t, "")
	moved := r.put("app@contoso.com", "user@fabrikam.com")
	gone := r.put("app@contoso.com", "other@fabrikam.com")
	waitFor(t, "both messages to be tried", func() bool { return r.queueInfo("Fabrikam").RetryCount > 0 })

	// Redirect to a recipient the Drop connector serves: it is delivered.
	if out, code := r.sluice("message", "redirect", string(moved), "--to", "postmaster@contoso.com"); code != 0 {
		t.Fatalf("message redirect = %d\n%s", code, out)
	}
	waitFor(t, "the redirected message to be delivered", func() bool { _, ok := r.q.Message(moved); return !ok })
	drop, _ := os.ReadFile(filepath.Join(r.dir, "drop", string(moved)+".eml"))
	if !bytes.Contains(drop, []byte("X-Receiver: <postmaster@contoso.com>")) {
		t.Fatalf("drop file of the redirected message:\n%s", drop)
	}

	// Remove with a bounce: the sender gets a DSN (to contoso.com: Drop).
	if out, code := r.sluice("message", "remove", string(gone), "--bounce"); code != 0 || !strings.Contains(out, "non-delivery report") {
		t.Fatalf("message remove --bounce = %d\n%s", code, out)
	}
	if _, ok := r.q.Message(gone); ok {
		t.Fatal("removed message is still queued")
	}
	var dsn []byte
	waitFor(t, "the DSN in the drop directory", func() bool {
		files, _ := filepath.Glob(filepath.Join(r.dir, "drop", "*.eml"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if bytes.Contains(b, []byte("report-type=delivery-status")) {
				dsn = b
				return true
			}
		}
		return false
	})
	for _, want := range []string{"X-Receiver: <app@contoso.com>", "Final-Recipient: rfc822; other@fabrikam.com", "Status: 5.3.0", "removed from the queue by an"} {
		if !bytes.Contains(dsn, []byte(want)) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
	if out, code := r.sluice("message", "remove", string(gone)); code != 1 || !strings.Contains(out, "no such message") {
		t.Fatalf("removing it twice = %d\n%s", code, out)
	}

	// The tracking log tells both stories.
	r.track.Close()
	events, err := tracking.Search(filepath.Join(r.dir, "tracking"), tracking.Query{MessageID: string(gone)})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range events {
		if e.ID == gone { // the search gives its notice's story too
			kinds = append(kinds, string(e.Event))
		}
	}
	got := strings.Join(kinds, " ")
	// The notice is queued first: a remove whose notice cannot be queued
	// does not happen.
	if !strings.HasPrefix(got, "SUBMIT") || !strings.Contains(got, "DSN DELETE") {
		t.Errorf("tracking story of the removed message: %s; want SUBMIT ... DSN DELETE", got)
	}
	events, _ = tracking.Search(filepath.Join(r.dir, "tracking"), tracking.Query{MessageID: string(moved)})
	kinds = nil
	for _, e := range events {
		kinds = append(kinds, string(e.Event))
	}
	if got := strings.Join(kinds, " "); !strings.Contains(got, "REDIRECT SEND") {
		t.Errorf("tracking story of the redirected message: %s; want ... REDIRECT SEND", got)
	}
}

func TestTestSendFollowsTheMessage(t *testing.T) {
	r := start(t, "")
	out, code := r.sluice("test", "send", "--from", "admin@contoso.com", "--to", "someone@example.org", "--wait", "20s")
	if code != 0 || !strings.Contains(out, "DELIVERED to someone@example.org") || !strings.Contains(out, "SUBMIT") {
		t.Fatalf("test send = %d\n%s", code, out)
	}
	// --via forces the Fabrikam connector, whose smarthost is down: the
	// command reports the deferral and the upstream's error.
	out, code = r.sluice("test", "send", "--from", "admin@contoso.com", "--to", "someone@example.org", "--via", "Fabrikam", "--wait", "3s")
	if code != 1 || !strings.Contains(out, "DEFER") || !strings.Contains(out, "connection refused") {
		t.Fatalf("test send --via Fabrikam = %d\n%s", code, out)
	}
	// A connector's name matches in any case and without the spaces
	// copied around it, as queue identities do
	// (config refuses two names that differ only in case); the message
	// goes into the queue under the config's spelling (in Retry since the
	// message before, so it waits there).
	out, code = r.sluice("test", "send", "--from", "admin@contoso.com", "--to", "someone@example.org", "--via", " fabrikam", "--wait", "1s")
	if code != 1 || !strings.Contains(out, "in Fabrikam\n") {
		t.Fatalf("test send --via fabrikam = %d\n%s", code, out)
	}
	out, code = r.sluice("test", "send", "--from", "admin@contoso.com", "--to", "someone@example.org", "--via", "Nope")
	if code != 1 || !strings.Contains(out, `no send connector is called "Nope"`) {
		t.Fatalf("test send --via Nope = %d\n%s", code, out)
	}
	// The subject becomes a header line: a line break in it would add
	// headers (or a bare LF) to the message.
	out, code = r.sluice("test", "send", "--from", "admin@contoso.com", "--to", "someone@example.org", "--subject", "hi\r\nBcc: victim@example.net")
	if code != 1 || !strings.Contains(out, "subject") || strings.Contains(out, "queued as") {
		t.Fatalf("test send with a line break in --subject = %d\n%s", code, out)
	}
}

// With --json, standard output is JSON only (the queued message, then
// its events) and the verdict goes to standard error; a recipient given
// twice is waited for once.
func TestTestSendJSON(t *testing.T) {
	r := start(t, "")
	out, errs, code := r.sluiceStreams("test", "send", "--json", "--from", "admin@contoso.com",
		"--to", "someone@example.org,Someone@Example.org", "--wait", "20s")
	if code != 0 || !strings.Contains(errs, "DELIVERED to someone@example.org") {
		t.Fatalf("test send --json = %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var sent admin.TestSent
	if err := dec.Decode(&sent); err != nil || sent.ID == "" {
		t.Fatalf("first JSON value %+v, %v; want the queued message; stdout:\n%s", sent, err, out)
	}
	var kinds []string
	for dec.More() {
		var ev tracking.Event
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("stdout is not JSON only: %v\n%s", err, out)
		}
		kinds = append(kinds, string(ev.Event))
	}
	if len(kinds) < 2 || kinds[0] != string(tracking.EventSubmit) || !slices.Contains(kinds, string(tracking.EventSend)) {
		t.Errorf("events on stdout %v, want SUBMIT first and a SEND", kinds)
	}
}

// A search through the API sees every event recorded before it, though
// the tracking log writes its buffer only every 200 ms.
func TestTrackSeesTheLatestEvents(t *testing.T) {
	r := start(t, "")
	for range 20 {
		id := r.put("app@contoso.com", "someone@fabrikam.com")
		resp, err := http.Get(r.url + "/api/v1/track?message_id=" + string(id))
		if err != nil {
			t.Fatal(err)
		}
		var events []tracking.Event
		err = json.NewDecoder(resp.Body).Decode(&events)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(events) == 0 || events[0].Event != tracking.EventSubmit {
			t.Fatalf("track %s right after it was queued: %+v, want its SUBMIT", id, events)
		}
	}
}

func TestProbesAndMetrics(t *testing.T) {
	r := start(t, "")
	r.put("app@contoso.com", "user@example.org")
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ready",
		"/metrics": "sluice_queued_messages",
	} {
		resp, err := http.Get(r.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s = %d %q; want 200 with %q", path, resp.StatusCode, b, want)
		}
	}
	r.adm.Draining()
	resp, err := http.Get(r.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining = %d; want 503", resp.StatusCode)
	}
}

func TestReadyzWhenDiskLow(t *testing.T) {
	r := start(t, "queue: {min_free_space: 1000000GB}\n")
	resp, err := http.Get(r.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "min_free_space") {
		t.Errorf("/readyz with too little disk = %d %s; want 503 naming queue.min_free_space", resp.StatusCode, b)
	}
	// Open to anyone who reaches the port: it tells no path and no figure.
	if strings.Contains(string(b), r.dir) || strings.Contains(string(b), " MB") {
		t.Errorf("/readyz tells an unauthenticated caller %s", b)
	}
}

func TestTokenAuth(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	token := "3f1c0f6e2b8a4d55b2f0c1d9e8a7b6c5"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := start(t, "")
	// A second API on the same queue with a token file.
	cfg := *r.cfg
	cfg.Admin.TokenFile = tokenFile
	adm := admin.New(admin.Options{Queue: r.q}, &cfg)
	if err := adm.Start(&cfg); err != nil {
		t.Fatal(err)
	}
	defer adm.Shutdown(context.Background())
	url := "http://" + adm.Addr().String()

	resp, err := http.Get(url + "/api/v1/queues")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the token: %d; want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", url+"/api/v1/queues", nil)
	req.Header.Set("Authorization", "Bearer wrong-token-wrong-token")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("with a wrong token: %d; want 401", resp.StatusCode)
	}
	req.Header.Set("Authorization", "bearer "+token) // the scheme is case-insensitive (RFC 9110 §11.1)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf(`with "bearer <token>": %d; want 200`, resp.StatusCode)
	}
	// Liveness stays open for load balancers.
	if resp, err = http.Get(url + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz with a token configured: %v %v", resp, err)
	}
	resp.Body.Close()

	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), []string{"queue", "list", "--admin", url}, nil, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "needs credentials") {
		t.Fatalf("CLI without token = %d: %s%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code = cli.Run(context.Background(), []string{"queue", "list", "--admin", url, "--token-file", tokenFile}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("CLI with --token-file = %d: %s%s", code, out.String(), errb.String())
	}
}

// A token file as Windows PowerShell 5.1 writes it: with > (UTF-16) the
// API started, and every CLI call failed with net/http's "invalid header
// field value for \"Authorization\""; now the API refuses to start and
// says how to save it, and the CLI says the same of the file. With
// Set-Content -Encoding utf8 (a byte order mark first) the mark is no
// part of the token: before, only a client that sent the mark too got in.
func TestTokenFileFromPowerShell(t *testing.T) {
	const token = "3f1c0f6e2b8a4d55b2f0c1d9e8a7b6c5"
	dir := t.TempDir()
	utf16 := filepath.Join(dir, "utf16.token")
	b := []byte{0xFF, 0xFE}
	for _, c := range token + "\r\n" {
		b = append(b, byte(c), 0)
	}
	bom := filepath.Join(dir, "bom.token")
	for name, b := range map[string][]byte{utf16: b, bom: []byte("\uFEFF" + token + "\r\n")} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := start(t, "")
	cfg := *r.cfg
	cfg.Admin.TokenFile = utf16
	adm := admin.New(admin.Options{Queue: r.q}, &cfg)
	err := adm.Start(&cfg)
	if err == nil {
		adm.Shutdown(context.Background())
	}
	const advice = "is UTF-16 text, as Windows PowerShell's > writes it, which no HTTP header can carry; save the token as ASCII (in PowerShell: (Get-Content '"
	if err == nil || !strings.Contains(err.Error(), advice) {
		t.Errorf("Start with a UTF-16 token file = %v; want it refused with %q", err, advice)
	}
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), []string{"queue", "list", "--admin", r.url, "--token-file", utf16}, nil, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), advice) {
		t.Errorf("CLI with a UTF-16 --token-file = %d: %s%s; want %q", code, out.String(), errb.String(), advice)
	}

	cfg.Admin.TokenFile = bom
	adm = admin.New(admin.Options{Queue: r.q}, &cfg)
	if err := adm.Start(&cfg); err != nil {
		t.Fatal(err)
	}
	defer adm.Shutdown(context.Background())
	req, _ := http.NewRequest("GET", "http://"+adm.Addr().String()+"/api/v1/queues", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the token of a file with a byte order mark: %d; want 200", resp.StatusCode)
	}
}

// A reload (Apply) cannot take away the client certificate the listener
// was started to demand: the TLS listener and its CA only change with a
// restart, so a config that drops admin.client_ca (say, back to a
// loopback address) must not leave the running API open to anyone.
func TestClientCAOutlivesApply(t *testing.T) {
	r := start(t, "")
	c := certtest.New(t, "127.0.0.1")
	cfg := *r.cfg
	cfg.Admin.Certificate, cfg.Admin.Key, cfg.Admin.ClientCA = c.CertFile, c.KeyFile, c.CAFile
	adm := admin.New(admin.Options{Queue: r.q}, &cfg)
	if err := adm.Start(&cfg); err != nil {
		t.Fatal(err)
	}
	defer adm.Shutdown(context.Background())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: c.ClientConfig("127.0.0.1")}}
	withCert := c.ClientConfig("127.0.0.1")
	withCert.Certificates = []tls.Certificate{c.Pair}
	certified := &http.Client{Transport: &http.Transport{TLSClientConfig: withCert}}
	url := "https://" + adm.Addr().String() + "/api/v1/queues"
	get := func(client *http.Client) int {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// A client with a certificate from the CA gets in, before and after
	// the reload: the 401s below are for the missing certificate.
	if code := get(certified); code != http.StatusOK {
		t.Fatalf("with a client certificate: %d; want 200", code)
	}
	if code := get(client); code != http.StatusUnauthorized {
		t.Fatalf("without a client certificate: %d; want 401", code)
	}
	reloaded := *r.cfg // admin.client_ca gone
	adm.Apply(&reloaded)
	if code := get(client); code != http.StatusUnauthorized {
		t.Fatalf("without a client certificate after a reload that dropped admin.client_ca: %d; want 401 until a restart", code)
	}
	if code := get(certified); code != http.StatusOK {
		t.Fatalf("with a client certificate after the reload: %d; want 200", code)
	}
}

// The loopback API without credentials answers only requests meant for
// it: a web page the admin happens to open must not act on it (a form
// posted cross-origin, or its own name rebound to 127.0.0.1).
func TestLoopbackRefusesBrowsers(t *testing.T) {
	r := start(t, "")
	r.put("app@contoso.com", "user@fabrikam.com")
	waitFor(t, "the Fabrikam queue", func() bool { return r.queueInfo("Fabrikam").Identity != "" })
	do := func(method, path, host, origin, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, r.url+path, strings.NewReader(body))
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			req.Header.Set("Content-Type", "text/plain")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do("POST", "/api/v1/queue-actions/suspend", "", "http://evil.example", `{"identity":"Fabrikam"}`); code != http.StatusForbidden {
		t.Errorf("a cross-origin form post: %d; want 403", code)
	}
	if st := r.queueInfo("Fabrikam").Status; st == "Suspended" {
		t.Errorf("a cross-origin form post suspended the queue")
	}
	// A GET is not harmless here: a page's <img> could start a CPU profile.
	if code := do("GET", "/debug/pprof/profile?seconds=30", "", "http://evil.example", ""); code != http.StatusForbidden {
		t.Errorf("a cross-origin GET of a profile: %d; want 403", code)
	}
	if code := do("GET", "/api/v1/queues", "evil.example:8025", "", ""); code != http.StatusForbidden {
		t.Errorf("a request for another host name (DNS rebinding): %d; want 403", code)
	}
	for _, host := range []string{"", "localhost:8025", "[::1]:8025"} {
		if code := do("GET", "/api/v1/queues", host, "", ""); code != http.StatusOK {
			t.Errorf("GET with Host %q: %d; want 200", host, code)
		}
	}
}

// An id copied with a space around it or typed in capitals finds the
// message; a Message-ID header given instead is named as such, not
// taken for a message delivered already.
func TestMessageIDAsTyped(t *testing.T) {
	r := start(t, "")
	id := r.putTried("app@contoso.com", "user@fabrikam.com")
	for _, typed := range []string{" " + string(id) + " ", strings.ToUpper(string(id))} {
		if out, code := r.sluice("message", "show", typed); code != 0 || !strings.Contains(out, "user@fabrikam.com") {
			t.Errorf("message show %q = %d\n%s", typed, code, out)
		}
		if out, code := r.sluice("message", "retry", typed); code != 0 {
			t.Errorf("message retry %q = %d\n%s", typed, code, out)
		}
	}
	out, code := r.sluice("message", "show", "<inv-1042@erp.contoso.com>")
	if code != 1 || strings.Contains(out, "delivered already") || !strings.Contains(out, "not a message id") {
		t.Errorf("message show of a Message-ID header = %d\n%s", code, out)
	}
}

// Queue identities are matched as Get-Queue matches them: in any case,
// and a space copied around one does not matter.
func TestQueueIdentityAsTyped(t *testing.T) {
	r := start(t, "")
	id := r.put("app@contoso.com", "user@fabrikam.com")
	waitFor(t, "the Fabrikam queue", func() bool { return r.queueInfo("Fabrikam").Identity != "" })
	if out, code := r.sluice("queue", "show", "fabrikam"); code != 0 || !strings.Contains(out, "SmartHostConnectorDelivery") {
		t.Errorf("queue show fabrikam = %d\n%s", code, out)
	}
	if out, code := r.sluice("queue", "suspend", " FABRIKAM "); code != 0 || !strings.Contains(out, "queue Fabrikam: suspend done") {
		t.Errorf("queue suspend ' FABRIKAM ' = %d\n%s", code, out)
	}
	if s := r.queueInfo("Fabrikam").Status; s != queue.HopSuspended {
		t.Errorf("after suspend the queue is %s", s)
	}
	if out, code := r.sluice("message", "list", "--queue", "fabrikam"); code != 0 || !strings.Contains(out, string(id)) {
		t.Errorf("message list --queue fabrikam = %d\n%s", code, out)
	}
	if out, code := r.sluice("queue", "show", "Nowhere"); code != 1 || !strings.Contains(out, "no such queue") {
		t.Errorf("queue show Nowhere = %d\n%s", code, out)
	}
}

// --limit keeps the oldest messages, as the list promises, and says
// when there are more.
func TestMessageListLimitKeepsTheOldest(t *testing.T) {
	r := start(t, "")
	var ids []mail.ID
	for range 12 {
		ids = append(ids, r.put("app@contoso.com", "user@fabrikam.com"))
	}
	for range 5 { // map order differs from run to run
		out, errs, code := r.sluiceStreams("message", "list", "--limit", "3", "--json")
		var ms []queue.MessageInfo
		if code != 0 || json.Unmarshal([]byte(out), &ms) != nil || len(ms) != 3 {
			t.Fatalf("message list --limit 3 --json = %d\n%s\n%s", code, out, errs)
		}
		for i, m := range ms {
			if m.ID != ids[i] {
				t.Fatalf("message list --limit 3 gave %s, %s, %s; want the oldest three %v", ms[0].ID, ms[1].ID, ms[2].ID, ids[:3])
			}
		}
		if !strings.Contains(errs, "there may be more") {
			t.Fatalf("message list --limit 3 of 12 says nothing of the others on stderr: %q", errs)
		}
	}
	if _, errs, _ := r.sluiceStreams("message", "list", "--limit", "12"); strings.Contains(errs, "there may be more") {
		t.Errorf("all 12 shown, yet: %q", errs)
	}
}

// Resuming a queue whose messages are all gone drops it; the answer
// still names the queue and its state, not blanks.
func TestResumeEmptyQueue(t *testing.T) {
	r := start(t, "")
	id := r.putTried("app@contoso.com", "user@fabrikam.com")
	if out, code := r.sluice("queue", "suspend", "Fabrikam"); code != 0 {
		t.Fatalf("queue suspend = %d\n%s", code, out)
	}
	if out, code := r.sluice("message", "remove", string(id)); code != 0 {
		t.Fatalf("message remove = %d\n%s", code, out)
	}
	out, code := r.sluice("queue", "resume", "Fabrikam")
	if code != 0 || !strings.Contains(out, "queue Fabrikam: resume done; status now Ready, 0 message(s)") {
		t.Errorf("queue resume of the emptied queue = %d\n%s", code, out)
	}
}

// A message from <> (itself a notice) has no sender to tell: remove
// --bounce says so instead of claiming a non-delivery report went out,
// and the message stays until it is removed without --bounce.
func TestRemoveBounceOfNullSender(t *testing.T) {
	r := start(t, "")
	id := r.putTried("", "user@fabrikam.com")
	out, code := r.sluice("message", "remove", string(id), "--bounce")
	if code != 1 || strings.Contains(out, "gets a non-delivery report") || !strings.Contains(out, "without --bounce") {
		t.Errorf("message remove --bounce of a message from <> = %d\n%s", code, out)
	}
	if _, ok := r.q.Message(id); !ok {
		t.Fatal("the refused remove removed the message")
	}
	out, code = r.sluice("message", "remove", string(id))
	if code != 0 || !strings.Contains(out, "removed without notice to the sender") {
		t.Errorf("message remove = %d\n%s", code, out)
	}
	other := r.putTried("app@contoso.com", "user@fabrikam.com")
	if out, code = r.sluice("message", "remove", string(other), "--bounce"); code != 0 || !strings.Contains(out, "removed; the sender gets a non-delivery report") {
		t.Errorf("message remove --bounce = %d\n%s", code, out)
	}
}

// redirect takes an address as test send does: with or without <>, as
// it is copied from a header or a tracking line.
func TestRedirectToAngleAddress(t *testing.T) {
	r := start(t, "")
	id := r.putTried("app@contoso.com", "user@fabrikam.com")
	if out, code := r.sluice("message", "redirect", string(id), "--to", "<postmaster@contoso.com>"); code != 0 {
		t.Fatalf("message redirect --to <postmaster@contoso.com> = %d\n%s", code, out)
	}
	waitFor(t, "the redirected message to be delivered", func() bool { _, ok := r.q.Message(id); return !ok })
}

// message show --json names the origin's fields in snake_case, as every
// other field of the admin API.
func TestMessageShowJSONOrigin(t *testing.T) {
	r := start(t, "")
	id := r.putTried("app@contoso.com", "user@fabrikam.com")
	out, code := r.sluice("message", "show", string(id), "--json")
	var m map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil {
		t.Fatalf("message show --json = %d\n%s", code, out)
	}
	o, _ := m["origin"].(map[string]any)
	for _, k := range []string{"connector", "client_ip", "client_helo", "auth_user", "tls", "session"} {
		if _, ok := o[k]; !ok {
			t.Errorf("origin has no %q: %v", k, m["origin"])
		}
	}
}

// A connection kept alive after a request is closed once idle: the API
// held every one a client left open for as long as Sluice ran.
func TestIdleConnectionClosed(t *testing.T) {
	admin.SetIdleTimeout(t, 200*time.Millisecond)
	r := start(t, "")
	c, err := net.Dial("tcp", r.adm.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: relay.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("/healthz: status %d, close %v; want 200 on a kept connection", resp.StatusCode, resp.Close)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection: read %d octets, %v; want it closed by the server (EOF)", n, err)
	}
}

// message retry of a message whose queue is in Retry tries the queue's
// next hop now too, and says so: it said "due now" while nothing went
// until the queue's retry time. The attempt is out of schedule: when it
// fails too, the retry count stays. --help says what it does.
func TestMessageRetryOfAQueueInRetry(t *testing.T) {
	r := start(t, "")
	id := r.putTried("app@contoso.com", "user@fabrikam.com")
	before := r.queueInfo("Fabrikam")
	out, code := r.sluice("message", "retry", string(id))
	if want := fmt.Sprintf("message %s: due now; its queue Fabrikam was in Retry and is tried now too\n", id); code != 0 || out != want {
		t.Errorf("message retry = %d\n%s\nwant\n%s", code, out, want)
	}
	waitFor(t, "the Fabrikam queue to be tried again", func() bool {
		return r.queueInfo("Fabrikam").LastRetryTime.After(before.LastRetryTime)
	})
	if qi := r.queueInfo("Fabrikam"); qi.RetryCount != before.RetryCount || qi.Status != queue.HopRetry {
		t.Errorf("after the attempt message retry asked for failed: %s with retry count %d; want Retry with %d, its schedule kept",
			qi.Status, qi.RetryCount, before.RetryCount)
	}
	out, code = r.sluice("message", "retry", string(id), "--json")
	var got struct {
		ID      mail.ID  `json:"id"`
		InRetry []string `json:"queues_in_retry"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.ID != id || fmt.Sprint(got.InRetry) != "[Fabrikam]" {
		t.Errorf("message retry --json = %d\n%s\nwant the message with queues_in_retry [Fabrikam]", code, out)
	}
	if err := r.q.SuspendQueue("Fabrikam"); err != nil {
		t.Fatal(err)
	}
	out, _ = r.sluice("message", "retry", string(id))
	if !strings.Contains(out, "its queue Fabrikam is suspended") || !strings.Contains(out, "sluice queue resume Fabrikam") {
		t.Errorf("message retry of a message in a suspended queue:\n%s\nwant it to say the queue is suspended and how to resume it", out)
	}
	out, _ = r.sluice("message", "retry", "--help")
	if !strings.Contains(out, "tries its next hop now too") {
		t.Errorf("message retry --help:\n%s\nwant it to say a queue in Retry is tried now too", out)
	}
}
