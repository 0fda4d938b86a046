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

// PostmasterDomain is the domain whose postmaster a bare RCPT
// TO:<postmaster> reaches (RFC 5321 §4.5.1): the first accepted domain
// that is not a "*." pattern, as Exchange uses its default accepted
// domain; "" when there is none.
func (c *Config) PostmasterDomain() string {
	for _, ad := range c.AcceptedDomains {
		if !strings.HasPrefix(ad.Domain, "*.") {
			return ad.Domain
		}
	}
	return ""
}
