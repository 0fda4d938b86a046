package delivery_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/dsn"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// putBody queues a message from app@contoso.com with the given body;
// utf8 marks it as needing SMTPUTF8 (RFC 6531).
func (r *relay) putBody(body string, utf8 bool, to ...string) mail.ID {
	r.t.Helper()
	env := &mail.Envelope{ID: mail.NewID(), Received: time.Now(), From: "app@contoso.com", SMTPUTF8: utf8}
	for _, a := range to {
		env.Rcpts = append(env.Rcpts, mail.Recipient{Addr: mail.Address(a)})
	}
	if err := r.q.Put(context.Background(), env, strings.NewReader(body)); err != nil {
		r.t.Fatal(err)
	}
	return env.ID
}

// firstAttempt waits until the message has had an attempt (or left the
// queue) and returns what the queue knows of it then; ok is false when
// it has left.
func (r *relay) firstAttempt(id mail.ID) (mi queue.MessageInfo, ok bool) {
	r.t.Helper()
	waitFor(r.t, "the first attempt at "+string(id), func() bool {
		mi, ok = r.q.Message(id)
		return !ok || mi.Recipients[0].Attempts > 0
	})
	return mi, ok
}

// An upstream's final "no" to the whole message bounces every recipient
// at the first attempt, with its reply in the bounce; it is not retried
// for two days as if the connection had failed.
func TestUpstreamRefusesMessage(t *testing.T) {
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 16<<10)
	cases := []struct {
		name   string
		o      smtptest.Options
		body   string
		status string // the bounce's Status
		diag   string // in the bounce's Diagnostic-Code
		noMAIL bool   // the upstream must not see a transaction
		utf8   bool   // the message needs SMTPUTF8
	}{
		{name: "5xx to MAIL FROM", o: smtptest.Options{MailReply: "550 5.7.1 Sender address rejected: Access denied"},
			status: "5.7.1", diag: "550 5.7.1 Sender address rejected: Access denied"},
		{name: "5xx to MAIL FROM and the upstream hangs up",
			o:      smtptest.Options{MailReply: "550 5.7.1 Service unavailable, Client host blocked", HangUpAfter: "MAIL"},
			status: "5.7.1", diag: "550 5.7.1 Service unavailable, Client host blocked"},
		{name: "5xx to MAIL FROM one at a time and the upstream hangs up",
			o:      smtptest.Options{NoPipelining: true, MailReply: "550 5.7.1 Service unavailable, Client host blocked", HangUpAfter: "MAIL"},
			status: "5.7.1", diag: "550 5.7.1 Service unavailable, Client host blocked"},
		{name: "5xx to MAIL FROM without an enhanced code", o: smtptest.Options{MailReply: "553 sorry, your envelope sender is in my badmailfrom list"},
			status: "5.0.0", diag: "553 sorry, your envelope sender is in my badmailfrom list"},
		{name: "the SIZE it declares is smaller than the message", o: smtptest.Options{MaxSize: 20},
			status: "5.3.4", diag: "the limit is 20", noMAIL: true},
		{name: "SMTPUTF8 needed and not offered", o: smtptest.Options{NoSMTPUTF8: true}, utf8: true,
			body:   "From: jörg@contoso.com\r\nSubject: Grüße\r\n\r\nbody\r\n",
			status: "5.6.7", diag: "553 5.6.7 The message needs SMTPUTF8", noMAIL: true},
		{name: "552 at the end of data", o: smtptest.Options{DataReply: "552 5.3.4 Message size exceeds fixed maximum message size"},
			status: "5.3.4", diag: "552 5.3.4 Message size exceeds fixed maximum message size"},
		{name: "552 before the end of data and the upstream hangs up", body: big,
			o:      smtptest.Options{DataReplyAfter: 4096, DataReply: "552 5.3.4 Message size exceeds fixed maximum message size"},
			status: "5.3.4", diag: "552 5.3.4 Message size exceeds fixed maximum message size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := smtptest.NewServer(t, tc.o)
			r := start(t, "", onceFabrikam(up.Addr(), ""))
			body := tc.body
			if body == "" {
				body = "Subject: " + tc.name + "\r\n\r\nbody\r\n"
			}
			id := r.putBody(body, tc.utf8, "bob@fabrikam.com", "carol@fabrikam.com")
			if mi, ok := r.firstAttempt(id); ok {
				for _, rc := range mi.Recipients {
					if rc.Status != queue.StatusFailed {
						t.Fatalf("after the first attempt %s is %s (%s); want failed", rc.Address, rc.Status, rc.LastError)
					}
				}
			}
			// notices sees every notice once the original is gone: the
			// attempt is recorded before its bounce is queued.
			r.waitDone(id)
			notices := r.notices()
			if len(notices) != 1 || len(notices[0].Recipients) != 2 {
				t.Fatalf("notices %+v; want one bounce for both recipients", notices)
			}
			for _, rc := range notices[0].Recipients {
				if got := fmt.Sprintf("%d.%d.%d", rc.Status[0], rc.Status[1], rc.Status[2]); rc.Action != dsn.ActionFailed || got != tc.status || !strings.Contains(rc.Diagnostic, tc.diag) {
					t.Errorf("%s: %s %s %q; want failed %s with %q", rc.Final, rc.Action, got, rc.Diagnostic, tc.status, tc.diag)
				}
			}
			if tc.noMAIL {
				for _, c := range up.Commands() {
					if strings.HasPrefix(c, "MAIL") {
						t.Errorf("the upstream got %q", c)
					}
				}
			}
			if n := len(up.Messages()); n != 0 {
				t.Errorf("the upstream took %d messages", n)
			}
		})
	}
}

