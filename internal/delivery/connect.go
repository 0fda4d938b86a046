package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/route"
	"github.com/sluice-relay/sluice/internal/smtpclient"
)

// link is a session's connection to one of its hop's targets.
type link struct {
	*smtpclient.Client
	host string // who answers: "name [ip:port]", for logs and the queue's last error
	// session is the session's id: its lines in the send protocol log,
	// and the session of its tracking events and log lines.
	session string
	// targets are the hop's targets as connect went through them (a
	// smarthost's name replaced by its addresses), target the index of
	// the one connected to: after a 421 to the first MAIL, failover goes
	// on from the next.
	targets []target
	target  int
	// taken: the upstream answered the connection's first message
	// without a 421 to its MAIL or a close; until then the session
	// counts as connecting (see hopSessions), and the host as neither
	// working nor failing.
	taken bool
}

// linkHealth is the health of k's address and smarthost (see
// Deliverer's health), looked up when an outcome is to be recorded: a record the
// session fetched at connect may have been pruned (forget.go) while it
// waited for its first reply, and what it recorded there be lost.
func (d *Deliverer) linkHealth(k *link) (addr, smarthost *HostHealth) {
	return d.health(k.targets[k.target])
}

// connect tries targets[from:] in order until one takes a session: TCP,
// greeting, EHLO, TLS as the connector requires, AUTH. On a connection
// failure or a 4xx it moves to the next (failover). It returns the
// connection, or nil and the last failure.
func (d *Deliverer) connect(ctx context.Context, hop route.Hop, targets []target, from int) (*link, queue.Outcome) {
	var last queue.Outcome
	if len(targets) == 0 {
		return nil, queue.Outcome{Reply: reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 0}, Text: "no host to connect to"}}
	}
	// An MX host's or a smarthost's name is resolved when its turn
	// comes, as Go's dialer did: a slow lookup of the second must not
	// hold up the first, and when the first takes the mail the others
	// are not looked up at all. The caller's list stays as it is, to be
	// resolved anew on its next use.
	targets = slices.Clone(targets)
	for i := from; i < len(targets); i++ {
		if t := targets[i]; t.resolve {
			kind := "MX host"
			if t.smarthost != "" {
				kind = "smarthost"
			}
			targets = slices.Replace(targets, i, i+1, d.addresses(ctx, d.dnsServers(), t, kind)...)
		}
		t := targets[i]
		if !t.patient && t.err == nil && otherFamilyNext(targets, i) {
			t.within = fallbackDelay
		}
		var c *smtpclient.Client
		var session string
		err := t.err
		if err == nil {
			c, session, err = d.open(ctx, hop.Connector, t, hop.Connector.TLS.Mode)
		}
		if errors.Is(err, smtpclient.ErrSlowConnect) {
			// Not a failure of the address: its turn comes again, with
			// the whole connect_timeout, after the host's others.
			d.log.Info("upstream address slow to connect; trying the host's other addresses first", "queue", hop.Key, "host", t.String(), "session", session, "err", err)
			t.within, t.patient = 0, true
			end := hostEnd(targets, i)
			targets = slices.Insert(slices.Delete(targets, i, i+1), end, t)
			i--
			continue
		}
		if err != nil && errors.Is(err, errTLSFallback) {
			// Opportunistic TLS whose handshake failed: RFC 7435 §4 says
			// deliver in the clear rather than not at all.
			d.log.Warn("STARTTLS failed; delivering without TLS as the connector allows", "queue", hop.Key, "host", t.String(), "session", session, "err", errors.Unwrap(err))
			c, session, err = d.open(ctx, hop.Connector, t, config.SendTLSNone)
		}
		if err != nil {
			last = queue.Outcome{Reply: failureReply(err, t, hop.Connector), Session: session}
			if isSMTP(err) {
				last.Host = t.String() // the upstream answered: "host said: ..."
			}
			d.hostFailed(hop, targets, i, last, err)
			continue
		}
		return &link{Client: c, host: describeHost(t, c), session: session, targets: targets, target: i}, queue.Outcome{}
	}
	return nil, last
}

var errTLSFallback = errors.New("STARTTLS failed")

// tlsFallback is errTLSFallback with the handshake's own error.
type tlsFallback struct{ cause error }

func (e tlsFallback) Error() string        { return "STARTTLS failed: " + e.cause.Error() }
func (e tlsFallback) Is(target error) bool { return target == errTLSFallback }
func (e tlsFallback) Unwrap() error        { return e.cause }

