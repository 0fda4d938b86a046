package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/policy"
	"github.com/sluice-relay/sluice/internal/protolog"
	"github.com/sluice-relay/sluice/internal/reply"
)

// RFC 5321 §4.5.3.1.4 allows 512 octets per command line; ESMTP
// parameters make real ones longer, so allow 2048. An AUTH response may be
// up to 12288 octets (RFC 4954 §4).
const (
	maxCommandLine = 2048
	maxAuthLine    = 12288
)

// session is one SMTP conversation on one connection.
type session struct {
	srv    *Server
	snap   *snapshot
	cfg    *config.Config
	rc     *config.ReceiveConnector
	raw    net.Conn // the TCP connection: deadlines and Close from other goroutines
	conn   net.Conn // raw, or the TLS connection over it
	r      *bufio.Reader
	w      *bufio.Writer
	id     string
	remote netip.AddrPort
	local  netip.AddrPort
	log    *slog.Logger

	helo   string
	esmtp  bool
	tls    *tls.ConnectionState
	policy policy.Session

	tx       *transaction // open MAIL transaction, nil between messages
	cmd      string       // the verb being answered, for the log; "" if unknown
	cmdArg   string       // its argument, for the log: only MAIL's and RCPT's
	errors   int          // error replies so far
	junk     int          // commands that brought no message closer, since the last message accepted
	messages int          // messages accepted in this session

	mu     sync.Mutex // guards inData against Server.Shutdown
	inData bool

	proto *protolog.Session // nil unless the connector logs its protocol
}

// transaction is one MAIL ... DATA exchange.
type transaction struct {
	env mail.Envelope
	// rcpts holds env.Rcpts' addresses: a duplicate is found at once
	// among tens of thousands (no limit on externally-secured connectors).
	rcpts map[mail.Address]struct{}
	// overshoot counts recipients refused past max_recipients, and
	// overshootReply is the reply they got; repeats counts recipients
	// given again. See session.overshoot.
	overshoot      int
	overshootReply reply.Reply
	repeats        int
}

func newSession(srv *Server, snap *snapshot, rc *config.ReceiveConnector, c net.Conn, remote, local netip.AddrPort) *session {
	id := newSessionID()
	s := &session{
		srv: srv, snap: snap, cfg: snap.cfg, rc: rc, raw: c,
		id: id, remote: remote, local: local,
		log: srv.log.With("session", id, "connector", rc.Name, "client", remote.Addr().String()),
	}
	s.policy.Connector = rc
	s.setConn(c)
	if rc.ProtocolLog {
		s.proto = srv.protocol.Session(rc.Name, id, local.String(), remote.String())
	}
	return s
}

