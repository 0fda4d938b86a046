package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/route"
	"github.com/sluice-relay/sluice/internal/smtpclient"
)

// probeAfter is the wait for the next message after which a connection
// is checked with RSET before it carries that message.
const probeAfter = 500 * time.Millisecond

// smtpSession connects to the hop (failing over between its hosts) and
// delivers due messages over that one connection.
func (d *Deliverer) smtpSession(s *run, hop route.Hop, l *queue.Lease) {
	ctx := s.stop
	targets, perm, err := d.targets(ctx, hop)
	if perm != nil {
		// The domain says it takes no mail (null MX) or does not exist:
		// every recipient fails now, not after two days.
		for ; l != nil; l = d.q.Lease(hop.Key) {
			d.q.Done(s.io, l, repeat(queue.Outcome{Reply: *perm}, len(l.Rcpts)))
		}
		return
	}
	if s.stopping() {
		d.q.Done(s.io, l, nil) // shutting down: not attempted
		return
	}
	if err != nil {
		d.q.HopFailed(hop.Key, l, queue.Outcome{Reply: tempReply(err)}) // logs it
		return
	}
	k := d.dial(s, hop, targets, l)
	if k == nil {
		return
	}
	defer func() {
		if k != nil {
			k.Quit()
			d.hungUp(hop, k.taken)
		}
	}()
	for n := 0; ; n++ {
		if err := d.wait(ctx, hop); err != nil {
			d.q.Done(s.io, l, nil) // not attempted
			return
		}
		outs, sent, alive, unsent, refused := d.send(s.io, k, hop, l)
		switch {
		case !k.taken && (!sent || s.stopping()):
			// Nothing of the message reached the upstream (its content
			// could not be read), or the session was cut short: the
			// connection is no more proven than before.
		case !k.taken && (refused || unsent):
			// A 421 to the first MAIL of a new connection, or the
			// connection closed before any answer that could take the
			// message, is the upstream refusing the session, as at the
			// greeting.
			if k = d.refusedAtMail(s, hop, k, l, outs[0]); k == nil {
				return
			}
			n = -1 // a new connection: its own message count
			continue
		case !k.taken:
			k.taken = true
			h, sh := d.linkHealth(k)
			h.ok()
			if sh != nil {
				sh.ok()
			}
			d.took(hop)
		case unsent && !s.stopping():
			// The server had closed the kept connection (an idle timeout,
			// a load balancer; with a 421 or without a word) and nothing
			// of this message reached it: it goes again at once on a new
			// connection instead of waiting out a retry interval.
			d.log.Info("kept connection lost before the message was sent; using a new connection",
				"session", k.session, "msg", l.ID, "queue", hop.Key, "host", k.host, "reply", firstReply(outs))
			k.Close()
			d.hungUp(hop, true)
			if k = d.dial(s, hop, targets, l); k == nil {
				return
			}
			n = -1
			continue
		}
		d.q.Done(s.io, l, outs)
		d.logOutcome(hop, k.host, l, outs)
		if !alive || n+1 >= hop.Connector.MaxMessagesPerConnection || s.stopping() {
			return
		}
		idle := time.Now()
		if l = d.nextLease(s, hop); l == nil {
			return
		}
		// Send leaves no transaction open, so the next message needs no
		// RSET; after a wait, one tells whether the server is still there
		// before a message's attempt depends on it.
		if time.Since(idle) > probeAfter {
			if err := k.Reset(s.io); err != nil {
				d.q.Done(s.io, l, nil)
				return
			}
		}
	}
}

// dial connects to the hop for lease l. When no host takes a session the
// lease is settled (see notConnected) and dial returns nil.
func (d *Deliverer) dial(s *run, hop route.Hop, targets []target, l *queue.Lease) *link {
	d.dialing(hop)
	return d.connectFrom(s, hop, targets, 0, l, nil)
}