// open makes one session to one host, ready for MAIL, and returns its
// id, new for each connection as smtpd's are, so that one conversation
// can be followed in the protocol log. The id is empty when no connection
// was made: there is no conversation to lead to.
func (d *Deliverer) open(ctx context.Context, sc *config.SendConnector, t target, mode config.SendTLSMode) (*smtpclient.Client, string, error) {
	id := string(mail.NewID())
	connected := false
	hook, end := d.transcript(sc, id, t.addr)
	trace := func(dir byte, line string) {
		if dir == '+' { // first, in this goroutine
			connected = true
		}
		if hook != nil {
			hook(dir, line)
		}
	}
	// t.addr is an address: names were resolved through node.dns_servers
	// (see targets and connect).
	opts := smtpclient.Options{LocalName: sc.HELO, Dialer: &net.Dialer{Timeout: sc.ConnectTimeout.D()}, ConnectWithin: t.within, Transcript: trace}
	tcfg := sc.TLSConfig().Clone()
	tcfg.ServerName = t.name
	if sc.TLS.ServerName != "" {
		tcfg.ServerName = sc.TLS.ServerName
	}
	// connect_timeout bounds the connect (the Dialer's Timeout covers an
	// implicit TLS handshake too), not the greeting: that has its RFC 5321
	// five minutes (§4.5.3.2.1), for servers that pause before it.
	var c *smtpclient.Client
	var err error
	if sc.TLS.Implicit {
		c, err = smtpclient.DialTLS(ctx, t.addr, tcfg, opts)
		d.metrics.TLS("send", sc.Name, err == nil)
		if cv := (*tls.CertificateVerificationError)(nil); errors.As(err, &cv) {
			err = tlsError(sc, tcfg.ServerName, err)
		}
	} else {
		c, err = smtpclient.Dial(ctx, t.addr, opts)
	}
	if err != nil {
		end(err)
		if !connected {
			id = ""
		}
		return nil, id, err
	}
	fail := func(err error) (*smtpclient.Client, string, error) {
		end(err)
		c.Close()
		return nil, id, err
	}
	if err := c.Hello(ctx); err != nil {
		return fail(err)
	}
	if !sc.TLS.Implicit && mode != config.SendTLSNone {
		switch {
		case c.Supports("STARTTLS"):
			err := c.StartTLS(ctx, tcfg)
			d.metrics.TLS("send", sc.Name, err == nil)
			if err != nil {
				// A 421 is the upstream closing, not available (RFC 5321
				// §3.8), as at the greeting: no handshake failed for a
				// clear session to make up for.
				if mode == config.SendTLSOpportunistic && !closing(err) {
					return fail(tlsFallback{err})
				}
				return fail(tlsError(sc, tcfg.ServerName, err))
			}
		case mode != config.SendTLSOpportunistic:
			return fail(reply.Reply{Code: 454, Enhanced: [3]int{4, 7, 4},
				Text: fmt.Sprintf("send connector %q requires TLS but %s does not offer STARTTLS", sc.Name, t.name)})
		}
	}
	if sc.Auth.Mechanism != "" {
		if err := d.auth(ctx, c, sc); err != nil {
			if se := (*smtpclient.Error)(nil); errors.As(err, &se) && se.Local {
				// smtpclient did not send the credentials: the host's
				// offer is the finding, in Sluice's words.
				err = notOffered(se.Reply, t, strings.ToUpper(sc.Auth.Mechanism), c.AuthMechanisms())
			}
			return fail(err)
		}
	}
	return c, id, nil
}

// failureReply is what the queue records for a failed connection attempt:
// the upstream's own reply when it gave one, else what went wrong on the
// way to it, naming the host.
func failureReply(err error, t target, sc *config.SendConnector) reply.Reply {
	var se *smtpclient.Error
	if errors.As(err, &se) {
		return se.Reply
	}
	if r, ok := reply.As(err); ok {
		return r
	}
	var ns *smtpclient.NotSMTPError
	if errors.As(err, &ns) {
		// It connected: "cannot connect" would send the admin after
		// a firewall, when the port is the mistake.
		check := "check the send connector's port"
		if len(sc.Smarthosts) > 0 {
			check = "check the smarthost's port"
		}
		return reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 0}, Text: fmt.Sprintf("%v; %s", ns, check)}
	}
	var ce *smtpclient.ConnError
	if errors.As(err, &ce) && ce.Closed() {
		// It connected: the upstream hung up on this client.
		return reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 2}, Text: closedText(t.String(), ce)}
	}
	cause := err
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		cause = op.Err
		var sys *os.SyscallError
		if errors.As(op.Err, &sys) {
			cause = sys.Err
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 1}, Text: fmt.Sprintf("cannot connect to %s: timed out (%v)", t, cause)}
	}
	return reply.Reply{Code: 451, Enhanced: [3]int{4, 4, 1}, Text: fmt.Sprintf("cannot connect to %s: %v", t, cause)}
}

