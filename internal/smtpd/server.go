package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/metrics"
	"github.com/sluice-relay/sluice/internal/protolog"
	"github.com/sluice-relay/sluice/internal/tracking"
	"github.com/sluice-relay/sluice/internal/userdb"
)

// Spool is where accepted messages go; the queue implements it.
type Spool interface {
	// Put stores the message and returns only once body and envelope are
	// durable (fsynced, directory entry included). It sets env.Size. An
	// error that is a reply.Reply is given to the client as it is.
	Put(ctx context.Context, env *mail.Envelope, body io.Reader) error
}

// Options are what a Server is built from.
type Options struct {
	Spool    Spool
	Log      *slog.Logger
	Tracking *tracking.Log // nil: no tracking
	Protocol *protolog.Log // nil: no protocol log even where connectors ask for one
	Metrics  *metrics.Metrics
}

// snapshot is one config with what is derived from it; sessions keep the
// snapshot they started with.
type snapshot struct {
	cfg   *config.Config
	users *userdb.DB
}

// listenConfig turns TCP keepalive off for accepted connections: a
// session's idle timeout ends a silent client long before keepalive
// would notice, and setting it up was four system calls per connection,
// which for clients that connect per message is per message.
var listenConfig = net.ListenConfig{KeepAlive: -1}

// Server accepts connections on every receive connector binding.
type Server struct {
	spool    Spool
	log      *slog.Logger
	tracking *tracking.Log
	protocol *protolog.Log
	metrics  *metrics.Metrics
	state    atomic.Pointer[snapshot]

	mu        sync.Mutex
	listeners map[config.Binding]*listener
	sessions  map[*session]struct{}
	conns     map[string]*connCount // by connector name
	closing   atomic.Bool
	wg        sync.WaitGroup
	// listen opens a listener: listenConfig.Listen, or in a test one
	// that fails where the test wants.
	listen func(ctx context.Context, network, address string) (net.Listener, error)

	authFails *failCounter
}

// New returns a server that serves nothing until Apply is called.
func New(o Options) *Server {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		spool:     o.Spool,
		log:       log,
		tracking:  o.Tracking,
		protocol:  o.Protocol,
		metrics:   o.Metrics,
		listeners: map[config.Binding]*listener{},
		sessions:  map[*session]struct{}{},
		conns:     map[string]*connCount{},
		authFails: newFailCounter(10 * time.Minute),
		listen:    listenConfig.Listen,
	}
}