// RFC 5321 §6.1: a server that closes the connection after the final dot
// without a reply may or may not have taken the message; it is taken as
// not delivered and sent again (a duplicate is acceptable, a loss is
// not). The last error says what happened, in Sluice's words: the
// upstream did not say "451".
// A reset is the same (Reset), on every system: Windows reports it with
// its own WSAECONNRESET.
func TestUpstreamGoneAfterDataIsRetried(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(map[bool]string{false: "closed", true: "reset"}[reset], func(t *testing.T) {
			up := smtptest.NewServer(t, smtptest.Options{DropAt: "DOT", Reset: reset})
			r := start(t, "", onceFabrikam(up.Addr(), ""))
			id := r.put("gone after the dot", "bob@fabrikam.com")
			mi, ok := r.firstAttempt(id)
			if !ok {
				t.Fatal("the message left the queue; want it queued for another attempt")
			}
			rc := mi.Recipients[0]
			if rc.Status != queue.StatusQueued {
				t.Fatalf("bob is %s; want queued", rc.Status)
			}
			if want := "451 4.4.2 " + up.Addr() + " closed the connection during DATA"; rc.LastError != want {
				t.Errorf("last error %q; want %q", rc.LastError, want)
			}
		})
	}
}

// An upstream that takes the connection and hangs up before its greeting
// (Exchange and Microsoft 365 do so to an address their connector does
// not list) read "cannot connect to ...: smtpclient: greeting: EOF": it
// did connect, and the likely cause went unsaid. One that resets the
// connection (Reset) is the same; on Windows it read "cannot connect to
// ...: An existing connection was forcibly closed by the remote host".
func TestUpstreamClosesBeforeGreeting(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(map[bool]string{false: "closed", true: "reset"}[reset], func(t *testing.T) {
			up := smtptest.NewServer(t, smtptest.Options{DropAt: "connect", Reset: reset})
			r := start(t, "", onceFabrikam(up.Addr(), ""))
			r.put("hung up on", "bob@fabrikam.com")
			qi := r.waitQueue("Fabrikam", "the failure", func(q queue.QueueInfo) bool { return q.LastError != "" })
			want := "451 4.4.2 " + up.Addr() + " closed the connection before its greeting: it may not accept connections from this server's address, or be at its connection limit"
			if qi.LastError != want || qi.Status != queue.HopRetry {
				t.Errorf("queue %s, last error %q; want Retry and %q", qi.Status, qi.LastError, want)
			}
		})
	}
}

