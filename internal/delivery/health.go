package delivery

import (
	"sort"
	"sync"
	"time"
)

// HostHealth is what Sluice has seen of one upstream host: the smarthost
// order prefers hosts that answer, and health rules and the admin API show
// which ones do not.
//
// Host is a smarthost as configured (host:port), which fails when none of
// its addresses takes a session, or an address dialled (ip:port): an MX
// host's, or a smarthost's given by name, which Smarthost then names.
type HostHealth struct {
	Host        string    `json:"host"`
	Smarthost   string    `json:"smarthost,omitempty"` // set when the record is made
	Failures    int       `json:"consecutive_failures"`
	LastError   string    `json:"last_error,omitempty"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`

	mu sync.Mutex
}

// host returns the health of addr, made on first use; smarthost is the
// smarthost it is an address of, if any.
func (d *Deliverer) host(addr, smarthost string) *HostHealth {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[addr]
	if h == nil {
		h = &HostHealth{Host: addr, Smarthost: smarthost}
		d.hosts[addr] = h
	}
	return h
}

// health returns the health of t's address and, when t is an address
// of a smarthost given by name, of that smarthost (else nil): for an
// address literal or a name that did not resolve the two are one.
func (d *Deliverer) health(t target) (addr, smarthost *HostHealth) {
	if t.smarthost == "" || t.smarthost == t.addr {
		return d.host(t.addr, ""), nil
	}
	return d.host(t.addr, t.smarthost), d.host(t.smarthost, "")
}

func (h *HostHealth) failed(err string) {
	h.mu.Lock()
	h.Failures++
	h.LastError, h.LastFailure = err, time.Now()
	h.mu.Unlock()
}

func (h *HostHealth) ok() {
	h.mu.Lock()
	h.Failures, h.LastSuccess = 0, time.Now()
	h.mu.Unlock()
}

// down reports whether the host failed recently enough to try the others
// first: after a failure it is skipped for a while that grows with the
// failures in a row, at most 5 minutes.
func (h *HostHealth) down(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Failures == 0 {
		return false
	}
	wait := min(time.Duration(h.Failures)*15*time.Second, 5*time.Minute)
	return now.Sub(h.LastFailure) < wait
}

// failedWithin reports whether the host's last attempt failed, less
// than d before now.
func (h *HostHealth) failedWithin(now time.Time, d time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.Failures > 0 && now.Sub(h.LastFailure) < d
}

// Hosts returns a snapshot of every upstream host's health.
func (d *Deliverer) Hosts() []HostHealth {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]HostHealth, 0, len(d.hosts))
	for _, h := range d.hosts {
		h.mu.Lock()
		out = append(out, HostHealth{Host: h.Host, Smarthost: h.Smarthost, Failures: h.Failures, LastError: h.LastError, LastFailure: h.LastFailure, LastSuccess: h.LastSuccess})
		h.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// order puts hosts that are up first, keeping the configured order within
// each group: failover, not load balancing.
func (d *Deliverer) order(addrs []string) []string {
	now := time.Now()
	var up, down []string
	for _, a := range addrs {
		d.mu.Lock()
		h := d.hosts[a] // none yet: never failed
		d.mu.Unlock()
		if h != nil && h.down(now) {
			down = append(down, a)
		} else {
			up = append(up, a)
		}
	}
	return append(up, down...)
}