// serve runs the session to its end. A panic ends only this session,
// with a 421 to the client and the stack in the log.
func (s *session) serve() {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("session panic", "panic", p, "stack", string(debug.Stack()))
			s.send(reply.Reply{Code: 421, Enhanced: [3]int{4, 3, 0}, Text: "Internal server error (session " + s.id + "), closing"})
		}
		s.endTx()
		s.flush()
		s.proto.Close()
		s.releaseBuffers()
	}()
	s.log.Debug("session started", "local", s.local.String())
	defer s.srv.metrics.SessionStarted(s.rc.Name)()
	if s.rc.TLS.Mode == config.TLSImplicit {
		if err := s.handshake(); err != nil {
			return
		}
	}
	s.send(reply.Reply{Code: 220, Text: s.rc.FQDN + " " + s.rc.Banner})
	for {
		line, err := s.readLine(maxCommandLine)
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				s.cmd, s.cmdArg = "", ""
				if s.reply(reply.LineTooLong.Withf("Line too long; commands are at most %d octets", maxCommandLine)) {
					return
				}
				continue
			}
			s.ioError(err)
			return
		}
		if s.command(line) {
			return
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line of at most max octets and returns it without its
// line ending. Commands may end in CRLF or LF (RFC 5321 §2.3.8 asks for
// CRLF; data is where bare LF matters, and the DATA reader is strict).
func (s *session) readLine(max int) (string, error) {
	if err := s.armDeadline(s.rc.Limits.IdleTimeout.D()); err != nil {
		return "", err
	}
	var long bool
	var buf []byte
	for {
		frag, err := s.r.ReadSlice('\n')
		if !long {
			buf = append(buf, frag...)
			if len(buf) > max {
				long, buf = true, nil
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	if long {
		return "", errLineTooLong
	}
	return string(bytes.TrimRight(buf, "\r\n")), nil
}

// armDeadline sets the read deadline for the next read, unless the server
// is shutting down, in which case the read must fail at once.
func (s *session) armDeadline(d time.Duration) error {
	if s.r.Buffered() > 0 {
		return nil // pipelined input is there already
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv.closing.Load() {
		return errShutdown
	}
	return s.raw.SetReadDeadline(time.Now().Add(d))
}

var errShutdown = errors.New("server shutting down")

// interrupt makes an idle session's read fail so it can say goodbye; a
// session inside DATA is left to finish its message.
func (s *session) interrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inData {
		s.raw.SetReadDeadline(time.Now())
	}
}

// ioError ends the session after a failed read.
func (s *session) ioError(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errShutdown) || (s.srv.closing.Load() && errors.As(err, &ne) && ne.Timeout()):
		s.send(reply.ShuttingDown)
	case errors.As(err, &ne) && ne.Timeout():
		s.log.Info("idle timeout", "after", s.rc.Limits.IdleTimeout.D())
		s.send(reply.IdleTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		s.log.Debug("client disconnected")
	default:
		s.log.Info("connection error", "err", err)
	}
}

// command runs one command line and reports whether the session is over.
func (s *session) command(line string) (quit bool) {
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	if s.proto != nil {
		if masked, ok := protolog.MaskAuth(line); ok {
			line = masked // never a password in the log
		} else if !knownVerbs[verb] && authResponse(line) {
			line = "***"
		}
		s.proto.Received(line)
	}
	s.noteCommand(verb, arg)
	switch verb {
	case "RCPT", "DATA", "BDAT", "QUIT":
	default:
		// MAIL too, and inside a transaction: a client looping on MAIL,
		// RSET, NOOP would otherwise hold a connection slot for ever
		// without sending anything.
		if s.countJunk() {
			return true
		}
	}
	switch verb {
	case "EHLO":
		return s.hello(arg, true)
	case "HELO":
		return s.hello(arg, false)
	case "STARTTLS":
		return s.startTLS(arg)
	case "AUTH":
		return s.auth(arg)
	case "MAIL":
		return s.mail(arg)
	case "RCPT":
		return s.rcpt(arg)
	case "DATA":
		return s.data(arg)
	case "RSET":
		s.endTx()
		return s.reply(reply.ResetOK)
	case "NOOP":
		return s.reply(reply.OK)
	case "VRFY":
		// RFC 5321 §3.5.3: 252 says "try it"; we never reveal mailboxes.
		return s.reply(reply.VrfyCannot)
	case "EXPN":
		return s.reply(reply.ExpnCannot)
	case "HELP":
		return s.reply(s.help())
	case "QUIT":
		s.send(reply.Closing)
		return true
	case "":
		return s.reply(reply.Unrecognized.With("empty command"))
	}
	return s.reply(reply.Unrecognized)
}

// countJunk counts a command that brings no message closer, and closes
// the session past max_commands_before_mail of them since the last
// message accepted. It reports whether the session is over.
func (s *session) countJunk() bool {
	s.junk++
	if s.junk <= s.rc.Limits.MaxCommandsNoMail {
		return false
	}
	s.log.Warn("too many commands without a message", "commands", s.junk)
	s.send(reply.TooManyJunk)
	s.hangUp()
	return true
}

// help lists the commands, STARTTLS and AUTH only when EHLO would offer
// them now: a client reading HELP should not try what it would be refused.
func (s *session) help() reply.Reply {
	text := "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY EXPN HELP"
	if s.offersStartTLS() {
		text += " STARTTLS"
	}
	if policy.AdvertiseAuth(&s.policy) {
		text += " AUTH"
	}
	return reply.Reply{Code: 214, Enhanced: [3]int{2, 0, 0}, Text: text}
}

// knownVerbs are the commands a session acts on.
var knownVerbs = map[string]bool{
	"EHLO": true, "HELO": true, "STARTTLS": true, "AUTH": true, "MAIL": true, "RCPT": true, "DATA": true,
	"BDAT": true, "RSET": true, "NOOP": true, "VRFY": true, "EXPN": true, "HELP": true, "QUIT": true,
}

// authResponse reports whether an unknown command is one base64 word:
// an AUTH response (a user name, a password) that a client sent without
// waiting for its 334, after an AUTH that was refused or never sent. The
// protocol log shows it as "***".
func authResponse(line string) bool {
	if len(line) < 4 || strings.ContainsAny(line, " \t") {
		return false
	}
	_, err := base64.StdEncoding.DecodeString(line)
	return err == nil
}

// noteCommand remembers what the log may say about the command being
// answered. An unknown verb is left out: it may be an AUTH response sent
// out of turn (see authResponse), and AUTH's arguments are never logged.
// MAIL's and RCPT's argument is kept: for a 501 5.1.3 the address as the
// client wrote it is what the admin needs to see.
func (s *session) noteCommand(verb, arg string) {
	s.cmd, s.cmdArg = "", ""
	if !knownVerbs[verb] {
		return
	}
	s.cmd = verb
	if verb == "MAIL" || verb == "RCPT" {
		const max = 300 // a path is at most 256 octets; the rest is parameters
		if len(arg) > max {
			arg = arg[:max] + "..."
		}
		s.cmdArg = arg
	}
}

// reply sends r; for error replies it counts them, applies the tarpit and
// ends the session when there have been too many. It reports whether the
// session is over.
func (s *session) reply(r reply.Reply) bool {
	if r.Code >= 400 {
		return s.refuse(r)
	}
	s.send(r)
	return false
}

// refuse logs an error reply and sends it with fail. README promises one
// log line per refusal with the session, client, user and reply; the level
// and the user and reply keys are those of the policy refusals ("sender
// refused", "recipient refused", "AUTH refused", "message refused"), which
// log a line of their own, with what they refused, and then call fail.
func (s *session) refuse(r reply.Reply) bool {
	attrs := make([]any, 0, 8)
	if s.cmd != "" {
		attrs = append(attrs, "command", s.cmd)
	}
	if s.cmdArg != "" {
		attrs = append(attrs, "arg", s.cmdArg)
	}
	s.log.Info("command refused", append(attrs, "user", s.user(), "reply", r.Error())...)
	return s.fail(r)
}

// fail sends an error reply that has been logged, after the tarpit delay
// for a refusal to an unauthenticated client, and reports whether the
// session is over.
func (s *session) fail(r reply.Reply) bool {
	var d time.Duration
	if r.Code >= 500 {
		d = policy.Tarpit(&s.policy)
	}
	return s.failAfter(r, d)
}

// failAfter sends an error reply after delay d.
func (s *session) failAfter(r reply.Reply, d time.Duration) bool {
	s.errors++
	if d > 0 {
		s.flush()
		time.Sleep(d)
	}
	if r.Code == 421 {
		s.send(r)
		return true
	}
	if s.errors >= s.rc.Limits.MaxErrors {
		s.send(r)
		s.log.Warn("too many errors, closing", "errors", s.errors)
		s.send(reply.TooManyErrors)
		return true
	}
	s.send(r)
	return false
}

// send buffers a reply; it is flushed before the next read would block
// (RFC 2920 §3.1) and when the session ends.
func (s *session) send(r reply.Reply) {
	lines := r.Lines()
	s.w.WriteString(lines)
	s.srv.metrics.Reply(s.rc.Name, r.Code)
	if s.proto != nil {
		for _, l := range strings.Split(strings.TrimSuffix(lines, "\r\n"), "\r\n") {
			s.proto.Sent(l)
		}
	}
}

// hangUp ends a session that a 421 closes while the client is still
// sending pipelined commands: a socket closed with input unread is reset,
// and the reset drops the replies not yet sent, the 421 that says why
// among them. Half-closing and then discarding what still comes, for a
// bounded time and amount, lets the client read it.
func (s *session) hangUp() {
	if s.flush() != nil {
		return
	}
	cw, ok := s.raw.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	s.raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.CopyN(io.Discard, s.raw, 1<<20)
}

func (s *session) flush() error {
	if s.w.Buffered() == 0 {
		return nil
	}
	s.raw.SetWriteDeadline(time.Now().Add(time.Minute))
	return s.w.Flush()
}

// replyFor turns any error from a later stage into the reply the client
// gets: a reply.Reply as it is, anything else as a generic temporary
// failure that names the session, with the cause in the log only.
func (s *session) replyFor(err error, msg mail.ID) reply.Reply {
	if r, ok := reply.As(err); ok {
		return r
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return reply.ShuttingDown
	}
	s.log.Error("cannot accept message", "msg", msg, "err", err)
	if errors.Is(err, os.ErrPermission) {
		return reply.Unavailable.Withf("Mail queue is not available, try again later (session %s)", s.id)
	}
	return reply.TempError.Withf("Temporary server error, try again later (session %s)", s.id)
}
