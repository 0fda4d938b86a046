// Package metrics owns Sluice's Prometheus metrics: one registry per
// running Sluice, and small nil-safe methods the receive side, the queue,
// delivery and the store call at their events. A nil *Metrics records
// nothing, so packages and tests need not set one up. Queue length and
// age are gauges read from the queue at scrape time (see Gauges).
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the registry and every metric Sluice exports.
type Metrics struct {
	Registry *prometheus.Registry

	sessions      *prometheus.CounterVec
	activeSess    *prometheus.GaugeVec
	received      *prometheus.CounterVec
	receivedBytes *prometheus.CounterVec
	replies       *prometheus.CounterVec
	tls           *prometheus.CounterVec
	auth          *prometheus.CounterVec
	delivered     *prometheus.CounterVec
	deliveredB    *prometheus.CounterVec
	attempts      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	commit        prometheus.Histogram
}

// New makes the metrics, registered with a new registry that also carries
// the Go runtime and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{Registry: r}
	f := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sluice", Name: name, Help: help}, labels)
		r.MustRegister(c)
		return c
	}
	m.sessions = f("smtp_sessions_total", "SMTP sessions accepted on receive connectors.", "connector")
	m.activeSess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "sluice", Name: "smtp_sessions_active", Help: "SMTP sessions open now."}, []string{"connector"})
	r.MustRegister(m.activeSess)
	m.received = f("messages_received_total", "Messages accepted (250 after DATA).", "connector")
	m.receivedBytes = f("received_bytes_total", "Message bytes accepted.", "connector")
	m.replies = f("smtp_replies_total", "SMTP replies sent to clients, by code.", "connector", "code")
	m.tls = f("tls_handshakes_total", "TLS handshakes, by side (receive, send) and result (ok, failed).", "side", "connector", "result")
	m.auth = f("auth_attempts_total", "AUTH attempts by clients, by result (ok, failed).", "connector", "result")
	m.delivered = f("messages_delivered_total", "Recipients' copies taken by the next hop.", "connector")
	m.deliveredB = f("delivered_bytes_total", "Message bytes taken by the next hop (once per message and hop).", "connector")
	m.attempts = f("delivery_outcomes_total", "Outcomes per recipient of delivery attempts (sent, deferred, failed, expired).", "connector", "outcome")
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "sluice", Name: "delivery_latency_seconds",
		Help:    "Time from acceptance to delivery at the next hop.",
		Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}}, []string{"connector"})
	r.MustRegister(m.latency)
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "sluice", Name: "store_commit_seconds",
		Help:    "Queue store commits (write and fsync), each covering one or more messages.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, 1}})
	r.MustRegister(m.commit)
	return m
}

// SessionStarted counts a session; call the returned func when it ends.
func (m *Metrics) SessionStarted(connector string) func() {
	if m == nil {
		return func() {}
	}
	m.sessions.WithLabelValues(connector).Inc()
	g := m.activeSess.WithLabelValues(connector)
	g.Inc()
	return g.Dec
}

// Received counts an accepted message.
func (m *Metrics) Received(connector string, size int64) {
	if m == nil {
		return
	}
	m.received.WithLabelValues(connector).Inc()
	m.receivedBytes.WithLabelValues(connector).Add(float64(size))
}

// Reply counts a reply sent to a client.
func (m *Metrics) Reply(connector string, code int) {
	if m == nil {
		return
	}
	m.replies.WithLabelValues(connector, strconv.Itoa(code)).Inc()
}

// TLS counts a handshake; side is "receive" or "send".
func (m *Metrics) TLS(side, connector string, ok bool) {
	if m == nil {
		return
	}
	m.tls.WithLabelValues(side, connector, result(ok)).Inc()
}

// Auth counts a client's AUTH attempt.
func (m *Metrics) Auth(connector string, ok bool) {
	if m == nil {
		return
	}
	m.auth.WithLabelValues(connector, result(ok)).Inc()
}

// Outcome counts one recipient's delivery outcome ("sent", "deferred",
// "failed", "expired").
func (m *Metrics) Outcome(connector, outcome string) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(connector, outcome).Inc()
	if outcome == "sent" {
		m.delivered.WithLabelValues(connector).Inc()
	}
}

// Delivered records a message taken by a next hop, with how long it was
// in Sluice.
func (m *Metrics) Delivered(connector string, size int64, since time.Duration) {
	if m == nil {
		return
	}
	m.deliveredB.WithLabelValues(connector).Add(float64(size))
	m.latency.WithLabelValues(connector).Observe(since.Seconds())
}

// Commit records one store commit.
func (m *Metrics) Commit(d time.Duration) {
	if m == nil {
		return
	}
	m.commit.Observe(d.Seconds())
}

func result(ok bool) string {
	if ok {
		return "ok"
	}
	return "failed"
}
