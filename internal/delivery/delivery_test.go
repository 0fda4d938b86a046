package delivery_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/dnstest"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
	"github.com/sluice-relay/sluice/internal/token"
	"github.com/sluice-relay/sluice/internal/tokentest"
)

func smarthost(name, addr, extra string) string {
	return fmt.Sprintf(`  - name: %s
    address_spaces: [fabrikam.com]
    smarthosts: ["%s"]
    connect_timeout: 5s
    retry: {first: 1s, max_interval: 1s}
%s`, name, addr, extra)
}

// onceFabrikam is the Fabrikam smarthost connector without TLS whose
// retry waits 10 minutes, so that a test sees exactly one attempt.
func onceFabrikam(addr, extra string) string { return onceFabrikamTLS(addr, "{mode: none}", extra) }

// onceFabrikamTLS is onceFabrikam with the given tls setting.
func onceFabrikamTLS(addr, tls, extra string) string {
	return fmt.Sprintf(`  - name: Fabrikam
    address_spaces: [fabrikam.com]
    smarthosts: ["%s"]
    tls: %s
    retry: {first: 10m, max_interval: 10m}
%s`, addr, tls, extra)
}

func TestTLSModes(t *testing.T) {
	cert := certtest.New(t, "localhost")
	wrong := certtest.New(t, "mail.other.test")
	cases := []struct {
		name    string
		server  smtptest.Options
		host    string // smarthost name; "localhost" matches cert
		tls     string
		wantTLS bool   // delivered, over TLS
		wantErr string // else: the queue's last error contains this
	}{
		{"none to a TLS server stays plain", smtptest.Options{TLS: cert}, "127.0.0.1", "{mode: none}", false, ""},
		{"opportunistic uses STARTTLS", smtptest.Options{TLS: cert}, "127.0.0.1", "{mode: opportunistic}", true, ""},
		{"opportunistic without STARTTLS sends plain", smtptest.Options{}, "127.0.0.1", "{mode: opportunistic}", false, ""},
		{"required without STARTTLS waits", smtptest.Options{}, "127.0.0.1", "{mode: required}", false, "does not offer STARTTLS"},
		{"verify with the right name and CA", smtptest.Options{TLS: cert}, "localhost", "{mode: verify, ca_file: " + cert.CAFile + "}", true, ""},
		// The last error says what to change, not crypto/x509's words.
		{"verify with the wrong name waits", smtptest.Options{TLS: wrong}, "localhost", "{mode: verify, ca_file: " + wrong.CAFile + "}", false,
			`is not valid for send connector "Fabrikam" (tls.mode verify): the name does not match: it does not carry the name localhost (it carries mail.other.test); set the send connector's tls.server_name to a name the certificate carries`},
		{"verify with an unknown CA waits", smtptest.Options{TLS: cert}, "localhost", "{mode: verify}", false,
			`is not valid for send connector "Fabrikam" (tls.mode verify): it is not trusted: not signed by a trusted CA (issuer "`},
		{"verify with another CA's file waits", smtptest.Options{TLS: cert}, "localhost", "{mode: verify, ca_file: " + wrong.CAFile + "}", false,
			"tls.ca_file " + wrong.CAFile + " does not hold the CA that signed it; set the send connector's tls.ca_file to the certificate of the CA that issued it"},
		{"verify implicit TLS with an unknown CA waits", smtptest.Options{TLS: cert, ImplicitTLS: true}, "localhost", "{mode: verify, implicit: true}", false,
			`454 4.7.5 certificate of localhost is not valid for send connector "Fabrikam" (tls.mode verify): it is not trusted`},
		{"implicit TLS", smtptest.Options{TLS: cert, ImplicitTLS: true}, "localhost", "{mode: verify, implicit: true, ca_file: " + cert.CAFile + "}", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := smtptest.NewServer(t, tc.server)
			port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
			r := start(t, "", smarthost("Fabrikam", tc.host+":"+port, "    tls: "+tc.tls+"\n"))
			id := r.put(tc.name, "bob@fabrikam.com")
			r.tlsOutcome(up, id, tc.wantErr, tc.wantTLS)
		})
	}
}

