// Package smtptest is an SMTP server for tests, in the style of
// net/http/httptest: real TCP on loopback, real TLS from certtest, and a
// record of what it was sent. It plays the upstream that delivery tests
// send to — a smarthost, an MX, Microsoft 365 — and can refuse, defer or
// drop at any step, change its mind while running (Set), and come back on
// the same address after Close.
//
// It accepts pipelined commands (RFC 2920): replies are buffered and
// flushed when no more input is waiting. It is strict where that catches
// client bugs (the end of data is only <CRLF>.<CRLF>) and otherwise says
// yes.
package smtptest

import (
	"crypto/x509"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/certtest"
)

// Options shape the server; the zero value accepts everything.
type Options struct {
	Addr        string         // listen address; default "127.0.0.1:0". A fixed one lets a test restart the "same" upstream
	TLS         *certtest.Cert // STARTTLS is offered when set (unless ImplicitTLS)
	ImplicitTLS bool           // TLS from the first octet (port 465 style); needs TLS
	// TLSMaxVersion is the newest TLS version the server speaks, e.g.
	// tls.VersionTLS10 for an old Exchange 2010 or a printer's
	// firmware; 0: Go's default. It lowers the server's minimum too.
	TLSMaxVersion uint16
	// StartTLSReply answers STARTTLS instead of 220 when set, e.g.
	// "454 4.7.0 TLS not available due to temporary reason".
	StartTLSReply string
	RequireTLS    bool     // MAIL before STARTTLS → 530 5.7.0
	Auth          []string // mechanisms advertised: "PLAIN", "LOGIN", "XOAUTH2"
	Users         map[string]string
	// Tokens checks an XOAUTH2 user and token. A failure is answered as
	// Microsoft and Google do: a 334 with a base64 JSON error, then, after
	// the client's empty line, 535 5.7.3 Authentication unsuccessful.
	Tokens      func(user, token string) bool
	RequireAuth bool   // MAIL without AUTH → 530 5.7.57
	AuthReply   string // when set, every AUTH ends with this reply after its exchange, e.g. "535 5.7.139 Authentication unsuccessful, basic authentication is disabled"
	Greeting    string // default "220 smtptest ESMTP"; a non-2xx greeting refuses every command but QUIT with 503
	// GreetingDelay holds the greeting back this long after the
	// connection (and the TLS handshake of ImplicitTLS), as a server does
	// that tarpits new clients.
	GreetingDelay time.Duration
	MaxSize       int64 // advertised with SIZE; MAIL with a larger SIZE= → 552 5.3.4. 0: "SIZE" without a limit

	NoPipelining, NoDSN, NoSMTPUTF8 bool

	Replies   map[string]string // recipient address → RCPT reply line, e.g. "550 5.1.1 no such user"
	MailReply string            // reply to every MAIL instead of 250
	// MaxRecipients, when set, takes that many recipients per
	// transaction and answers the rest "452 4.5.3 Too many recipients"
	// (RFC 5321 §4.5.3.1.10), as Exchange does past its limit.
	MaxRecipients int
	DataReply     string // reply to the end of data instead of 250
	// DataReplyAfter, when set, makes the server give DataReply (a
	// refusal) once it has read this many octets of message data and
	// close the connection without reading the rest, as a server does
	// that enforces its size limit while the data arrives.
	DataReplyAfter int
	// DropAt closes the connection without replying at a point:
	// "connect" (before the greeting), "MAIL", "RCPT", "DATA" (the
	// command), or "DOT" (after the message data's final dot). Replies
	// to earlier pipelined commands are sent first.
	DropAt string
	// Reset makes the server end a connection it drops (DropAt,
	// HangUpAfter, CloseAfter) with a TCP reset instead of a close, as a
	// firewall or a server that aborts the connection does: the
	// client's read fails with ECONNRESET (WSAECONNRESET on Windows)
	// rather than meeting the end of the stream. A system may discard
	// what the client had not read yet (Windows does), so use it where
	// the client waits for a reply: DropAt "connect" or "DOT".
	Reset bool
	// HangUpAfter closes the connection right after the reply to a
	// command ("MAIL", "RCPT", "DATA"), as a server does that refuses a
	// sender with a 5xx and then hangs up without a 421.
	HangUpAfter string
	// CloseAfter closes a session's connection without a word (no 421)
	// after it has taken this many messages, as an upstream does when
	// its idle timeout or a load balancer ends a connection the client
	// keeps for more. 0: never.
	CloseAfter int
	// CloseReply, with CloseAfter, answers the session's next command
	// with this reply (a 421) instead of closing without a word, as an
	// upstream does whose idle timeout ended the kept connection with
	// "421 4.4.2 ... timeout" that the client reads as the reply to its
	// next MAIL (RFC 5321 §3.8).
	CloseReply string
	// ClientCA, when set, makes the TLS handshake require a client
	// certificate issued by its CA (Message.ClientCert has it).
	ClientCA *certtest.Cert
	// MaxConnections caps the sessions open at once, as Exchange and
	// Microsoft 365 cap the connections from one client: a connection
	// over it is greeted with BusyReply and closed. 0: no cap.
	MaxConnections int
	// BusyReply is the greeting for a connection over MaxConnections;
	// default Microsoft 365's "421 4.3.2 The maximum number of
	// concurrent connections has exceeded a limit, closing transmission
	// channel".
	BusyReply string
	// BusyAtMail turns a connection over MaxConnections away at its
	// first MAIL instead of at the greeting: it is greeted and gets
	// through EHLO, STARTTLS and AUTH, and BusyReply answers MAIL, as an
	// upstream does that counts connections per mailbox, known only
	// after AUTH.
	BusyAtMail bool
	// HoldUntilBusy makes the reply to the end of data wait until a
	// connection has been turned away for MaxConnections (or the server
	// closes), so that a test sees refusals while sessions are busy
	// however fast the client delivers.
	HoldUntilBusy bool
}

