package smtpclient

import (
	"context"
	"net"
	"strings"
)

// Hello sends EHLO and records the extensions the server offers. A server
// that does not know EHLO (500 or 502) gets HELO instead (RFC 5321 §3.2),
// and then offers no extensions. Any other refusal is an *Error.
func (c *Client) Hello(ctx context.Context) (err error) {
	if err := c.usable(); err != nil {
		return err
	}
	defer c.watch(ctx, "EHLO")(&err)
	return c.hello()
}

func (c *Client) hello() error {
	c.esmtp, c.ext = false, nil
	name := c.localName()
	r, err := c.cmd("EHLO", c.t.Command, "EHLO "+name, "")
	if err != nil {
		return err
	}
	if r.Code == 250 {
		c.esmtp, c.ext = true, parseExtensions(r.Text)
		return nil
	}
	if r.Code != 500 && r.Code != 502 {
		// RFC 5321 §4.1.4: 501 and 550 are refusals of this client or
		// name by a server that knows EHLO; HELO would fare no better.
		return &Error{Command: "EHLO", Reply: r}
	}
	r, err = c.cmd("HELO", c.t.Command, "HELO "+name, "")
	if err != nil {
		return err
	}
	if r.Code != 250 {
		return &Error{Command: "HELO", Reply: r}
	}
	c.ext = map[string]string{}
	return nil
}

// parseExtensions reads the lines after the first of an EHLO reply
// (RFC 5321 §4.1.1.1): "KEYWORD params". The old "AUTH=LOGIN" form some
// servers still send for Outlook Express counts as AUTH.
func parseExtensions(text string) map[string]string {
	ext := map[string]string{}
	lines := strings.Split(text, "\n")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		kw, params := strings.ToUpper(f[0]), strings.Join(f[1:], " ")
		if mechs, ok := strings.CutPrefix(kw, "AUTH="); ok {
			kw, params = "AUTH", strings.TrimSpace(mechs+" "+params)
		}
		if have, ok := ext[kw]; ok && kw == "AUTH" {
			params = mergeFields(have, params)
		}
		ext[kw] = params
	}
	return ext
}

// mergeFields appends the words of b that a lacks.
func mergeFields(a, b string) string {
	out := strings.Fields(a)
	for _, w := range strings.Fields(b) {
		found := false
		for _, x := range out {
			found = found || strings.EqualFold(x, w)
		}
		if !found {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

// localName is the EHLO argument: Options.LocalName, or the address
// literal of this end of the connection (RFC 5321 §4.1.3).
func (c *Client) localName() string {
	if c.o.LocalName != "" {
		return c.o.LocalName
	}
	ta, ok := c.raw.LocalAddr().(*net.TCPAddr)
	if !ok {
		return "localhost"
	}
	ip := ta.AddrPort().Addr().Unmap()
	if ip.Is4() {
		return "[" + ip.String() + "]"
	}
	return "[IPv6:" + ip.WithZone("").String() + "]"
}
