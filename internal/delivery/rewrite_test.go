package delivery

import (
	"bytes"
	"io"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

// FuzzRewriteSender: the message comes from a client. As the queue holds
// it (lines ending in CRLF, no bare CR or LF), rewriting its sender must
// leave the body and every other field as they were, make the relay's
// mailbox the one From, and keep the one original From as Reply-To
// unless the message had a Reply-To already (net/mail is the reference).
func FuzzRewriteSender(f *testing.F) {
	for _, s := range []string{
		"From: Scanner <scanner@contoso.com>\r\nSubject: scan\r\n\r\nbody\r\nFrom: not a field\r\n",
		"Subject: x\r\nfrom: a@b,\r\n c@d\r\nReply-To: r@s\r\n\r\n",
		"Received: from x\r\n\tby y\r\nFrom: a@b\r\nTo: c@d\r\n",
		"From: a@b\r\n\r\n", "\r\nFrom: a@b\r\n", "",
	} {
		f.Add([]byte(s))
	}
	const mailbox = "relay@fabrikam.com"
	f.Fuzz(func(t *testing.T, in []byte) {
		if bytes.Count(in, []byte("\r")) != bytes.Count(in, []byte("\r\n")) ||
			bytes.Count(in, []byte("\n")) != bytes.Count(in, []byte("\r\n")) ||
			len(in) > 0 && !bytes.HasSuffix(in, []byte("\r\n")) {
			return // not as the queue holds a message
		}
		from, r := rewriteSender(mailbox, bytes.NewReader(in))
		if from != mailbox {
			t.Fatalf("envelope sender %q", from)
		}
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		// The body, after the first empty line, is untouched.
		if i := bytes.Index(append([]byte("\r\n"), in...), []byte("\r\n\r\n")); i >= 0 {
			body := in[i+2:]
			if !bytes.HasSuffix(out, body) {
				t.Fatalf("%q: body changed:\n%q", in, out)
			}
		}
		inMsg, err := mail.ReadMessage(bytes.NewReader(in))
		if err != nil {
			return
		}
		outMsg, err := mail.ReadMessage(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("%q: rewritten message does not parse: %v\n%q", in, err, out)
		}
		ih, oh := fields(inMsg.Header), fields(outMsg.Header)
		for k, v := range ih {
			if k == "From" || k == "Reply-To" && len(ih["From"]) > 0 {
				continue
			}
			if strings.Join(v, "\n") != strings.Join(oh[k], "\n") {
				t.Fatalf("%q: field %s %q became %q\n%q", in, k, v, oh[k], out)
			}
		}
		if len(ih["From"]) == 0 {
			return
		}
		if got := oh["From"]; len(ih["From"]) == 1 && (len(got) != 1 || got[0] != "<"+mailbox+">") {
			t.Fatalf("%q: From fields %q\n%q", in, got, out)
		}
		want := ih["Reply-To"]
		if len(want) == 0 && len(ih["From"]) == 1 {
			want = ih["From"]
		}
		if len(want) > 0 && strings.Join(oh["Reply-To"], "\n") != strings.Join(want, "\n") {
			t.Fatalf("%q: Reply-To %q, want %q\n%q", in, oh["Reply-To"], want, out)
		}
	})
}

// fields merges the fields net/mail keeps apart by the obsolete space
// before the colon (RFC 5322 §4.5.3: "From :x" is a From field).
func fields(h mail.Header) map[string][]string {
	m := map[string][]string{}
	for k, v := range h {
		k = textproto.CanonicalMIMEHeaderKey(strings.TrimRight(k, " \t"))
		m[k] = append(m[k], v...)
		slices.Sort(m[k]) // the order of two keys merged is the map's
	}
	return m
}
