package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
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
	opened := map[config.Binding]*listener{}
	for b := range want {
		if _, ok := s.listeners[b]; ok {
			continue
		}
		ln, err := listenConfig.Listen(context.Background(), "tcp", b.String())
		if err != nil {
			for _, l := range opened {
				l.ln.Close()
			}
			// Name the connector: with several, the address alone does
			// not say which one's binding to fix.
			return fmt.Errorf("receive connector %q: cannot listen on %s: %w", strings.Join(want[b], `", "`), b, err)
		}
		opened[b] = &listener{srv: s, ln: ln, binding: b}
	}
	s.state.Store(&snapshot{cfg: cfg, users: userdb.New(cfg.Users)})
	for b, l := range s.listeners {
		if want[b] == nil {
			l.ln.Close()
			delete(s.listeners, b)
			s.log.Info("stopped listening", "binding", b.String())
		}
	}
	for b, l := range opened {
		s.listeners[b] = l
		s.wg.Add(1)
		go l.serve()
		s.log.Info("listening", "binding", l.ln.Addr().String())
	}
	return nil
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