func TestClientCertificatePresented(t *testing.T) {
	// The upstream requires a client certificate from client's CA and
	// records the one presented.
	cert := certtest.New(t, "localhost")
	client := certtest.New(t, "relay.test")
	up := smtptest.NewServer(t, smtptest.Options{TLS: cert, ClientCA: client})
	port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
	r := start(t, "", smarthost("Fabrikam", "localhost:"+port, fmt.Sprintf("    tls: {mode: verify, ca_file: %s, client_certificate: %s, client_key: %s}\n", cert.CAFile, client.CertFile, client.KeyFile)))
	r.waitDone(r.put("mutual TLS", "bob@fabrikam.com"))
	if m := up.Messages(); len(m) != 1 || !m[0].TLS || m[0].ClientCert == nil || !m[0].ClientCert.Equal(client.Leaf) {
		t.Fatalf("upstream got %+v; want one message over TLS with the connector's client certificate", m)
	}
}

func TestAuthPlainAndLogin(t *testing.T) {
	cert := certtest.New(t, "localhost")
	for _, mech := range []string{"PLAIN", "LOGIN"} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			up := smtptest.NewServer(t, smtptest.Options{TLS: cert, Auth: []string{mech}, RequireAuth: true,
				Users: map[string]string{"relay@fabrikam.com": "right pass"}})
			port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
			good := start(t, "", smarthost("Fabrikam", "localhost:"+port, fmt.Sprintf(
				"    tls: {mode: verify, ca_file: %s}\n    auth: {mechanism: %s, username: relay@fabrikam.com, password: right pass}\n", cert.CAFile, mech)))
			good.waitDone(good.put("auth "+mech, "bob@fabrikam.com"))
			if m := up.Messages(); len(m) != 1 || m[0].AuthUser != "relay@fabrikam.com" {
				t.Fatalf("upstream got %+v; want one message from relay@fabrikam.com", m)
			}

			bad := start(t, "", smarthost("Fabrikam", "localhost:"+port, fmt.Sprintf(
				"    tls: {mode: verify, ca_file: %s}\n    auth: {mechanism: %s, username: relay@fabrikam.com, password: wrong}\n", cert.CAFile, mech)))
			bad.put("wrong password", "bob@fabrikam.com")
			qi := bad.waitQueue("Fabrikam", "the AUTH failure", func(q queue.QueueInfo) bool { return q.LastError != "" })
			if !strings.Contains(qi.LastError, "535") || qi.Status != queue.HopRetry {
				t.Fatalf("queue after a wrong password: %+v; want Retry with the 535", qi)
			}
		})
	}
}

func TestMicrosoftBasicAuthDisabledIsShown(t *testing.T) {
	cert := certtest.New(t, "localhost")
	up := smtptest.NewServer(t, smtptest.Options{TLS: cert, Auth: []string{"LOGIN"}, RequireAuth: true,
		Users:     map[string]string{"relay@fabrikam.com": "pw"},
		AuthReply: "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [AM0PR01CA0001.eurprd01.prod.exchangelabs.com]"})
	port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
	r := start(t, "", smarthost("Fabrikam", "localhost:"+port, fmt.Sprintf(
		"    tls: {mode: verify, ca_file: %s}\n    auth: {mechanism: LOGIN, username: relay@fabrikam.com, password: pw}\n", cert.CAFile)))
	r.put("basic auth", "bob@fabrikam.com")
	qi := r.waitQueue("Fabrikam", "Microsoft's refusal", func(q queue.QueueInfo) bool { return q.LastError != "" })
	if !strings.Contains(qi.LastError, "535 5.7.139 Authentication unsuccessful, basic authentication is disabled") {
		t.Fatalf("last error %q; want Microsoft's exact reply", qi.LastError)
	}
}

// xoauth2Upstream runs a token endpoint and an upstream that takes its
// tokens as Microsoft 365 does, and returns them with the smarthost
// address and the connector's YAML lines (extra first) to log in there.
func xoauth2Upstream(t *testing.T, extra string) (up *smtptest.Server, ts *tokentest.Server, addr, yaml string) {
	cert := certtest.New(t, "localhost")
	ts = tokentest.NewServer(t, tokentest.Options{})
	up = smtptest.NewServer(t, smtptest.Options{TLS: cert, Auth: []string{"XOAUTH2"}, RequireAuth: true,
		Tokens: func(user, tok string) bool { return user == "relay@fabrikam.com" && ts.Valid(tok) }})
	addr = "localhost:" + up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
	yaml = fmt.Sprintf(`    tls: {mode: verify, ca_file: %s}
%s    auth:
      mechanism: XOAUTH2
      username: relay@fabrikam.com
      oauth2: {token_url: "%s", client_id: %s, client_secret: "%s", scopes: ["%s"]}
`, cert.CAFile, extra, ts.URL(), tokentest.DefaultClientID, tokentest.DefaultClientSecret, token.MicrosoftScope)
	return up, ts, addr, yaml
}

