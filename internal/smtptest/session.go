package smtptest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// handshakeTimeout bounds a TLS handshake, so a broken client fails its
// test rather than hanging it.
const handshakeTimeout = 10 * time.Second

// errDrop ends a session without a reply (Options.DropAt).
var errDrop = errors.New("dropped as Options.DropAt says")

// session is one connection.
type session struct {
	srv  *Server
	id   int
	raw  net.Conn // the TCP connection, under TLS if any
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer

	tls        bool
	clientCert *x509.Certificate
	helo       string
	authUser   string
	tx         *Message // open transaction
	refusing   bool     // the greeting was not 2xx
	closing    bool     // a 421 was given: the session ends (RFC 5321 §3.8)
	taken      int      // messages accepted (Options.CloseAfter)
	busyReply  string   // the reply to MAIL of a connection over MaxConnections (Options.BusyAtMail)
}

func (s *Server) serve(c net.Conn, id int, busy bool) {
	defer s.done(c, busy)
	o := s.options()
	if o.DropAt == "connect" {
		s.t.Logf("smtptest session %d: dropped at connect", id)
		if o.Reset {
			reset(c)
		}
		return
	}
	ss := &session{srv: s, id: id, raw: c}
	ss.setConn(c)
	if o.ImplicitTLS {
		if err := ss.handshake(o); err != nil {
			ss.logf("TLS handshake failed: %v", err)
			return
		}
	}
	greeting := o.Greeting
	busyReply := o.BusyReply
	if busyReply == "" {
		busyReply = "421 4.3.2 The maximum number of concurrent connections has exceeded a limit, closing transmission channel"
	}
	switch {
	case busy && o.BusyAtMail:
		ss.busyReply = busyReply
	case busy:
		greeting = busyReply
	}
	if greeting == "" {
		greeting = "220 smtptest ESMTP"
	}
	ss.refusing = !strings.HasPrefix(greeting, "2")
	time.Sleep(o.GreetingDelay)
	ss.reply(greeting)
	if ss.closing {
		ss.flush()
		return
	}
	for {
		line, err := ss.readLine()
		if err != nil {
			ss.logf("end: %v", err)
			return
		}
		err = ss.command(line)
		if err == nil && ss.closing {
			err = errors.New("closing after 421")
		}
		if err != nil {
			ss.flush()
			ss.logf("end: %v", err)
			return
		}
	}
}

func (ss *session) setConn(c net.Conn) {
	ss.conn = c
	ss.r = bufio.NewReader(c)
	ss.w = bufio.NewWriter(c)
}

func (ss *session) logf(format string, args ...any) {
	ss.srv.t.Helper()
	ss.srv.t.Logf("smtptest session %d: "+format, append([]any{ss.id}, args...)...)
}

var errQuit = errors.New("QUIT")

// command runs one command line; an error ends the session.
func (ss *session) command(line string) error {
	ss.srv.command(line)
	o := ss.srv.options()
	verb, arg, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	if ss.refusing && verb != "QUIT" {
		// RFC 5321 §3.1: after a 554 greeting, 503 to all but QUIT.
		ss.reply("503 5.5.1 Bad sequence of commands")
		return nil
	}
	if o.CloseAfter > 0 && ss.taken >= o.CloseAfter && o.CloseReply != "" && verb != "QUIT" {
		ss.reply(o.CloseReply)
		return ss.drop(fmt.Sprintf("after %d messages, with %q", ss.taken, o.CloseReply))
	}
	switch verb {
	case "EHLO":
		ss.helo, ss.tx = arg, nil
		ss.reply(ss.ehlo(o))
	case "HELO":
		ss.helo, ss.tx = arg, nil
		ss.reply("250 smtptest")
	case "STARTTLS":
		return ss.startTLS(o)
	case "AUTH":
		return ss.auth(o, arg)
	case "MAIL", "RCPT", "DATA":
		var err error
		switch verb {
		case "MAIL":
			err = ss.mail(o, arg)
		case "RCPT":
			err = ss.rcpt(o, arg)
		default:
			err = ss.data(o)
		}
		if err == nil && o.HangUpAfter == verb {
			return ss.drop("the reply to " + verb)
		}
		return err
	case "RSET":
		ss.tx = nil
		ss.reply("250 2.0.0 OK")
	case "NOOP":
		ss.reply("250 2.0.0 OK")
	case "VRFY":
		ss.reply("252 2.5.2 Cannot VRFY user")
	case "QUIT":
		ss.reply("221 2.0.0 Bye")
		return errQuit
	default:
		ss.reply("500 5.5.2 Syntax error, command unrecognized")
	}
	return nil
}

