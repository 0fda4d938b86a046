package delivery

import (
	"sort"
	"sync"
	"time"
)

// HostHealth is what Sluice has seen of one upstream host: the smarthost
// order prefers hosts that answer, and health rules and the admin API show
// which ones do not.
type HostHealth struct {
	Host        string    `json:"host"`
	Failures    int       `json:"consecutive_failures"`
	LastError   string    `json:"last_error,omitempty"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`

	mu sync.Mutex
}

func (d *Deliverer) host(addr string) *HostHealth {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[addr]
	if h == nil {
		h = &HostHealth{Host: addr}
		d.hosts[addr] = h
	}
	return h
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

// Hosts returns a snapshot of every upstream host's health.
func (d *Deliverer) Hosts() []HostHealth {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]HostHealth, 0, len(d.hosts))
	for _, h := range d.hosts {
		h.mu.Lock()
		out = append(out, HostHealth{Host: h.Host, Failures: h.Failures, LastError: h.LastError, LastFailure: h.LastFailure, LastSuccess: h.LastSuccess})
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
		if d.host(a).down(now) {
			down = append(down, a)
		} else {
			up = append(up, a)
		}
	}
	return append(up, down...)
}