func TestXOAUTH2(t *testing.T) {
	up, ts, addr, oauth := xoauth2Upstream(t, "    max_messages_per_connection: 1\n")
	r := start(t, "", smarthost("Fabrikam", addr, oauth))

	// Three messages over three connections share one token.
	for i := range 3 {
		r.waitDone(r.put(fmt.Sprintf("oauth %d", i), "bob@fabrikam.com"))
	}
	if n := len(up.Messages()); n != 3 {
		t.Fatalf("upstream got %d messages; want 3", n)
	}
	if n := ts.Requests(); n != 1 {
		t.Errorf("%d token requests for 3 messages; want 1 (the token is cached)", n)
	}

	// Microsoft revokes the token early: the 535 makes Sluice get a new
	// one and try again at once.
	ts.Revoke()
	r.waitDone(r.put("after revocation", "bob@fabrikam.com"))
	if n := ts.Requests(); n != 2 {
		t.Errorf("%d token requests after a revocation; want 2", n)
	}

	// The client secret expired in Entra ID: invalid_client, and the queue
	// says so.
	ts.SetSecret("a-new-secret-the-config-does-not-have")
	ts.Revoke()
	r.put("secret expired", "bob@fabrikam.com")
	qi := r.waitQueue("Fabrikam", "the token failure", func(q queue.QueueInfo) bool { return strings.Contains(q.LastError, "OAuth2") })
	if !strings.Contains(qi.LastError, "invalid_client") {
		t.Errorf("last error %q; want the token endpoint's invalid_client", qi.LastError)
	}
}

func TestRateLimitSpacesMessages(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	r := start(t, "", smarthost("Fabrikam", up.Addr(), "    tls: {mode: none}\n    rate_limit: 240/m\n"))
	const n = 4
	// The limiter's first slot is after this, so the last message cannot
	// arrive before start + (n-1) intervals. Only a limiter letting mail
	// through too early fails this; a slow machine (delivery or polling
	// late) only makes the time longer. (It compared the first and last
	// arrival as a poller saw them, with 50 ms slack: a poller late for
	// the first message shortened the span and failed the test.)
	start := time.Now()
	for i := range n {
		r.put(fmt.Sprintf("rated %d", i), "bob@fabrikam.com")
	}
	waitFor(t, "all messages", func() bool { return len(up.Messages()) >= n })
	interval := time.Minute / 240
	if took := time.Since(start); took < time.Duration(n-1)*interval {
		t.Fatalf("%d messages arrived within %v; a limit of 240/m needs at least %v", n, took, time.Duration(n-1)*interval)
	}
}

func TestConnectionReuse(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	r := start(t, "", smarthost("Fabrikam", up.Addr(), "    tls: {mode: none}\n    max_connections: 1\n    max_messages_per_connection: 3\n"))
	// Suspend the queue while filling it, so sessions see all 7 at once.
	for i := range 7 {
		r.put(fmt.Sprintf("reuse %d", i), "bob@fabrikam.com")
		if i == 0 {
			r.q.SuspendQueue("Fabrikam")
		}
	}
	r.q.ResumeQueue("Fabrikam")
	waitFor(t, "7 messages", func() bool { return len(up.Messages()) == 7 })
	per := up.MessagesPerSession()
	total := 0
	for _, n := range per {
		if n > 3 {
			t.Errorf("a session carried %d messages; max_messages_per_connection is 3 (%v)", n, per)
		}
		total += n
	}
	if len(per) > 4 {
		t.Errorf("%d sessions for 7 messages (%v); connections are not reused", len(per), per)
	}
	// Messages waiting back to back need no RSET between them: each
	// transaction ended with its DATA reply.
	if cmds := up.Commands(); slices.Contains(cmds, "RSET") {
		t.Errorf("RSET between messages already waiting: %q", cmds)
	}
}

func TestPermanentFailureAtDataBouncesAll(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{DataReply: "554 5.6.0 message content rejected"})
	r := start(t, "", smarthost("Fabrikam", up.Addr(), "    tls: {mode: none}\n"))
	r.waitDone(r.put("rejected content", "bob@fabrikam.com", "carol@fabrikam.com"))
	var b []string
	waitFor(t, "the bounce", func() bool { b = r.bounces(); return len(b) > 0 })
	if len(b) != 1 {
		t.Fatalf("%d bounces; want one for both recipients", len(b))
	}
	for _, want := range []string{"bob@fabrikam.com", "carol@fabrikam.com", "Status: 5.6.0", "message content rejected"} {
		if !strings.Contains(b[0], want) {
			t.Errorf("bounce lacks %q:\n%s", want, b[0])
		}
	}
}

