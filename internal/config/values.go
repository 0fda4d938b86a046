package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Size is a byte count written as "36MB", "256KB", "1GB" or a plain number
// of bytes. Units are binary (1 KB = 1024 bytes), as in Exchange.
type Size int64

func (s *Size) setScalar(v string) error {
	t := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(v), " ", ""))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size; write e.g. 36MB, 512KB or 1GB", v)
	}
	*s = Size(n * mult)
	return nil
}

func (s Size) String() string {
	switch {
	case s >= 1<<30 && s%(1<<30) == 0:
		return fmt.Sprintf("%dGB", s>>30)
	case s >= 1<<20 && s%(1<<20) == 0:
		return fmt.Sprintf("%dMB", s>>20)
	case s >= 1<<10 && s%(1<<10) == 0:
		return fmt.Sprintf("%dKB", s>>10)
	}
	return fmt.Sprintf("%dB", int64(s))
}

// Duration is a time span written as Go durations are: "5s", "10m", "1h30m";
// "2d" is accepted for days, since queue lifetimes are counted in days.
type Duration time.Duration

// maxDays is the longest duration in days that time.Duration holds (292 years).
const maxDays = int(math.MaxInt64 / int64(24*time.Hour))

func (d *Duration) setScalar(v string) error {
	t := strings.TrimSpace(v)
	if days, ok := strings.CutSuffix(t, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			// Beyond time.Duration's range n days would wrap around,
			// possibly to a short positive duration.
			if n > maxDays {
				return fmt.Errorf("%q is longer than Sluice can count; give at most %dd", v, maxDays)
			}
			*d = Duration(time.Duration(n) * 24 * time.Hour)
			return nil
		}
	}
	x, err := time.ParseDuration(t)
	if err != nil || x < 0 {
		return fmt.Errorf("%q is not a duration; write e.g. 30s, 5m, 1h or 2d", v)
	}
	*d = Duration(x)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// CIDR is a remote IP range: "10.0.0.0/24", "2001:db8::/32", or a single
// address ("10.0.0.5" means 10.0.0.5/32).
type CIDR struct{ netip.Prefix }

func (c *CIDR) setScalar(v string) error {
	t := strings.TrimSpace(v)
	if !strings.Contains(t, "/") {
		a, err := netip.ParseAddr(t)
		if err != nil {
			return fmt.Errorf("%q is not an IP address or CIDR range; write e.g. 10.0.0.0/24 or 10.0.0.5", v)
		}
		c.Prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		return nil
	}
	p, err := netip.ParsePrefix(t)
	if err != nil {
		return fmt.Errorf("%q is not a CIDR range; write e.g. 10.0.0.0/24", v)
	}
	if p.Masked() != p {
		return fmt.Errorf("%q has host bits set; write %s", v, p.Masked())
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		// Clients are matched by their IPv4 address (Serves unmaps it), so
		// the IPv4-mapped form of a range would never match anyone.
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	c.Prefix = p
	return nil
}

// Binding is a local address and port a receive connector listens on.
type Binding struct{ netip.AddrPort }

func (b *Binding) setScalar(v string) error {
	t := strings.TrimSpace(v)
	ap, err := netip.ParseAddrPort(t)
	if err != nil {
		return fmt.Errorf("%q is not an address:port binding; write e.g. 0.0.0.0:25, 127.0.0.1:2525 or [::]:587", v)
	}
	if ap.Port() == 0 {
		return fmt.Errorf("%q has port 0; give the port to listen on", v)
	}
	b.AddrPort = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return nil
}

// Wildcard reports whether the binding listens on every local address.
func (b Binding) Wildcard() bool { return b.Addr().IsUnspecified() }

// Overlaps reports whether b and o cannot both be listened on: the same
// port, and the same address or one a wildcard covering the other.
func (b Binding) Overlaps(o Binding) bool {
	return b.Port() == o.Port() && (b == o || covers(b, o) || covers(o, b))
}
