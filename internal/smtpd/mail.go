package smtpd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/policy"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// mail starts a transaction: MAIL FROM:<path> [params] (RFC 5321 §4.1.1.2).
func (s *session) mail(arg string) bool {
	switch {
	case s.helo == "":
		return s.reply(reply.NeedHelo)
	case s.tx != nil:
		return s.reply(reply.NestedMail)
	}
	rest, ok := cutPrefixFold(arg, "FROM:")
	if !ok {
		return s.reply(reply.SyntaxParams.With("write MAIL FROM:<address>"))
	}
	from, params, err := mail.ParsePath(rest, true, true)
	if err != nil {
		return s.reply(reply.BadAddress.Withf("Invalid sender address: %v", err))
	}
	tx := &transaction{env: mail.Envelope{From: from, Body: mail.Body7Bit}}
	var size int64
	for _, p := range strings.Fields(params) {
		key, val, _ := strings.Cut(p, "=")
		switch strings.ToUpper(key) {
		case "SIZE": // RFC 1870
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return s.reply(reply.SyntaxParams.With("SIZE must be a number of octets"))
			}
			size = n
		case "BODY": // RFC 6152
			switch strings.ToUpper(val) {
			case "7BIT":
			case "8BITMIME":
				tx.env.Body = mail.Body8BitMIME
			default:
				return s.reply(reply.ParamNotImpl.With("BODY must be 7BIT or 8BITMIME"))
			}
		case "SMTPUTF8": // RFC 6531
			tx.env.SMTPUTF8Asked = true
		case "RET": // RFC 3461 §4.3
			switch r := mail.Ret(strings.ToUpper(val)); r {
			case mail.RetFull, mail.RetHeaders:
				tx.env.Ret = r
			default:
				return s.reply(reply.SyntaxParams.With("RET must be FULL or HDRS"))
			}
		case "ENVID": // RFC 3461 §4.4
			if val == "" || len(val) > 100 {
				return s.reply(reply.SyntaxParams.With("ENVID must be 1 to 100 characters"))
			}
			tx.env.EnvID = val
		case "AUTH": // RFC 4954 §5: accepted; trust comes from our own AUTH
		default:
			return s.reply(reply.ParamNotImpl.Withf("MAIL FROM parameter %s is not supported", key))
		}
	}
	if !from.IsASCII() && !tx.env.SMTPUTF8Asked {
		return s.reply(reply.SMTPUTF8Needed)
	}
	if err := policy.Mail(s.cfg, &s.policy, from, size); err != nil {
		r := err.(reply.Reply)
		s.log.Info("sender refused", "from", from.String(), "user", s.user(), "reply", r.Error())
		s.track(tracking.EventFail, nil, from, nil, r)
		return s.fail(r)
	}
	s.tx = tx
	return s.reply(reply.SenderOK)
}

// rcpt adds a recipient: RCPT TO:<path> [params] (RFC 5321 §4.1.1.3).
func (s *session) rcpt(arg string) bool {
	if s.tx == nil {
		return s.reply(reply.NeedMail)
	}
	rest, ok := cutPrefixFold(arg, "TO:")
	if !ok {
		return s.reply(reply.SyntaxParams.With("write RCPT TO:<address>"))
	}
	to, params, err := mail.ParsePath(rest, false, true)
	if err != nil {
		return s.reply(reply.BadAddress.Withf("Invalid recipient address: %v", err))
	}
	if to.Domain() == "" { // only postmaster parses without one
		// RFC 5321 §4.5.1: accepted from anyone, for this relay's
		// postmaster, who is the default accepted domain's.
		d := s.cfg.PostmasterDomain()
		if d == "" {
			s.log.Info("recipient refused", "from", s.tx.env.From.String(), "to", to.String(), "user", s.user(), "reply", reply.NoPostmaster.Error())
			return s.fail(reply.NoPostmaster)
		}
		to = mail.Address("postmaster@" + d)
	}
	rc := mail.Recipient{Addr: to}
	for _, p := range strings.Fields(params) {
		key, val, _ := strings.Cut(p, "=")
		switch strings.ToUpper(key) {
		case "NOTIFY": // RFC 3461 §4.1
			n, ok := parseNotify(val)
			if !ok {
				return s.reply(reply.SyntaxParams.With("NOTIFY must be NEVER, or any of SUCCESS, FAILURE, DELAY"))
			}
			rc.Notify = n
		case "ORCPT": // RFC 3461 §4.2
			if !strings.Contains(val, ";") || len(val) > 500 {
				return s.reply(reply.SyntaxParams.With("ORCPT must be addr-type;address"))
			}
			rc.ORcpt = val
		default:
			return s.reply(reply.ParamNotImpl.Withf("RCPT TO parameter %s is not supported", key))
		}
	}
	if !to.IsASCII() && !s.tx.env.SMTPUTF8Asked {
		return s.reply(reply.SMTPUTF8Needed)
	}
	if _, dup := s.tx.rcpts[to]; dup {
		// A duplicate gets one copy. Sent over and over, it is a client
		// holding the session open without mail, as one sending
		// recipients past the limit is, and is closed like one.
		s.tx.repeats++
		if s.tx.overshoot+s.tx.repeats > rcptOvershoot && policy.MaxRecipients(&s.policy) > 0 {
			return s.closeOvershoot()
		}
		return s.reply(reply.RecipientOK)
	}
	if err := policy.Rcpt(s.cfg, &s.policy, to, len(s.tx.env.Rcpts)); err != nil {
		r := err.(reply.Reply)
		if r.Code == reply.TooManyRcpts.Code && r.Enhanced == reply.TooManyRcpts.Enhanced {
			return s.overshoot(to, r)
		}
		s.log.Info("recipient refused", "from", s.tx.env.From.String(), "to", to.String(), "user", s.user(), "reply", r.Error())
		s.track(tracking.EventFail, nil, s.tx.env.From, []string{to.String()}, r)
		return s.fail(r)
	}
	if s.tx.rcpts == nil {
		s.tx.rcpts = map[mail.Address]struct{}{}
	}
	s.tx.rcpts[to] = struct{}{}
	s.tx.env.Rcpts = append(s.tx.env.Rcpts, rc)
	return s.reply(reply.RecipientOK)
}