// clone copies o with its own maps, so that a test changing its maps
// later does not race with sessions reading them.
func (o Options) clone() Options {
	o.Auth = slices.Clone(o.Auth)
	o.Users = maps.Clone(o.Users)
	o.Replies = maps.Clone(o.Replies)
	return o
}

// Message is a message the server accepted (a 2xx after DATA).
type Message struct {
	From       string
	Rcpts      []string            // accepted recipients, in order
	Params     map[string]string   // MAIL FROM parameters, upper-case keys ("SIZE" → "123", "SMTPUTF8" → "")
	RcptParams []map[string]string // each accepted recipient's parameters
	Data       []byte              // as received, unstuffed, CRLF line endings
	TLS        bool                // sent over TLS
	ClientCert *x509.Certificate   // the client's TLS certificate (Options.ClientCA), nil if none
	AuthUser   string              // the user logged in, "" if none
	Helo       string              // the EHLO/HELO argument
	Session    int                 // which connection it came on, from 1 (see Sessions)
	Client     string              // the client's end of that connection, ip:port
}

// Server is a running test server.
type Server struct {
	t    testing.TB
	ln   net.Listener
	addr string
	wg   sync.WaitGroup

	mu       sync.Mutex
	o        Options
	msgs     []Message
	commands []string
	sessions int
	open     int // sessions counted against MaxConnections
	busy     int // connections turned away for MaxConnections
	// turnedAway is closed at the first of them, or when the server
	// closes (for HoldUntilBusy).
	turnedAway chan struct{}
	conns      map[net.Conn]struct{}
	changed    chan struct{} // closed and replaced when a message arrives
	closed     bool
}

// NewServer starts a server; it closes on t.Cleanup.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	o = o.clone()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		t.Fatalf("smtptest: listen on %s: %v", o.Addr, err)
	}
	s := &Server{t: t, ln: ln, addr: ln.Addr().String(), o: o,
		conns: map[net.Conn]struct{}{}, changed: make(chan struct{}), turnedAway: make(chan struct{})}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// Addr is the address the server listens on, host:port.
func (s *Server) Addr() string { return s.addr }

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// WaitMessages waits until at least n messages have been accepted and
// returns them; after 10 seconds it fails the test.
func (s *Server) WaitMessages(t testing.TB, n int) []Message {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		msgs, changed := slices.Clone(s.msgs), s.changed
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("smtptest: %d messages after 10s, want %d", len(msgs), n)
		}
	}
}

// Sessions is the number of connections accepted so far.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// MessagesPerSession counts the messages accepted on each connection:
// element i is session i+1 (see Message.Session). Delivery tests use it to
// check that messages share connections.
func (s *Server) MessagesPerSession() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := make([]int, s.sessions)
	for _, m := range s.msgs {
		n[m.Session-1]++
	}
	return n
}

// Busy is the number of connections turned away because MaxConnections
// sessions were open.
func (s *Server) Busy() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy
}

// Commands are the command lines received so far, from every session, in
// order (AUTH lines as sent; message data and AUTH exchanges not).
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands)
}

// Set changes the server's behaviour while it runs, e.g. turning a 451
// into success; sessions see the change from their next command. f gets
// a copy whose maps it may change in place.
func (s *Server) Set(f func(*Options)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.o.clone()
	f(&o)
	s.o = o.clone()
}

// Close stops listening, ends every session and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.release()
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.sessions++
		id := s.sessions
		busy := s.o.MaxConnections > 0 && s.open >= s.o.MaxConnections
		if busy {
			s.busy++
			s.release()
		} else {
			s.open++
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c, id, busy)
	}
}

// options is the current behaviour. Its maps are never changed after
// Set, so a session may read them without the lock.
func (s *Server) options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.o
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) command(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands = append(s.commands, line)
}

func (s *Server) done(c net.Conn, busy bool) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	if !busy {
		s.open--
	}
	s.mu.Unlock()
	s.wg.Done()
}

// release (s.mu held) lets replies held for HoldUntilBusy go.
func (s *Server) release() {
	select {
	case <-s.turnedAway:
	default:
		close(s.turnedAway)
	}
}