// ehlo lists the extensions (RFC 5321 §4.1.1.1) as Options say.
func (ss *session) ehlo(o Options) string {
	lines := []string{"250 smtptest Hello " + ss.helo}
	if !o.NoPipelining {
		lines = append(lines, "PIPELINING")
	}
	if o.MaxSize > 0 {
		lines = append(lines, fmt.Sprintf("SIZE %d", o.MaxSize))
	} else {
		lines = append(lines, "SIZE")
	}
	lines = append(lines, "8BITMIME", "ENHANCEDSTATUSCODES")
	if !o.NoDSN {
		lines = append(lines, "DSN")
	}
	if !o.NoSMTPUTF8 {
		lines = append(lines, "SMTPUTF8")
	}
	if o.TLS != nil && !o.ImplicitTLS && !ss.tls {
		lines = append(lines, "STARTTLS")
	}
	if len(o.Auth) > 0 {
		lines = append(lines, "AUTH "+strings.Join(o.Auth, " "))
	}
	return strings.Join(lines, "\n")
}

// startTLS runs STARTTLS (RFC 3207).
func (ss *session) startTLS(o Options) error {
	switch {
	case o.TLS == nil || o.ImplicitTLS:
		ss.reply("502 5.5.1 Command not implemented")
		return nil
	case ss.tls:
		ss.reply("503 5.5.1 TLS already active")
		return nil
	}
	if o.StartTLSReply != "" {
		ss.reply(o.StartTLSReply)
		return nil
	}
	ss.reply("220 2.0.0 Ready to start TLS")
	if err := ss.flush(); err != nil {
		return err
	}
	// RFC 3207 §5: what came before the handshake is not acted upon.
	ss.r.Discard(ss.r.Buffered())
	if err := ss.handshake(o); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	// RFC 3207 §4.2: the client starts again with EHLO.
	ss.helo, ss.authUser, ss.tx = "", "", nil
	return nil
}

func (ss *session) handshake(o Options) error {
	if o.TLS == nil {
		return errors.New("ImplicitTLS without a TLS certificate")
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{o.TLS.Pair}}
	if o.TLSMaxVersion != 0 {
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, o.TLSMaxVersion
	}
	if o.ClientCA != nil {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, o.ClientCA.Pool
	}
	tc := tls.Server(ss.conn, cfg)
	tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return err
	}
	tc.SetDeadline(time.Time{})
	ss.tls = true
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		ss.clientCert = certs[0]
	}
	ss.setConn(tc)
	ss.logf("TLS established")
	return nil
}

// reply buffers a reply given as one string, "250 text", with "\n"
// between the lines of a multi-line reply: "250 first\nsecond".
func (ss *session) reply(r string) {
	code, text := r, ""
	if len(r) > 3 {
		code, text = r[:3], r[4:]
	}
	ss.closing = ss.closing || code == "421"
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		ss.logf("> %s%s%s", code, sep, l)
		ss.w.WriteString(code + sep + l + "\r\n")
	}
}

func (ss *session) flush() error { return ss.w.Flush() }

// readLine reads a command line, flushing the replies first unless more
// commands are waiting (RFC 2920 §3.2).
func (ss *session) readLine() (string, error) {
	if ss.r.Buffered() == 0 {
		if err := ss.flush(); err != nil {
			return "", err
		}
	}
	line, err := ss.r.ReadString('\n')
	if err != nil {
		if err == io.EOF && line != "" {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	ss.logf("< %s", line)
	return line, nil
}

// drop flushes the replies already given and ends the session.
func (ss *session) drop(at string) error {
	ss.flush()
	ss.logf("dropping the connection at %s", at)
	if ss.srv.options().Reset {
		reset(ss.raw)
	}
	return errDrop
}

// reset makes closing c send a TCP reset (RST) rather than a FIN: with
// SO_LINGER 0 the close aborts the connection.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
}