// refusedAtMail handles a new connection (k) whose upstream closed it
// with 421 to its first MAIL (o, the reply to l's MAIL). Like a 421 at
// the greeting, it is that host failing, and the hop's next hosts are
// tried for l; when none is left (or takes a session) notConnected
// decides between an upstream at its connection limit and a next hop
// failing. It returns the new connection, or nil once l is settled.
func (d *Deliverer) refusedAtMail(s *run, hop route.Hop, k *link, l *queue.Lease, o queue.Outcome) *link {
	k.Close()
	d.hostFailed(hop, k.targets, k.target, o, o.Reply)
	return d.connectFrom(s, hop, k.targets, k.target+1, l, &o)
}

// connectFrom connects for lease l to the first of targets[from:] that
// takes a session. When none does, notConnected settles l with the last
// failure, or has the targets tried again from the first. refused, when
// set, is the 421 that the host before from gave to l's MAIL: the last
// failure when no host is left to try.
func (d *Deliverer) connectFrom(s *run, hop route.Hop, targets []target, from int, l *queue.Lease, refused *queue.Outcome) *link {
	for {
		var o queue.Outcome
		atMail := refused != nil && from >= len(targets)
		if atMail {
			o = *refused
		} else {
			var k *link
			if k, o = d.connect(s.stop, hop, targets, from); k != nil {
				return k
			}
		}
		if !d.notConnected(s, hop, l, o, atMail) {
			return nil
		}
		from, refused = 0, nil
	}
}

// addressesASCII reports whether from and every recipient are ASCII.
func addressesASCII(from mail.Address, rcpts []mail.Recipient) bool {
	if !from.IsASCII() {
		return false
	}
	for _, rc := range rcpts {
		if !rc.Addr.IsASCII() {
			return false
		}
	}
	return true
}

// unreadable is the error for a message whose content the queue could
// not give (damaged, cut short, or its file gone).
func unreadable(err error) error {
	return fmt.Errorf("cannot read the message from the queue: %w", err)
}

