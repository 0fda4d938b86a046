package config

import "strings"

// AcceptedDomain returns the accepted domain entry covering domain (an
// exact entry first, then the nearest "*." parent), or nil.
func (c *Config) AcceptedDomain(domain string) *AcceptedDomain {
	d := strings.ToLower(domain)
	for i := range c.AcceptedDomains {
		if c.AcceptedDomains[i].Domain == d {
			return &c.AcceptedDomains[i]
		}
	}
	for {
		dot := strings.IndexByte(d, '.')
		if dot < 0 {
			return nil
		}
		d = d[dot+1:]
		for i := range c.AcceptedDomains {
			if ad := &c.AcceptedDomains[i]; strings.HasPrefix(ad.Domain, "*.") && ad.Domain[2:] == d {
				return ad
			}
		}
	}
}