// rcptOvershoot is how many recipients past max_recipients (or given
// again) one transaction may have before the session is closed: Postfix's
// smtpd_recipient_overshoot_limit, with its default.
const rcptOvershoot = 1000

// overshoot answers a recipient past max_recipients. RFC 5321 §4.5.3.1.10:
// the client sends the rest in another transaction, so the 452 is not an
// error toward max_errors, or a pipelined batch over the limit would close
// the session and lose the message. A client that goes on far past the
// limit is not one that will do that, and each refusal logged and tracked
// would let one connection fill the disk: only the first is, the others
// are counted when the transaction ends (endTx), and past rcptOvershoot
// the session is closed.
func (s *session) overshoot(to mail.Address, r reply.Reply) bool {
	tx := s.tx
	tx.overshoot++
	if tx.overshoot+tx.repeats > rcptOvershoot {
		return s.closeOvershoot()
	}
	if tx.overshoot == 1 {
		tx.overshootReply = r
		s.log.Info("recipient refused", "from", tx.env.From.String(), "to", to.String(), "user", s.user(), "reply", r.Error())
		s.track(tracking.EventFail, nil, tx.env.From, []string{to.String()}, r)
	}
	s.send(r)
	return false
}

// closeOvershoot ends a session whose transaction went rcptOvershoot
// recipients past max_recipients.
func (s *session) closeOvershoot() bool {
	tx, max := s.tx, policy.MaxRecipients(&s.policy)
	closing := reply.Reply{Code: 421, Enhanced: [3]int{4, 5, 3},
		Text: fmt.Sprintf("Too many recipients: %d past the limit of %d per message, closing; send at most %d per message", rcptOvershoot, max, max)}
	s.log.Warn("too many recipients past the limit, closing", "from", tx.env.From.String(), "user", s.user(),
		"refused", tx.overshoot, "repeated", tx.repeats, "reply", closing.Error())
	s.tx = nil // counted in the line above
	s.send(closing)
	s.hangUp()
	return true
}

// endTx ends the open transaction, if any, and logs how many recipients
// past max_recipients it refused after the first, which alone had a line.
func (s *session) endTx() {
	if tx := s.tx; tx != nil && tx.overshoot > 1 {
		s.log.Info("more recipients refused past the limit", "from", tx.env.From.String(), "user", s.user(),
			"refused", tx.overshoot-1, "reply", tx.overshootReply.Error())
	}
	s.tx = nil
}

func parseNotify(v string) (mail.Notify, bool) {
	var n mail.Notify
	for _, w := range strings.Split(strings.ToUpper(v), ",") {
		switch w {
		case "NEVER":
			n |= mail.NotifyNever
		case "SUCCESS":
			n |= mail.NotifySuccess
		case "FAILURE":
			n |= mail.NotifyFailure
		case "DELAY":
			n |= mail.NotifyDelay
		default:
			return 0, false
		}
	}
	if n&mail.NotifyNever != 0 && n != mail.NotifyNever {
		return 0, false // RFC 3461 §4.1: NEVER stands alone
	}
	return n, true
}

// cutPrefixFold removes prefix from s ignoring case, and the spaces some
// clients put after the colon.
func cutPrefixFold(s, prefix string) (string, bool) {
	s = strings.TrimLeft(s, " ")
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimLeft(s[len(prefix):], " "), true
}

func (s *session) user() string {
	if s.policy.User == nil {
		return ""
	}
	return s.policy.User.Name
}

// track records a tracking event about this session; env is nil for
// refusals before a message exists.
func (s *session) track(ev tracking.EventType, env *mail.Envelope, from mail.Address, rcpts []string, r reply.Reply) {
	e := tracking.Event{
		Event: ev, Source: "SMTP", Sender: from.String(), Recipients: rcpts,
		Connector: s.rc.Name, ClientIP: s.remote.Addr().String(), ClientName: s.helo,
		AuthUser: s.user(), Reply: r.Error(), Session: s.id,
	}
	if env != nil {
		e.ID, e.MessageID, e.Size = env.ID, env.MessageID, env.Size
		if ev == tracking.EventReceive {
			// The time the message came in, which is before the queue
			// recorded its SUBMIT: the story reads in order.
			e.Time = env.Received
		}
		for _, rc := range env.Rcpts {
			e.Recipients = append(e.Recipients, rc.Addr.String())
		}
	}
	s.srv.tracking.Record(e)
}