func TestMXDelivery(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
	dns := dnstest.NewServer(t, dnstest.Zone{
		MX: map[string][]string{
			"fabrikam.test": {"10 mx1.fabrikam.test.", "20 mx2.fabrikam.test."},
			"nomail.test":   {"0 ."},
		},
		A: map[string][]string{
			"mx1.fabrikam.test": {"127.0.0.1"},
			"mx2.fabrikam.test": {"127.0.0.1"},
			"afallback.test":    {"127.0.0.1"},
		},
	})
	r := start(t, ", dns_servers: [\""+dns.Addr()+"\"]", fmt.Sprintf(`  - name: Internet
    address_spaces: ["*.test"]
    delivery: mx
    port: %s
    tls: {mode: opportunistic}
    retry: {first: 1s, max_interval: 1s}
`, port))
	r.waitDone(r.put("via MX", "bob@fabrikam.test"))
	r.waitDone(r.put("via A fallback", "bob@afallback.test"))
	if got := len(up.Messages()); got != 2 {
		t.Fatalf("upstream got %d messages; want 2; bounces: %v", got, r.bounces())
	}
	if qs := r.q.Queues(); len(qs) != 0 {
		t.Errorf("queues left: %+v", qs)
	}

	// A null MX means the domain takes no mail: bounce now, 5.1.10.
	r.waitDone(r.put("to a null MX", "bob@nomail.test"))
	var b []string
	waitFor(t, "the null MX bounce", func() bool { b = r.bounces(); return len(b) > 0 })
	if !strings.Contains(b[0], "Status: 5.1.10") {
		t.Errorf("null MX bounce:\n%s", b[0])
	}
}

// A domain with no MX whose address lookup fails for now (A answered
// SERVFAIL) waits: Go's LookupHost asks for A and AAAA together and
// reported whichever answer came last, so an empty AAAA arriving after
// the SERVFAIL read as "no such host" and the mail bounced 5.1.2.
func TestMXAddressLookupFailureWaits(t *testing.T) {
	dns := dnstest.NewServer(t, dnstest.Zone{ServFailA: map[string]bool{"e0.test": true}, AAAADelay: 50 * time.Millisecond})
	r := start(t, ", dns_servers: [\""+dns.Addr()+"\"]", `  - name: Internet
    address_spaces: ["*.test"]
    delivery: mx
    retry: {first: 10m}
`)
	mi, ok := r.outcome(r.put("no MX, A failing", "bob@e0.test"))
	if !ok {
		t.Fatalf("the message left the queue; bounces: %v", r.bounces())
	}
	if rc := mi.Recipients[0]; rc.Status != queue.StatusQueued || !strings.HasPrefix(rc.LastError, "451 4.4.3 ") {
		t.Errorf("bob is %s with last error %q; want queued after a 451 4.4.3", rc.Status, rc.LastError)
	}
	// A domain that does not exist still bounces at once.
	r.waitDone(r.put("no such domain", "bob@nosuch.test"))
	var b []string
	waitFor(t, "the bounce", func() bool { b = r.bounces(); return len(b) > 0 })
	if len(b) != 1 || !strings.Contains(b[0], "Status: 5.1.2") {
		t.Errorf("bounces %q; want one, 5.1.2", b)
	}
}

// A node.dns_servers entry that does not answer sends the query to the
// next: the resolver's dialer always dialled the first.
func TestSecondDNSServerAnswers(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
	dns := dnstest.NewServer(t, dnstest.Zone{
		MX: map[string][]string{"fabrikam.test": {"10 mx1.fabrikam.test."}},
		A:  map[string][]string{"mx1.fabrikam.test": {"127.0.0.1"}},
	})
	r := start(t, fmt.Sprintf(", dns_servers: [%q, %q]", closedAddr(t), dns.Addr()), fmt.Sprintf(`  - name: Internet
    address_spaces: ["*.test"]
    delivery: mx
    port: %s
    tls: {mode: none}
    retry: {first: 10m}
`, port))
	if mi, ok := r.outcome(r.put("first DNS server down", "bob@fabrikam.test")); ok {
		t.Fatalf("not delivered: %+v", mi.Recipients)
	}
	if got := len(up.Messages()); got != 1 {
		t.Errorf("upstream got %d messages, want 1", got)
	}
}

