package delivery

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/metrics"
	"github.com/sluice-relay/sluice/internal/protolog"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/route"
	"github.com/sluice-relay/sluice/internal/token"
)

// Options are what a Deliverer is built from.
type Options struct {
	Queue  *queue.Queue
	Config *config.Config
	Log    *slog.Logger
	// Protocol receives the SMTP conversations of send connectors with
	// protocol_log set; nil logs none.
	Protocol *protolog.Log
	Metrics  *metrics.Metrics
}

// Deliverer runs delivery sessions for every next hop with due mail.
type Deliverer struct {
	q        *queue.Queue
	log      *slog.Logger
	protocol *protolog.Log
	metrics  *metrics.Metrics
	cfg      atomic.Pointer[config.Config]

	mu       sync.Mutex
	active   map[string]*hopSessions // sessions per next hop
	limits   map[string]*limiter     // rate limit per next hop (pruned in forget.go)
	tokens   map[string]*tokenSource // OAuth2 per send connector (pruned in forget.go)
	hosts    map[string]*HostHealth  // per upstream host:port (pruned in forget.go)
	sessions sync.WaitGroup
}

// tokenSource is a connector's token source with the config it was made
// from, so a reload with new credentials makes a new one.
type tokenSource struct {
	src *token.Source
	cfg config.OAuth2
}

// New returns a Deliverer; Run starts it.
func New(o Options) *Deliverer {
	d := &Deliverer{
		q:        o.Queue,
		log:      o.Log,
		protocol: o.Protocol,
		metrics:  o.Metrics,
		active:   map[string]*hopSessions{},
		limits:   map[string]*limiter{},
		tokens:   map[string]*tokenSource{},
		hosts:    map[string]*HostHealth{},
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.cfg.Store(o.Config)
	return d
}

// Apply makes cfg the configuration for new sessions, and forgets the
// token sources and host health of connectors and smarthosts it removed.
func (d *Deliverer) Apply(cfg *config.Config) {
	d.cfg.Store(cfg)
	d.mu.Lock()
	d.prune(cfg, time.Now())
	d.mu.Unlock()
}

// Run starts sessions for due mail until ctx ends, then waits for the
// sessions it started (they end their current message first).
func (d *Deliverer) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := d.dispatch(ctx)
		wait := time.Minute
		if !next.IsZero() {
			wait = max(time.Until(next), 10*time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			d.sessions.Wait()
			return
		case <-d.q.Wake():
		case <-timer.C:
		}
	}
}

// dispatch starts sessions for hops with due mail, up to each hop's
// session limit (the connector's max_connections, or fewer while its
// upstream refuses more), and returns when the next hop will be due.
func (d *Deliverer) dispatch(ctx context.Context) time.Time {
	work, next := d.q.Ready()
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for key := range d.active {
		d.forget(key, now) // hops whose sessions ended a while ago
	}
	d.prune(d.cfg.Load(), now)
	for _, w := range work {
		hs := d.hop(w.Key)
		want := min(w.Due, w.Sessions) - hs.started
		for i := 0; i < want; i++ {
			hs.started++
			d.sessions.Add(1)
			go d.session(ctx, w.Hop)
		}
	}
	return next
}

// session delivers due mail for one hop until there is none (or the
// connection has carried max_messages_per_connection messages).
func (d *Deliverer) session(ctx context.Context, hop route.Hop) {
	defer d.sessions.Done()
	defer func() {
		d.mu.Lock()
		d.hop(hop.Key).started--
		d.forget(hop.Key, time.Now())
		d.mu.Unlock()
		d.q.Kick()
	}()
	l := d.q.Lease(hop.Key)
	if l == nil {
		return
	}
	s := &run{stop: ctx, io: context.WithoutCancel(ctx)}
	switch hop.Connector.Delivery {
	case config.DeliveryDirectory:
		d.directorySession(s, hop, l)
	default:
		d.smtpSession(s, hop, l)
	}
}

// run holds a session's two contexts. stop ends when Sluice shuts down:
// no new message is started after it, and waits (connecting, rate limit)
// give their lease back untouched. io carries the transfer of the message
// under way, which is let finish, so that an upstream that took the
// message is recorded as having done so instead of getting it again after
// the restart. Network timeouts bound it.
type run struct {
	stop context.Context
	io   context.Context
}

func (s *run) stopping() bool { return s.stop.Err() != nil }

// limiter spaces messages to one hop to keep to a rate limit.
type limiter struct {
	mu   sync.Mutex
	next time.Time
}

// wait blocks until the next message may go, or ctx ends.
func (d *Deliverer) wait(ctx context.Context, hop route.Hop) error {
	interval := hop.Connector.RateLimit.Interval()
	if interval == 0 {
		return nil
	}
	d.mu.Lock()
	l := d.limits[hop.Key]
	if l == nil {
		l = &limiter{}
		d.limits[hop.Key] = l
	}
	d.mu.Unlock()
	l.mu.Lock()
	now := time.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(interval)
	l.mu.Unlock()
	if w := time.Until(at); w > 0 {
		t := time.NewTimer(w)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