// closedText says that host closed the connection during ce.Command. One
// that closes before its greeting accepts the TCP connection and refuses
// the client: Exchange and Microsoft 365 do that to an address their
// connector does not list, as does a server at its connection limit.
func closedText(host string, ce *smtpclient.ConnError) string {
	if ce.Command == "greeting" {
		return fmt.Sprintf("%s closed the connection before its greeting: it may not accept connections from this server's address, or be at its connection limit", host)
	}
	return fmt.Sprintf("%s closed the connection during %s", host, ce.Command)
}

// fallbackDelay is how long a TCP connect to an address may take before
// the host's address of the other family is tried first: RFC 8305 §5's
// Connection Attempt Delay (its recommended 250 ms; Go's dialer, which
// the targets were once given by name, waits 300 ms). A path that is
// broken for one family (IPv6 routed but dropped, say) then costs this,
// not a connect_timeout, per connection. Unlike Go's dialer the attempts
// are one after the other, not raced: each address is a target of its
// own, with its own health and failover after a refused session.
const fallbackDelay = 250 * time.Millisecond

// hostEnd is the index of the last of the addresses of targets[i]'s host
// that follow it (those of one host are together: see addresses).
func hostEnd(targets []target, i int) int {
	end := i
	for end+1 < len(targets) && sameHost(targets[end+1], targets[i]) {
		end++
	}
	return end
}

func sameHost(a, b target) bool { return a.name == b.name && a.smarthost == b.smarthost }

// otherFamilyNext reports whether an address of targets[i]'s host of the
// other family waits to be tried after it.
func otherFamilyNext(targets []target, i int) bool {
	fam := is4(targets[i].addr)
	for _, t := range targets[i+1 : hostEnd(targets, i)+1] {
		if t.err == nil && is4(t.addr) != fam {
			return true
		}
	}
	return false
}

// is4 reports whether host:port names an IPv4 address.
func is4(hostPort string) bool {
	ap, err := netip.ParseAddrPort(hostPort)
	return err == nil && ap.Addr().Unmap().Is4()
}

// lastOfSmarthost reports whether targets[i] is the last address of its
// smarthost in targets: when it fails, none of them took the session.
func lastOfSmarthost(targets []target, i int) bool {
	return i == len(targets)-1 || targets[i+1].smarthost != targets[i].smarthost
}

// hostFailed records that targets[i] did not take the session (o, and
// err, say why): in its address's health and, when it was its
// smarthost's last address, the smarthost's (none of them took it; the
// last says how); and, when another target follows, a line saying so.
// The last target's failure is the hop's, which the queue logs as it
// goes into Retry.
func (d *Deliverer) hostFailed(hop route.Hop, targets []target, i int, o queue.Outcome, err error) {
	h, sh := d.health(targets[i])
	h.failed(o.Reply.Error())
	if sh != nil && lastOfSmarthost(targets, i) {
		sh.failed(o.LastError())
	}
	if i < len(targets)-1 {
		d.log.Warn("cannot use upstream host; trying the next", "queue", hop.Key, "host", targets[i].String(), "session", o.Session, "err", err)
	}
}

// isSMTP reports whether err carries a reply the upstream sent, not one
// smtpclient made itself.
func isSMTP(err error) bool {
	var se *smtpclient.Error
	return errors.As(err, &se) && !se.Local
}

// notOffered is the refusal r (smtpclient's 504 5.5.4) of an AUTH
// mechanism the upstream does not offer, naming the host and its offer.
func notOffered(r reply.Reply, t target, mech string, offered []string) reply.Reply {
	if len(offered) == 0 {
		return r.Withf("%s does not offer AUTH %s; it offers no AUTH mechanism (some offer it only after STARTTLS: check the send connector's tls.mode)", t, mech)
	}
	return r.Withf("%s does not offer AUTH %s; it offers: %s", t, mech, strings.Join(offered, " "))
}

// closing reports whether err is the upstream's 421: its service is not
// available and it closes the connection (RFC 5321 §3.8).
func closing(err error) bool {
	var se *smtpclient.Error
	return errors.As(err, &se) && se.Reply.Code == 421
}

// describeHost is "name [ip:port]" for logs and the queue's last error,
// or "ip:port" when the name is itself an address: "::1 [[::1]:3030]"
// says the same thing twice.
func describeHost(t target, c *smtpclient.Client) string {
	if ra := c.RemoteAddr(); ra != nil {
		if _, err := netip.ParseAddr(t.name); err == nil {
			return ra.String()
		}
		return fmt.Sprintf("%s [%s]", t.name, ra.String())
	}
	return t.String()
}