// rewriting runs a relay whose Fabrikam connector logs in to an upstream
// (which advertises DSN) as the mailbox relay@fabrikam.com, with
// rewrite_sender on, as a Microsoft 365 connector for applications is.
func rewriting(t *testing.T) (*relay, *smtptest.Server) {
	cert := certtest.New(t, "localhost")
	up := smtptest.NewServer(t, smtptest.Options{TLS: cert, Auth: []string{"LOGIN"}, RequireAuth: true,
		Users: map[string]string{"relay@fabrikam.com": "pw"}})
	port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
	r := start(t, "", smarthost("Fabrikam", "localhost:"+port, fmt.Sprintf(
		"    tls: {mode: verify, ca_file: %s}\n    auth: {mechanism: LOGIN, username: relay@fabrikam.com, password: pw}\n    rewrite_sender: true\n", cert.CAFile)))
	return r, up
}

func TestRewriteSender(t *testing.T) {
	r, up := rewriting(t)
	r.waitDone(r.putFrom("scanner@contoso.com", "rewritten", "", "bob@fabrikam.com"))
	m := up.Messages()
	if len(m) != 1 {
		t.Fatalf("upstream got %d messages", len(m))
	}
	data := string(m[0].Data)
	if m[0].From != "relay@fabrikam.com" {
		t.Errorf("MAIL FROM %q; want the mailbox relay@fabrikam.com", m[0].From)
	}
	if !strings.Contains(data, "From: <relay@fabrikam.com>") || !strings.Contains(data, "Reply-To: scanner@contoso.com") {
		t.Errorf("header after rewrite:\n%s", data)
	}
}

// RFC 5321 §4.5.3.1.10: a server out of room for recipients answers 452,
// and a client should take the 552 of older servers the same way. Either
// way the recipients are deferred to a later transaction, not bounced.
func TestTooManyRecipientsDefers(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{Replies: map[string]string{
		"carol@fabrikam.com": "452 4.5.3 Too many recipients",
		"dave@fabrikam.com":  "552 5.5.3 Too many recipients",
	}})
	r := start(t, "", onceFabrikam(up.Addr(), ""))
	id := r.put("many recipients", "bob@fabrikam.com", "carol@fabrikam.com", "dave@fabrikam.com")
	var mi queue.MessageInfo
	waitFor(t, "the attempt", func() bool {
		var ok bool
		mi, ok = r.q.Message(id)
		return !ok || mi.Recipients[0].Attempts > 0 && mi.Recipients[2].Attempts > 0
	})
	if got := len(up.Messages()); got != 1 {
		t.Fatalf("upstream got %d messages; want 1", got)
	}
	for _, rc := range mi.Recipients[1:] {
		if rc.Status != queue.StatusQueued {
			t.Errorf("%s is %s (%s); want it queued for a later transaction", rc.Address, rc.Status, rc.LastError)
		}
	}
	if !strings.Contains(mi.Recipients[2].LastError, "552 5.5.3") {
		t.Errorf("last error %q; want the upstream's 552 5.5.3 in it", mi.Recipients[2].LastError)
	}
	if b := r.bounces(); len(b) != 0 {
		t.Errorf("bounced:\n%s", b[0])
	}
}

// An upstream that takes two recipients per transaction (Exchange's
// limit, lower) gets the rest in new transactions at once, as RFC 5321
// §4.5.3.1.10 asks, not after a retry interval: a message to five goes
// out as three, and nothing waits. The overflow is no failed attempt.
func TestTooManyRecipientsGoInTheNextTransaction(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{MaxRecipients: 2})
	r := start(t, "", onceFabrikam(up.Addr(), "")) // a real deferral would wait 10 minutes
	to := []string{"a@fabrikam.com", "b@fabrikam.com", "c@fabrikam.com", "d@fabrikam.com", "e@fabrikam.com"}
	r.waitDone(r.put("five recipients", to...))
	var got []string
	for _, m := range up.Messages() {
		if len(m.Rcpts) > 2 {
			t.Errorf("a transaction with %d recipients", len(m.Rcpts))
		}
		got = append(got, m.Rcpts...)
	}
	slices.Sort(got)
	if !slices.Equal(got, to) {
		t.Errorf("upstream got %v; want each of %v once", got, to)
	}
	if n := len(up.Messages()); n != 3 {
		t.Errorf("upstream got %d messages; want 3 transactions of at most 2", n)
	}
	if b := r.bounces(); len(b) != 0 {
		t.Errorf("bounced:\n%s", b[0])
	}
}