// send delivers one message on an open connection and returns each
// recipient's outcome; whether any of it went to the upstream (not when
// its content could not be read); whether the connection can carry
// another; whether the connection was lost (or closed with 421) before
// the server answered any RCPT or DATA, so that it cannot have taken the
// message; and whether that was a 421 in reply to MAIL: the server
// closing because it is not available (RFC 5321 §3.8), not answering for
// this message's recipients or content. Each outcome carries the
// session, to lead from the message's tracking events to the
// conversation.
func (d *Deliverer) send(ctx context.Context, c *link, hop route.Hop, l *queue.Lease) (outs []queue.Outcome, sent, alive, unsent, refused bool) {
	body, err := l.Body(ctx)
	if err != nil {
		// Nothing of the message went out: the session's conversation
		// has nothing to say about it.
		r := reply.Reply{Code: 451, Enhanced: [3]int{4, 3, 0}, Text: unreadable(err).Error()}
		return repeat(queue.Outcome{Reply: r, Local: true}, len(l.Rcpts)), false, true, false, false
	}
	defer body.Close()
	env := &smtpclient.Envelope{
		From: l.Env.From, Rcpts: l.Env.Rcpts, Size: l.Env.Size,
		// A client that asked for SMTPUTF8 may send 8-bit content it did
		// not declare (RFC 6531 §3.1 implies 8BITMIME); and an address
		// of this attempt may be UTF-8 that the message's flag does not
		// know of (a redirect), or an older record's.
		Body8Bit:      l.Env.Body == mail.Body8BitMIME || l.Env.SMTPUTF8Asked,
		SMTPUTF8:      l.Env.SMTPUTF8 || !addressesASCII(l.Env.From, l.Env.Rcpts),
		SMTPUTF8Asked: l.Env.SMTPUTF8Asked,
		Ret:           l.Env.Ret, EnvID: l.Env.EnvID,
	}
	var r io.Reader = body
	if hop.Connector.RewriteSender {
		env.From, r = rewriteSender(hop.Connector.Auth.Username, body)
		env.Rcpts = withoutSuccess(env.Rcpts)
	}
	res, err := c.Send(ctx, env, r)
	// RFC 3461 §5.2.1: an upstream that offers DSN got NOTIFY and takes
	// over telling the sender; one that does not leaves it to us (§5.2.2).
	// With the sender rewritten its notices would go to the mailbox, so
	// SUCCESS was not passed on and the notice is ours.
	handoff := queue.HandoffRelayed
	if c.Supports("DSN") && !hop.Connector.RewriteSender {
		handoff = queue.HandoffDSN
	}
	outs = make([]queue.Outcome, len(l.Rcpts))
	var se *smtpclient.Error
	for i := range outs {
		o := queue.Outcome{Host: c.host, Session: c.session, Handoff: handoff}
		switch {
		// Only a 2xx is a yes: Positive would take a stray 3xx for one.
		case res != nil && i < len(res.Rcpts) && res.Rcpts[i].Code != 0 && res.Rcpts[i].Code/100 != 2:
			o.Reply = rcptRefusal(res.Rcpts[i]) // this recipient was refused
		case res != nil && res.Data.Code != 0:
			o.Reply, o.Delivered = res.Data, res.Data.Code/100 == 2
		case errors.As(err, &se) && se.Local:
			// Sluice's refusal (SIZE, SMTPUTF8): no "host said", no
			// Remote-MTA in the notice.
			o.Host, o.Reply, o.Local = "", se.Reply, true
		case errors.As(err, &se):
			o.Reply = se.Reply // MAIL FROM refused
		case err != nil:
			// Sluice's words, not the upstream's: the queue would
			// show "host said: 451 ...".
			o.Host, o.Reply = "", lostReply(c.host, err)
		default:
			o.Reply = reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 0}, Text: "no reply to DATA"}
		}
		outs[i] = o
	}
	overflowAgain(outs)
	if c.TLSState() == nil {
		needsTLS(outs, hop)
	}
	alive = c.Err() == nil // not after a 421, nor a server that hung up after its refusal
	// Lost, or a 421 (the server closing), before any RCPT or DATA was
	// answered: the content never went out.
	unsent = err != nil && !answered(res) && (!errors.As(err, &se) || se.Reply.Code == 421)
	refused = errors.As(err, &se) && se.Command == "MAIL FROM" && se.Reply.Code == 421
	return outs, true, alive, unsent, refused
}

// lostReply is a recipient's outcome when the connection failed before
// the upstream answered for it: lost, or silent past a timeout (RFC 5321
// §4.5.3.2). The message may have arrived all the same (§6.1): it goes
// again, and a duplicate is the lesser harm.
func lostReply(host string, err error) reply.Reply {
	r := reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 2}}
	var ne net.Error
	var ce *smtpclient.ConnError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		r.Text = fmt.Sprintf("%s did not answer in time: %v", host, err)
	case errors.As(err, &ce) && ce.Closed():
		r.Text = closedText(host, ce)
	default:
		r.Text = fmt.Sprintf("connection to %s lost: %v", host, err)
	}
	return r
}

// rcptRefusal is a refused recipient's reply as the queue is to take it.
// RFC 5321 §4.5.3.1.10: "too many recipients" is 452, and a client should
// take the 552 that servers following RFC 821 send for it as temporary
// too, so the recipient goes in a later transaction instead of bouncing.
// Only a 552 that says so (X.5.3, RFC 3463) is changed: a 552 for a full
// mailbox stays final.
func rcptRefusal(r reply.Reply) reply.Reply {
	if r.Code != 552 || r.Enhanced != [3]int{5, 5, 3} {
		return r
	}
	r.Code, r.Enhanced[0] = 452, 4
	return r.With("the upstream replied 552 5.5.3, which RFC 5321 §4.5.3.1.10 says to take as temporary")
}

