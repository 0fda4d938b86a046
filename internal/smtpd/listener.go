package smtpd

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/policy"
	"github.com/sluice-relay/sluice/internal/reply"
)

// listener accepts connections on one binding and hands each to the
// receive connector that serves the client.
type listener struct {
	srv     *Server
	ln      net.Listener
	binding config.Binding
}

var (
	errTooManyAll = reply.TooManyConnsAll
	errTooManyIP  = reply.TooManyConns
)

func (l *listener) serve() {
	defer l.srv.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and go on, as
			// net/http does, rather than spin or give up the binding.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.srv.log.Error("accept failed", "binding", l.binding.String(), "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		// This goroutine serves the connection and a new one goes on
		// accepting: the greeting does not wait for a new goroutine to
		// be scheduled (~12 µs a connection on the benchmark VM, at one
		// connection all of it on the client's path).
		l.srv.wg.Add(1)
		go l.serve()
		l.handle(c)
		return
	}
}

// handle picks the connector for a new connection and runs its session.
func (l *listener) handle(c net.Conn) {
	defer c.Close()
	snap := l.srv.state.Load()
	remote := addrPort(c.RemoteAddr())
	local := addrPort(c.LocalAddr())
	ip := remote.Addr().Unmap()
	rc, err := policy.Select(snap.cfg, local, ip)
	if err != nil {
		l.srv.log.Warn("connection refused: no receive connector serves this client",
			"client", ip.String(), "binding", l.binding.String())
		refuse(c, reply.ConnectDenied.Withf("Client host %s is not allowed to connect to this server", ip))
		return
	}
	if err := l.srv.admit(rc, ip); err != nil {
		l.srv.log.Warn("connection refused: limit reached", "connector", rc.Name, "client", ip.String(), "err", err)
		refuse(c, err.(reply.Reply))
		return
	}
	defer l.srv.release(rc, ip)
	sess := newSession(l.srv, snap, rc, c, remote, local)
	if !l.srv.track(sess, true) {
		refuse(c, reply.ShuttingDown)
		return
	}
	defer l.srv.track(sess, false)
	sess.serve()
}

// refuse answers a connection that gets no session and closes it.
func refuse(c net.Conn, r reply.Reply) {
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte(r.Lines()))
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func newSessionID() string { return string(mail.NewID()) }