// A null MX among other MX records (RFC 7505 §3 forbids it, but zones
// have it) is not a host: "." must never become ":25", which dials this
// machine. The real MX here refuses connections, so the mail must wait.
func TestNullMXAmongOthersIsNoHost(t *testing.T) {
	local, qi := mxAttempt(t, "mixed.test", dnstest.Zone{
		MX: map[string][]string{"mixed.test": {"0 .", "10 mx1.mixed.test."}},
		A:  map[string][]string{"mx1.mixed.test": {"127.0.0.2"}}, // nothing listens there
	})
	if n := len(local.Messages()); n != 0 {
		t.Fatalf("a server on this machine got %d messages for mixed.test", n)
	}
	if !strings.Contains(qi.LastError, "mx1.mixed.test") {
		t.Errorf("last error %q; want the connection to mx1.mixed.test refused", qi.LastError)
	}
}

// mxAttempt delivers one message to bob@domain by MX through zone, the
// MX port being a local test server's, and returns that server and the
// queue once the first attempt is over (the retry waits 10 minutes).
func mxAttempt(t *testing.T, domain string, zone dnstest.Zone) (*smtptest.Server, queue.QueueInfo) {
	t.Helper()
	local := smtptest.NewServer(t, smtptest.Options{})
	port := local.Addr()[strings.LastIndex(local.Addr(), ":")+1:]
	dns := dnstest.NewServer(t, zone)
	r := start(t, ", dns_servers: [\""+dns.Addr()+"\"]", fmt.Sprintf(`  - name: Internet
    address_spaces: ["*.test"]
    delivery: mx
    port: %s
    tls: {mode: none}
    retry: {first: 10m, max_interval: 10m}
`, port))
	r.put("MX attempt", "bob@"+domain)
	var qi queue.QueueInfo
	waitFor(t, "the attempt", func() bool {
		qi, _ = r.q.QueueByName("Internet/" + domain)
		return qi.LastError != "" || len(local.Messages()) > 0
	})
	return local, qi
}

// One MX record whose name is not a host name does not stop delivery to
// the domain's other MX hosts (Go's resolver returns those with an error).
func TestMalformedMXAmongOthers(t *testing.T) {
	local, qi := mxAttempt(t, "odd.test", dnstest.Zone{
		MX: map[string][]string{"odd.test": {"5 bad\\032name.odd.test.", "10 mx1.odd.test."}},
		A:  map[string][]string{"mx1.odd.test": {"127.0.0.1"}},
	})
	if n := len(local.Messages()); n != 1 {
		t.Fatalf("mx1.odd.test got %d messages, want 1; last error %q", n, qi.LastError)
	}
}

// Only a 2xx means taken. A 3xx where a final reply belongs (to RCPT, or
// after the message data; RFC 5321 §4.3.2 allows none) is a server out of
// step, and the recipient waits for another try instead of counting as
// delivered.
func TestIntermediateReplyIsNotDelivery(t *testing.T) {
	cases := []struct {
		name string
		o    smtptest.Options
	}{
		{"to RCPT", smtptest.Options{Replies: map[string]string{"carol@fabrikam.com": "354 Start mail input"}}},
		{"to the end of data", smtptest.Options{DataReply: "354 Start mail input"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := smtptest.NewServer(t, tc.o)
			r := start(t, "", onceFabrikam(up.Addr(), ""))
			id := r.put("3xx", "carol@fabrikam.com", "bob@fabrikam.com")
			var mi queue.MessageInfo
			waitFor(t, "the attempt", func() bool {
				var ok bool
				mi, ok = r.q.Message(id)
				return !ok || mi.Recipients[0].Attempts > 0
			})
			if len(mi.Recipients) == 0 || mi.Recipients[0].Status != queue.StatusQueued {
				t.Fatalf("carol after a 354: %+v; want her still queued", mi.Recipients)
			}
		})
	}
}

// RFC 6531 §3.2 (and RFC 5890): DNS knows an internationalised domain by
// its A-labels. Mail to bob@bücher.test is delivered through the MX of
// xn--bcher-kva.test, and through its address when it has no MX (RFC
// 5321 §5.1), not bounced as a domain that does not exist.
func TestMXDeliveryInternationalDomain(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{})
	port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
	dns := dnstest.NewServer(t, dnstest.Zone{
		MX: map[string][]string{"xn--bcher-kva.test": {"10 mx1.fabrikam.test."}},
		A: map[string][]string{
			"mx1.fabrikam.test": {"127.0.0.1"},
			"xn--caf-dma.test":  {"127.0.0.1"}, // café.test: no MX, an address
		},
	})
	r := start(t, ", dns_servers: [\""+dns.Addr()+"\"]", fmt.Sprintf(`  - name: Internet
    address_spaces: ["*.test"]
    delivery: mx
    port: %s
    tls: {mode: none}
    retry: {first: 1s, max_interval: 1s}
`, port))
	for _, to := range []string{"bob@bücher.test", "bob@café.test"} {
		rcpt, err := mail.ParseMailbox(to, true)
		if err != nil {
			t.Fatal(err)
		}
		env := &mail.Envelope{ID: mail.NewID(), Received: time.Now(), From: "app@contoso.com", SMTPUTF8: true,
			Rcpts: []mail.Recipient{{Addr: rcpt}}}
		if err := r.q.Put(context.Background(), env, strings.NewReader("From: app@contoso.com\r\nSubject: IDN\r\n\r\nbody\r\n")); err != nil {
			t.Fatal(err)
		}
		r.waitDone(env.ID)
	}
	if got := len(up.Messages()); got != 2 {
		t.Fatalf("upstream got %d messages; want 2; bounces: %v", got, r.bounces())
	}
}