// overflowAgain marks the recipients an upstream refused for its
// per-transaction limit ("452 4.5.3 Too many recipients", or a 452 with no
// enhanced code) to go again at once in a new transaction, as RFC 5321
// §4.5.3.1.10 asks, when the transaction delivered others: each round
// then delivers some, so it ends. With none delivered the 452 is a
// deferral like any other and waits its retry interval.
func overflowAgain(outs []queue.Outcome) {
	if !slices.ContainsFunc(outs, func(o queue.Outcome) bool { return o.Delivered }) {
		return
	}
	for i := range outs {
		r := outs[i].Reply
		if r.Code == 452 && (r.Enhanced == [3]int{4, 5, 3} || r.Enhanced == [3]int{}) {
			outs[i].Again = true
		}
	}
}

// needsTLS turns an upstream's "530 5.7.0 Must issue a STARTTLS command
// first" on a connection without TLS into a deferral that says why: the
// connector's TLS settings (a failed opportunistic handshake, often an
// old server's TLS version below tls.min_version, or mode none) are the
// admin's to mend, and the message must wait for that rather than
// bounce to a sender who can do nothing about it.
func needsTLS(outs []queue.Outcome, hop route.Hop) {
	why := "the TLS handshake with it failed (see the log; an old server may need a lower tls.min_version)"
	if hop.Connector.TLS.Mode == config.SendTLSNone {
		why = "the send connector has tls.mode none"
	}
	for i := range outs {
		r := outs[i].Reply
		// 530 is also "authentication required" (5.7.57, 5.7.1): only
		// the one that asks for TLS.
		if r.Code != 530 || r.Enhanced != [3]int{5, 7, 0} && !strings.Contains(strings.ToUpper(r.Text), "TLS") {
			continue
		}
		// Sluice's words, not the upstream's: no "host said".
		outs[i].Reply = reply.Reply{Code: 451, Enhanced: [3]int{4, 7, 0},
			Text: fmt.Sprintf("%s requires TLS, and %s: it answered %s", outs[i].Host, why, r.Error())}
		outs[i].Host, outs[i].Local = "", true
	}
}

// firstReply is the first outcome's reply, for a log line.
func firstReply(outs []queue.Outcome) string {
	if len(outs) == 0 {
		return ""
	}
	return outs[0].Reply.Error()
}

// answered reports whether the server replied to any RCPT or to DATA.
func answered(res *smtpclient.Result) bool {
	if res == nil {
		return false
	}
	if res.Data.Code != 0 {
		return true
	}
	for _, r := range res.Rcpts {
		if r.Code != 0 {
			return true
		}
	}
	return false
}

// logOutcome logs one line per distinct reply of the message's
// recipients, not one per recipient: usually one line per message.
func (d *Deliverer) logOutcome(hop route.Hop, host string, l *queue.Lease, outs []queue.Outcome) {
	for i, o := range outs {
		if slices.ContainsFunc(outs[:i], func(p queue.Outcome) bool { return p.Delivered == o.Delivered && p.Reply == o.Reply }) {
			continue // logged with the first recipient that got this reply
		}
		var to []string
		for j := i; j < len(outs); j++ {
			if outs[j].Delivered == o.Delivered && outs[j].Reply == o.Reply {
				to = append(to, l.Env.Rcpts[j].Addr.String())
			}
		}
		level, what := slog.LevelInfo, "delivery deferred"
		switch {
		case o.Delivered:
			what = "message delivered"
		case o.Local && o.Reply.Permanent():
			level, what = slog.LevelWarn, "message not sent"
		case o.Local:
			what = "message not sent"
		case o.Reply.Permanent():
			level, what = slog.LevelWarn, "recipient refused by next hop"
		}
		attrs := []any{"session", o.Session, "msg", l.ID, "queue", hop.Key}
		if !o.Local { // no host said it
			attrs = append(attrs, "host", host)
		}
		attrs = append(attrs, "rcpts", len(to), "to", strings.Join(to, ","), "reply", o.Reply.Error())
		d.log.Log(context.Background(), level, what, attrs...)
	}
}