// How the connector's TLS mode copes with upstreams whose TLS is broken,
// refused or old: opportunistic TLS delivers in the clear rather than not
// at all (RFC 7435 §4); required TLS waits, with an error that says why.
func TestUpstreamTLSTrouble(t *testing.T) {
	cert := certtest.New(t, "localhost")
	rsa := certtest.NewWith(t, certtest.Options{RSA: true}, "localhost")
	other := certtest.New(t, "mail.other.test")
	cases := []struct {
		name    string
		server  smtptest.Options
		tls     string
		wantTLS bool   // delivered, over TLS or not
		wantErr string // else: the queue's last error contains this
	}{
		{name: "STARTTLS refused with 454 opportunistic",
			server: smtptest.Options{TLS: cert, StartTLSReply: "454 4.7.0 TLS not available due to temporary reason"},
			tls:    "{mode: opportunistic}"},
		{name: "STARTTLS refused with 454 required",
			server:  smtptest.Options{TLS: cert, StartTLSReply: "454 4.7.0 TLS not available due to temporary reason"},
			tls:     "{mode: required}",
			wantErr: "said: 454 4.7.0 TLS not available due to temporary reason"},
		{name: "TLS 1.0 only opportunistic", server: smtptest.Options{TLS: rsa, TLSMaxVersion: tls.VersionTLS10},
			tls: "{mode: opportunistic}"},
		{name: "TLS 1.0 only required", server: smtptest.Options{TLS: rsa, TLSMaxVersion: tls.VersionTLS10},
			tls: "{mode: required}", wantErr: "protocol version not supported; the server may speak only an older TLS version than the connector's tls.min_version (1.2)"},
		// It requires TLS too: the clear fallback meets 530 at MAIL. That
		// is the handshake's failure, the admin's to mend (min_version),
		// not the sender's: the message waits; it must not bounce.
		{name: "TLS 1.0 only and requiring TLS opportunistic", server: smtptest.Options{TLS: rsa, TLSMaxVersion: tls.VersionTLS10, RequireTLS: true},
			tls: "{mode: opportunistic}", wantErr: "requires TLS, and the TLS handshake with it failed"},
		{name: "TLS 1.0 only required with min_version 1.0", server: smtptest.Options{TLS: rsa, TLSMaxVersion: tls.VersionTLS10},
			tls: "{mode: required, min_version: \"1.0\"}", wantTLS: true},
		{name: "certificate for another name required", server: smtptest.Options{TLS: other},
			tls: "{mode: required}", wantTLS: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := smtptest.NewServer(t, tc.server)
			port := up.Addr()[strings.LastIndex(up.Addr(), ":")+1:]
			r := start(t, "", onceFabrikamTLS("localhost:"+port, tc.tls, ""))
			id := r.put(tc.name, "bob@fabrikam.com")
			r.tlsOutcome(up, id, tc.wantErr, tc.wantTLS)
		})
	}
}

// A server that refuses the connection in its greeting (RFC 5321 §3.1:
// 554) has refused Sluice, not TLS: with opportunistic TLS it must not
// be tried again in the clear as if a handshake had failed, and its
// reply is the queue's last error.
func TestUpstreamGreeting554(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{TLS: certtest.New(t, "localhost"),
		Greeting: "554 5.7.1 Client host rejected: access denied"})
	r := start(t, "", onceFabrikamTLS(up.Addr(), "{mode: opportunistic}", ""))
	r.put("554 greeting", "bob@fabrikam.com")
	qi := r.waitQueue("Fabrikam", "the greeting as last error", func(q queue.QueueInfo) bool { return q.LastError != "" })
	if !strings.Contains(qi.LastError, "said: 554 5.7.1 Client host rejected: access denied") || qi.Status != queue.HopRetry {
		t.Errorf("queue %+v; want Retry with the 554", qi)
	}
	if n := up.Sessions(); n != 1 {
		t.Errorf("%d connections; want 1", n)
	}
}

// A smarthost port where something other than SMTP answers (a web
// server) was recorded as "cannot connect to ...: smtpclient: greeting:
// malformed reply: ...": it did connect, and the package's name is no
// help. The last error says what answered and what to check.
func TestSmarthostNotSMTP(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
	})
	r := start(t, "", onceFabrikam(addr, ""))
	r.put("to a web server", "bob@fabrikam.com")
	qi := r.waitQueue("Fabrikam", "the failure", func(q queue.QueueInfo) bool { return q.LastError != "" })
	want := fmt.Sprintf(`451 4.4.0 %s is not an SMTP server (it answered "HTTP/1.1 400 Bad Request"); check the smarthost's port`, addr)
	if qi.LastError != want || qi.Status != queue.HopRetry {
		t.Errorf("queue %s, last error %q; want Retry and %q", qi.Status, qi.LastError, want)
	}
}
