package smtpd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/policy"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// data receives the message (RFC 5321 §4.1.1.4) and hands it to the spool;
// the 250 is sent only after the spool reports it durable.
func (s *session) data(arg string) bool {
	switch {
	case s.tx == nil:
		return s.reply(reply.NeedMail)
	case len(s.tx.env.Rcpts) == 0:
		return s.reply(reply.NoValidRcpts)
	case arg != "":
		return s.reply(reply.SyntaxParams.With("DATA takes no parameters"))
	}
	if !s.enterData() {
		s.send(reply.ShuttingDown)
		return true
	}
	defer s.leaveData()
	env := &s.tx.env
	s.endTx() // whatever happens below ends the transaction
	s.send(reply.StartData)
	if err := s.flush(); err != nil {
		return true
	}
	s.raw.SetReadDeadline(time.Now().Add(s.rc.Limits.DataTimeout.D()))

	env.ID = mail.NewID()
	env.Received = time.Now()
	env.Origin = mail.Origin{
		Connector:  s.rc.Name,
		ClientIP:   s.remote.Addr(),
		ClientHelo: s.helo,
		AuthUser:   s.user(),
		TLS:        s.tlsDescription(),
		Session:    s.id,
	}
	dr := newDataReader(s.r, s.rc.BareLineEndings == config.BareNormalize,
		policy.MaxMessageSize(&s.policy), s.rc.Limits.MaxLineLength)
	err := s.store(env, dr)
	if err == nil && !dr.done {
		err = errors.New("spool returned before the end of the message data")
	}
	if err != nil {
		if derr := dr.drain(); derr != nil {
			s.dataIOError(derr, env.ID)
			return true
		}
		r := s.replyFor(err, env.ID)
		s.log.Info("message refused", "msg", env.ID, "from", env.From.String(), "rcpts", len(env.Rcpts), "user", s.user(), "reply", r.Error())
		s.proto.Note(fmt.Sprintf("message data: %d octets", dr.n))
		s.track(tracking.EventFail, env, env.From, nil, r)
		return s.fail(r)
	}
	s.messages++
	s.junk = 0
	s.srv.metrics.Received(s.rc.Name, env.Size)
	s.log.Info("message accepted", "msg", env.ID, "from", env.From.String(), "rcpts", len(env.Rcpts),
		"size", env.Size, "user", s.user(), "tls", env.Origin.TLS != "")
	ok := reply.Reply{Code: 250, Enhanced: [3]int{2, 6, 0}, Text: "Queued as " + string(env.ID)}
	s.proto.Note(fmt.Sprintf("message data: %d octets", env.Size))
	s.track(tracking.EventReceive, env, env.From, nil, ok)
	return s.reply(ok)
}

// store reads the header, puts the trace fields in front and streams the
// whole message to the spool.
func (s *session) store(env *mail.Envelope, dr *dataReader) error {
	h, err := readHeader(dr, int(s.rc.Limits.MaxHeaderSize))
	if err != nil {
		return err
	}
	env.MessageID = h.messageID
	if env.MessageID == "" {
		env.MessageID = "<" + string(env.ID) + "@" + s.rc.FQDN + ">"
	}
	proto := protocol(s.esmtp, s.tls != nil, s.policy.User != nil, env.SMTPUTF8Asked)
	trace := traceFields(env, s.rc.FQDN, proto, h)
	// The trace fields too: a UTF-8 EHLO name or login goes into them.
	env.SMTPUTF8 = env.SMTPUTF8Asked && (h.utf8 || !envelopeASCII(env) || !mail.ASCII(trace))
	body := io.MultiReader(bytes.NewReader(trace), bytes.NewReader(h.raw), bytes.NewReader(h.rest), dr)
	return s.srv.spool.Put(context.Background(), env, body)
}

// envelopeASCII reports whether every envelope address is ASCII.
func envelopeASCII(env *mail.Envelope) bool {
	if !env.From.IsASCII() {
		return false
	}
	for _, rc := range env.Rcpts {
		if !rc.Addr.IsASCII() {
			return false
		}
	}
	return true
}

// dataIOError ends a session whose DATA stopped early. After a timeout
// nothing more is read: what the client sends next could be the rest of
// its message, and must not be taken for commands.
func (s *session) dataIOError(err error, id mail.ID) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.log.Warn("DATA timeout, message discarded", "msg", id, "after", s.rc.Limits.DataTimeout.D())
		s.send(reply.DataTimeout)
		return
	}
	s.log.Info("connection lost during DATA, message discarded", "msg", id, "err", err)
}

func (s *session) enterData() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv.closing.Load() {
		return false
	}
	s.inData = true
	return true
}

func (s *session) leaveData() {
	s.mu.Lock()
	s.inData = false
	s.mu.Unlock()
}