// Apply makes cfg the configuration for new connections: it listens on
// bindings that are new and stops listening on ones that are gone. If a
// binding cannot be opened, nothing changes and the error says which.
// Sessions already running keep their configuration.
func (s *Server) Apply(cfg *config.Config) error {
	if s.closing.Load() {
		return errors.New("server is shutting down")
	}
	want := map[config.Binding][]string{} // the connectors on each binding
	for _, rc := range cfg.ReceiveConnectors {
		for _, b := range rc.Bindings {
			want[b] = append(want[b], rc.Name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	opened, failed, err := s.open(cfg, want)
	if err != nil {
		// A binding moved on its port (0.0.0.0:25 to 10.0.0.5:25, or
		// back) cannot be listened on while the old one listens: when
		// that is all that failed, stop the old ones and try again,
		// giving them back if the new ones still cannot be opened.
		var freed []config.Binding
		for b := range s.listeners {
			if want[b] == nil && overlapsAny(b, failed) {
				freed = append(freed, b)
			}
		}
		if len(freed) == 0 || !onlyInUse(err) {
			return err
		}
		for _, b := range freed {
			s.listeners[b].ln.Close()
			delete(s.listeners, b)
			s.log.Info("stopped listening to move a binding on its port", "binding", b.String())
		}
		if opened, _, err = s.open(cfg, want); err != nil {
			return errors.Join(err, s.reopen(freed))
		}
	}
	s.state.Store(&snapshot{cfg: cfg, users: userdb.New(cfg.Users)})
	for b, l := range s.listeners {
		if want[b] == nil {
			l.ln.Close()
			delete(s.listeners, b)
			s.log.Info("stopped listening", "binding", b.String())
		}
	}
	s.serveAll(opened)
	return nil
}

// open (s.mu held) listens on the bindings of want not listened on yet.
// If any cannot be opened it opens none and returns the ones that
// failed, and an error for each, placed at its binding in cfg.
func (s *Server) open(cfg *config.Config, want map[config.Binding][]string) (opened map[config.Binding]*listener, failed []config.Binding, err error) {
	opened = map[config.Binding]*listener{}
	for b := range want {
		if _, ok := s.listeners[b]; ok {
			continue
		}
		ln, lerr := s.listen(context.Background(), network(b), b.String())
		if lerr != nil {
			failed = append(failed, b)
			// Name the connector, its binding's line and what to do: with
			// several connectors the address alone does not say which
			// one's binding to fix.
			err = errors.Join(err, cfg.BindingError(b, lerr))
			continue
		}
		opened[b] = &listener{srv: s, ln: ln, binding: b}
	}
	if err != nil {
		for _, l := range opened {
			l.ln.Close()
		}
		return nil, failed, err
	}
	return opened, nil, nil
}

// serveAll (s.mu held) starts serving newly opened listeners.
func (s *Server) serveAll(opened map[config.Binding]*listener) {
	for b, l := range opened {
		s.listeners[b] = l
		s.wg.Add(1)
		go l.serve()
		s.log.Info("listening", "binding", l.ln.Addr().String())
	}
}

// network listens on an IPv4 binding with IPv4 only: Go's "tcp" makes
// 0.0.0.0 a dual-stack socket, taking the port on every IPv6 address
// too, which an admin who wrote 0.0.0.0 did not ask for. [::] stays
// dual-stack, as config's overlap check assumes.
func network(b config.Binding) string {
	if b.Addr().Is4() {
		return "tcp4"
	}
	return "tcp"
}

func overlapsAny(b config.Binding, bs []config.Binding) bool {
	for _, o := range bs {
		if b.Overlaps(o) {
			return true
		}
	}
	return false
}

// reopen (s.mu held) listens again on the bindings closed for a move
// that failed, each on its own: one that cannot be opened (something
// else took its port meanwhile) does not keep the others closed. The
// error names those that no longer listen, for Apply's caller to report:
// the reload is refused, but the running configuration no longer works
// as it did.
func (s *Server) reopen(freed []config.Binding) error {
	var lost []string
	old := s.state.Load().cfg // still the running one
	for _, b := range freed {
		var names []string
		for _, rc := range old.ReceiveConnectors {
			if slices.Contains(rc.Bindings, b) {
				names = append(names, rc.Name)
			}
		}
		back, _, err := s.open(old, map[config.Binding][]string{b: names})
		if err != nil {
			s.log.Error("stopped listening to move a binding and cannot listen on it again; restart Sluice", "binding", b.String(), "err", err)
			lost = append(lost, b.String())
			continue
		}
		s.serveAll(back)
	}
	if lost == nil {
		return nil
	}
	return fmt.Errorf("no longer listening on %s, which stopped to make way for the new bindings and could not listen again: restart Sluice", strings.Join(lost, ", "))
}

// onlyInUse reports whether every error joined in err is an address in
// use: anything else (no such address, no permission) would fail again
// after the old binding is closed.
func onlyInUse(err error) bool {
	var j interface{ Unwrap() []error }
	errs := []error{err}
	if errors.As(err, &j) {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		if !addrInUse(e) {
			return false
		}
	}
	return true
}

// Shutdown stops accepting connections, ends idle sessions with 421, lets
// sessions that are receiving a message finish it, and waits for all of
// them until ctx ends; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for b, l := range s.listeners {
		l.ln.Close()
		delete(s.listeners, b)
	}
	for sess := range s.sessions {
		sess.interrupt()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for sess := range s.sessions {
			sess.raw.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// connCount is how many sessions a connector has, in all and per client.
type connCount struct {
	total int
	byIP  map[netip.Addr]int
}

// admit counts a new session for its connector and client, or says why not.
func (s *Server) admit(rc *config.ReceiveConnector, ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conns[rc.Name]
	if c == nil {
		c = &connCount{byIP: map[netip.Addr]int{}}
		s.conns[rc.Name] = c
	}
	switch {
	case c.total >= rc.Limits.MaxConnections:
		return errTooManyAll
	case c.byIP[ip] >= rc.Limits.MaxConnectionsPerIP:
		return errTooManyIP
	}
	c.total++
	c.byIP[ip]++
	return nil
}

func (s *Server) release(rc *config.ReceiveConnector, ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.conns[rc.Name]; c != nil {
		c.total--
		if c.byIP[ip]--; c.byIP[ip] <= 0 {
			delete(c.byIP, ip)
		}
		// admit makes it again: a connector removed in a reload
		// leaves nothing behind once its last session ends.
		if c.total <= 0 {
			delete(s.conns, rc.Name)
		}
	}
}

func (s *Server) track(sess *session, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		s.sessions[sess] = struct{}{}
	} else {
		delete(s.sessions, sess)
	}
	return true
}
