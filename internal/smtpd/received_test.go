package smtpd

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
)

// traceFieldsFmt is traceFields as first written, with fmt: the
// reference the appending one must match.
func traceFieldsFmt(env *mail.Envelope, fqdn, proto string, h *header) []byte {
	o := env.Origin
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n", safeToken(o.ClientHelo), o.ClientIP.Unmap())
	fmt.Fprintf(&b, "\tby %s (Sluice) with %s id %s\r\n", fqdn, proto, env.ID)
	fmt.Fprintf(&b, "\t(connector %q", safeComment(o.Connector))
	if o.TLS != "" {
		fmt.Fprintf(&b, "; %s", o.TLS)
	}
	if o.AuthUser != "" {
		fmt.Fprintf(&b, "; authenticated as %q", safeComment(o.AuthUser))
	}
	b.WriteString(")\r\n")
	if len(env.Rcpts) == 1 { // RFC 5321 §7.2: naming one of many recipients would leak the others
		fmt.Fprintf(&b, "\tfor %s;", env.Rcpts[0].Addr.Path())
	} else {
		b.WriteString("\t;")
	}
	fmt.Fprintf(&b, " %s\r\n", env.Received.Format(time.RFC1123Z))
	if !h.hasMessageID {
		fmt.Fprintf(&b, "Message-ID: <%s@%s>\r\n", env.ID, fqdn)
	}
	if !h.hasDate {
		fmt.Fprintf(&b, "Date: %s\r\n", env.Received.Format(time.RFC1123Z))
	}
	if h.none {
		b.WriteString("\r\n") // keep the client's first line in the body
	}
	return []byte(b.String())
}

func TestTraceFieldsMatchReference(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 15, 7, 0, time.FixedZone("CET", 3600))
	one := []mail.Recipient{{Addr: "bob@contoso.com"}}
	two := []mail.Recipient{{Addr: "bob@contoso.com"}, {Addr: "ann@contoso.com"}}
	for i, c := range []struct {
		origin mail.Origin
		rcpts  []mail.Recipient
		h      header
	}{
		{mail.Origin{Connector: "Default", ClientIP: netip.MustParseAddr("127.0.0.1"), ClientHelo: "client.test"}, one, header{}},
		{mail.Origin{Connector: "Apps \"x\"\r\n", ClientIP: netip.MustParseAddr("::ffff:10.0.0.5"), ClientHelo: "bad helo\r\n(x)",
			TLS: "TLS1.3 TLS_AES_128_GCM_SHA256", AuthUser: "app@contoso.com\t\"q\""}, two, header{hasMessageID: true, hasDate: true}},
		{mail.Origin{ClientIP: netip.MustParseAddr("2001:db8::1")}, nil, header{none: true}},
		{mail.Origin{Connector: "Ünïcode", ClientIP: netip.MustParseAddr("192.0.2.7"), ClientHelo: strings.Repeat("h", 300)}, one, header{hasDate: true}},
	} {
		env := &mail.Envelope{ID: "06h0s7sbfk004of0", Rcpts: c.rcpts, Received: at, Origin: c.origin}
		got := traceFields(env, "relay.contoso.com", "ESMTPSA", &c.h)
		want := traceFieldsFmt(env, "relay.contoso.com", "ESMTPSA", &c.h)
		if !bytes.Equal(got, want) {
			t.Errorf("case %d:\n%q\nwant\n%q", i, got, want)
		}
	}
}
