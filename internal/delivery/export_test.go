package delivery

// Remembered counts what d keeps per next hop, per upstream host and per
// send connector, for tests that check it forgets what it no longer needs:
// session counts, rate limiters, host health, OAuth2 token sources.
func Remembered(d *Deliverer) (hops, limiters, hosts, tokens int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.active), len(d.limits), len(d.hosts), len(d.tokens)
}