// A drop directory that could not be opened puts its queue in retry;
// once it can be, the queue leaves the retry state as an SMTP hop does
// when it takes a connection. It kept the retry count and the old
// error for as long as the queue had mail: health reported the hop
// failing while it delivered, and the next failure's wait started
// from the old count.
func TestDropDirectoryRecoveredLeavesRetry(t *testing.T) {
	r := start(t, "", "")
	drop := filepath.Join(r.dir, "drop")
	if err := os.WriteFile(drop, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	first := r.put("first", "bob@contoso.com")
	stuck := r.putCutShort("bob@contoso.com")
	r.waitQueue("Drop", "the queue in retry", func(qi queue.QueueInfo) bool {
		return qi.Status == queue.HopRetry && qi.RetryCount == 1 && strings.Contains(qi.LastError, "cannot open drop directory")
	})
	// The directory is back; one message cannot be written there (its
	// content is cut short), so the queue keeps mail.
	if err := os.Remove(drop); err != nil {
		t.Fatal(err)
	}
	if err := r.q.RetryQueue("Drop"); err != nil {
		t.Fatal(err)
	}
	r.waitDone(first)
	waitFor(t, "an attempt at the stuck message", func() bool {
		m, ok := r.q.Message(stuck)
		return ok && m.Recipients[0].Attempts > 0
	})
	qi, _ := r.q.QueueByName("Drop")
	if qi.RetryCount != 0 || strings.Contains(qi.LastError, "cannot open drop directory") {
		t.Errorf("queue after the drop directory works again: retry count %d, last error %q; want 0 and not the old error", qi.RetryCount, qi.LastError)
	}
	// The log says both, as for an SMTP hop.
	if l := r.logLines("next hop failed; queue in retry"); len(l) != 1 || !strings.Contains(l[0], "queue=Drop retries=1") || !strings.Contains(l[0], "cannot open drop directory") {
		t.Errorf("log of the failure: %q\n%s", l, r.logs)
	}
	if l := r.logLines("next hop took a connection; queue out of retry"); len(l) != 1 || !strings.Contains(l[0], "queue=Drop retries=1") {
		t.Errorf("log of the recovery: %q\n%s", l, r.logs)
	}
}

// A message delivered to a drop directory for some recipients and later
// for others (a redirect, or a reload routing them there) is written to
// a second file: it replaced the first, which the pickup may not have
// taken yet, and the first recipients' copy was gone.
func TestDropDirectoryKeepsEarlierCopy(t *testing.T) {
	r := start(t, "", "")
	id := r.put("twice", "bob@contoso.com", "carol@fabrikam.example") // carol: no connector, she waits
	waitFor(t, "bob's delivery", func() bool {
		m, ok := r.q.Message(id)
		return ok && m.Recipients[0].Status == queue.StatusDelivered
	})
	if err := r.q.RedirectMessage(context.Background(), id, []mail.Address{"postmaster@contoso.com"}); err != nil {
		t.Fatal(err)
	}
	r.waitDone(id)
	drop := filepath.Join(r.dir, "drop")
	receivers := map[string]string{}
	for _, name := range []string{string(id) + ".eml", string(id) + "-2.eml"} {
		b, err := os.ReadFile(filepath.Join(drop, name))
		if err != nil {
			t.Fatal(err)
		}
		head, _, _ := strings.Cut(string(b), "Subject:")
		receivers[name] = head
	}
	if !strings.Contains(receivers[string(id)+".eml"], "X-Receiver: <bob@contoso.com>") ||
		!strings.Contains(receivers[string(id)+"-2.eml"], "X-Receiver: <postmaster@contoso.com>") {
		t.Errorf("drop files' envelopes: %q; want bob's first, the postmaster's second", receivers)
	}
}

// A message whose content the queue cannot give (its file cut short)
// waits with an error that says so, for a drop directory as for an SMTP
// hop; it said "cannot write to drop directory", sending an admin to
// the wrong disk.
func TestDropDirectoryUnreadableContent(t *testing.T) {
	r := stopped(t, "", "")
	id := r.putCutShort("bob@contoso.com")
	r.run()
	var last string
	waitFor(t, "an attempt at the message", func() bool {
		m, ok := r.q.Message(id)
		if ok && m.Recipients[0].Attempts > 0 {
			last = m.Recipients[0].LastError
			return true
		}
		return false
	})
	if !strings.Contains(last, "cannot read the message from the queue") || strings.Contains(last, "drop directory") {
		t.Errorf("last error %q; want it to say the queue's content could not be read", last)
	}
	if files, _ := filepath.Glob(filepath.Join(r.dir, "drop", "*.eml")); len(files) != 0 {
		t.Errorf("drop files %q: a message cut short was written", files)
	}
}

// connect_timeout bounds the TCP connect (and an implicit TLS
// handshake), not the greeting: RFC 5321 §4.5.3.2.1 has a client wait
// 5 minutes for the 220, and a server that tarpits new clients (a greet
// pause) was given up after connect_timeout, its mail put in retry.
func TestGreetingSlowerThanConnectTimeout(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("implicit TLS %v", implicit), func(t *testing.T) {
			o := smtptest.Options{GreetingDelay: 1500 * time.Millisecond}
			tlsMode := "{mode: none}"
			if implicit {
				cert := certtest.New(t, "localhost")
				o.TLS, o.ImplicitTLS = cert, true
				tlsMode = fmt.Sprintf("{mode: verify, implicit: true, ca_file: %s, server_name: localhost}", cert.CAFile)
			}
			up := smtptest.NewServer(t, o)
			r := start(t, "", onceFabrikamTLS(up.Addr(), tlsMode, "    connect_timeout: 1s\n"))
			r.put("slow greeting", "bob@fabrikam.com")
			if got := up.WaitMessages(t, 1); len(got) != 1 {
				t.Fatalf("upstream got %d messages", len(got))
			}
		})
	}
}

