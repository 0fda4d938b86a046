package delivery

import (
	"net"
	"strconv"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
)

// Sluice runs for months, and delivery by MX meets new next hops (one
// per recipient domain) and new upstream hosts (their MX hosts) all the
// time; reloads add and remove send connectors. What the Deliverer keeps
// per hop, host or connector is dropped here once nothing needs it, so
// that it does not grow with every domain ever written to. (The session
// counts per hop go in forget, as their sessions end.)

// prune (d.mu held) drops, with cfg the config in force:
//   - the rate limiters of hops no session runs for, whose next slot has
//     passed: a new limiter lets the next message go at once too;
//   - the health of hosts that are not smarthosts of cfg (MX hosts'
//     addresses, smarthosts removed in a reload), unless they failed
//     recently enough to be tried after the others (down): an MX host's
//     addresses are put in order by it too, and an entry lives at most
//     the 5 minutes of down after its last failure. An address of a
//     smarthost of cfg that is failing is kept for failingAddrKept after
//     its last failure: its failures then add up, so that it is tried
//     ever less often (down) and health can tell one that keeps failing
//     from a blip, while the addresses a name like smtp.office365.com
//     moves through do not pile up;
//   - the token sources of connectors that cfg no longer has, or that no
//     longer log in with XOAUTH2.
func (d *Deliverer) prune(cfg *config.Config, now time.Time) {
	for key, l := range d.limits {
		if d.active[key] == nil && l.passed(now) {
			delete(d.limits, key)
		}
	}
	smarthosts := map[string]bool{}
	xoauth2 := map[string]bool{}
	for i := range cfg.SendConnectors {
		sc := &cfg.SendConnectors[i]
		for _, s := range sc.Smarthosts {
			smarthosts[net.JoinHostPort(s.Host, strconv.Itoa(s.Port))] = true
		}
		if sc.Auth.Mechanism == "XOAUTH2" {
			xoauth2[sc.Name] = true
		}
	}
	for addr, h := range d.hosts {
		if !smarthosts[addr] && !h.down(now) && !(smarthosts[h.Smarthost] && h.failedWithin(now, failingAddrKept)) {
			delete(d.hosts, addr)
		}
	}
	for name := range d.tokens {
		if !xoauth2[name] {
			delete(d.tokens, name)
		}
	}
}

// failingAddrKept is how long the health of a smarthost's address that
// is failing is kept after its last failure.
const failingAddrKept = time.Hour

// passed reports whether the limiter's next slot is not in the future.
func (l *limiter) passed(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.next.After(now)
}