// target is one host to try, with the name its certificate must carry.
type target struct {
	addr string // host:port to dial; an MX host's or a smarthost's is one of its addresses
	name string // host name for TLS verification and logs
	err  error  // why there is nothing to dial (its name did not resolve)
	// smarthost is the smarthost this target is, or is an address of,
	// as configured (host:port); "" for an MX host.
	smarthost string
	// resolve marks an MX host, or a smarthost given by name, to be
	// resolved into its addresses when its turn comes (see connect).
	resolve bool
	// within, when set, bounds the TCP connect (see fallbackDelay);
	// patient marks an address that was slow to connect and now gets
	// the connector's whole connect_timeout.
	within  time.Duration
	patient bool
}

// String is "name [ip:port]" for an address of a named host, for logs
// and last errors: the name alone does not say which address failed.
func (t target) String() string {
	if host, _, err := net.SplitHostPort(t.addr); err == nil && host != t.name {
		if _, err := netip.ParseAddr(t.name); err != nil {
			return fmt.Sprintf("%s [%s]", t.name, t.addr)
		}
	}
	return t.addr
}

// targets lists where to connect for a hop: the smarthosts, or the MX
// hosts of the recipient domain. perm is set when the domain refuses mail
// altogether.
func (d *Deliverer) targets(ctx context.Context, hop route.Hop) ([]target, *reply.Reply, error) {
	sc := hop.Connector
	if len(sc.Smarthosts) > 0 {
		keys := make([]string, len(sc.Smarthosts))
		names := map[string]string{}
		for i, s := range sc.Smarthosts {
			keys[i] = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
			names[keys[i]] = s.Host
		}
		// A smarthost that failed lately (all its addresses) goes
		// after the others; one given by name becomes its addresses in
		// its place, as an MX host does.
		var out []target
		for _, k := range d.order(keys) {
			_, err := netip.ParseAddr(names[k])
			out = append(out, target{addr: k, name: names[k], smarthost: k, resolve: err != nil})
		}
		return out, nil, nil
	}
	hosts, perm, err := d.lookupMX(ctx, hop.Domain)
	if perm != nil || err != nil {
		return nil, perm, err
	}
	// Each address is its own target, with its own health, so that one
	// that refuses the session sends delivery on to the host's next; a
	// host's are looked up when its turn comes (see connect).
	port := strconv.Itoa(sc.Port)
	var out []target
	for _, h := range hosts { // the MX preference order between hosts stays
		out = append(out, target{addr: net.JoinHostPort(h, port), name: h, resolve: true})
	}
	return out, nil, nil
}

func repeat(o queue.Outcome, n int) []queue.Outcome {
	out := make([]queue.Outcome, n)
	for i := range out {
		out[i] = o
	}
	return out
}

// tempReply phrases a local failure as a temporary reply for the queue.
func tempReply(err error) reply.Reply {
	if r, ok := reply.As(err); ok {
		return r
	}
	return reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 0}, Text: fmt.Sprint(err)}
}

// connectionIdle is how long a session keeps its connection open for
// more mail to the same next hop, as Postfix's connection cache does:
// a relay fed one message at a time would otherwise open a connection
// (TCP, greeting, EHLO, TLS, AUTH) per message.
const connectionIdle = 2 * time.Second

// nextLease takes the hop's next due message, waiting up to
// connectionIdle for one to arrive.
func (d *Deliverer) nextLease(s *run, hop route.Hop) *queue.Lease {
	return d.q.Await(s.stop, hop.Key, connectionIdle)
}

// withoutSuccess is rcpts with SUCCESS taken out of their NOTIFY, for an
// upstream that sees another sender (rewrite_sender; RFC 3461 §5.2.7.1):
// FAILURE and DELAY stay, as its later bounces can go nowhere else; a
// NOTIFY that was SUCCESS alone becomes NEVER, as the client asked for
// no failure notices.
func withoutSuccess(rcpts []mail.Recipient) []mail.Recipient {
	out := make([]mail.Recipient, len(rcpts))
	for i, rc := range rcpts {
		if rc.Notify&mail.NotifySuccess != 0 {
			if rc.Notify &^= mail.NotifySuccess; rc.Notify == 0 {
				rc.Notify = mail.NotifyNever
			}
		}
		out[i] = rc
	}
	return out
}