// tlsOutcome checks a message sent to up over a TLS setting: with
// wantErr, it waits in the queue with that error (neither sent nor
// bounced); else it went to up, over TLS or not as wantTLS says.
func (r *relay) tlsOutcome(up *smtptest.Server, id mail.ID, wantErr string, wantTLS bool) {
	r.t.Helper()
	if wantErr != "" {
		qi := r.waitQueue("Fabrikam", "the failure as last error", func(q queue.QueueInfo) bool { return q.LastError != "" })
		if !strings.Contains(qi.LastError, wantErr) {
			r.t.Fatalf("last error %q; want it to contain %q", qi.LastError, wantErr)
		}
		if n := len(up.Messages()); n != 0 {
			r.t.Fatalf("the upstream got %d messages; want none", n)
		}
		if b := r.bounces(); len(b) != 0 {
			r.t.Fatalf("bounced:\n%s", b[0])
		}
		return
	}
	r.waitDone(id)
	msgs := up.Messages()
	if len(msgs) != 1 || msgs[0].TLS != wantTLS {
		r.t.Fatalf("upstream got %+v; want one message with TLS=%v; bounces %q", msgs, wantTLS, r.bounces())
	}
}

// An upstream that does not offer the connector's AUTH mechanism gets no
// credentials; the last error is Sluice's finding about it, naming the
// host and what it offers, not words the host said.
func TestAuthNotOfferedIsSluicesFinding(t *testing.T) {
	cert := certtest.New(t, "localhost")
	up := smtptest.NewServer(t, smtptest.Options{TLS: cert, Auth: []string{"LOGIN"}, RequireAuth: true,
		Users: map[string]string{"relay@fabrikam.com": "pw"}})
	port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
	r := start(t, "", smarthost("Fabrikam", "localhost:"+port, fmt.Sprintf(
		"    tls: {mode: verify, ca_file: %s}\n    auth: {mechanism: PLAIN, username: relay@fabrikam.com, password: pw}\n", cert.CAFile)))
	r.put("plain not offered", "bob@fabrikam.com")
	qi := r.waitQueue("Fabrikam", "the AUTH failure", func(q queue.QueueInfo) bool { return q.LastError != "" })
	if !strings.HasPrefix(qi.LastError, "504 5.5.4 localhost") || !strings.Contains(qi.LastError, " does not offer AUTH PLAIN; it offers: LOGIN") ||
		strings.Contains(qi.LastError, "said:") {
		t.Errorf("last error %q; want Sluice's 504 5.5.4 naming the host and what it offers, without \"said:\"", qi.LastError)
	}
}
