package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
)

// TestSharePointConnectors is seeds 000 and 001: SharePoint cannot
// authenticate, and sends sharing invitations as the user who shared, to
// people outside the organisation. The fix is a connector of its own, on
// its own port, scoped to the SharePoint server's address, externally
// secured and offering no AUTH — while the client connector next to it
// keeps requiring AUTH. Seed 004's variant shares one binding between a
// broad anonymous connector and a /32 relay connector: the most specific
// range wins.
//
// The loopback addresses 127.0.0.2 and 127.0.0.3 stand for the SharePoint
// server and some other host.
func TestSharePointConnectors(t *testing.T) {
	t.Parallel()
	skipWithout(t, "swaks")
	cert := certtest.New(t, "localhost", "127.0.0.1")
	client, sharepoint, shared := freeAddr(t), freeAddr(t), freeAddr(t)
	s := startSluice(t, fmt.Sprintf(`accepted_domains:
  - domain: contoso.com
receive_connectors:
  - name: Client
    bindings: [%s]
    remote_ip_ranges: [0.0.0.0/0]
    tls: {mode: starttls, certificate: %s, key: %s}
    auth_mechanisms: [LOGIN, PLAIN]
    permissions: []
    limits: {tarpit: 0s}
  - name: SharePoint
    bindings: [%s]
    remote_ip_ranges: [127.0.0.2/32]
    permissions: [externally-secured]
    limits: {max_message_size: 1MB} # not applied: externally secured
  - name: Anonymous
    bindings: [%[5]s]
    remote_ip_ranges: [127.0.0.0/8]
    permissions: [anonymous]
    limits: {tarpit: 0s}
  - name: SMTP Relay APP01
    bindings: [%[5]s]
    remote_ip_ranges: [127.0.0.2/32]
    permissions: [relay, accept-any-sender]
    limits: {tarpit: 0s}
users:
  - name: sp-farm@contoso.com
    password_hash: "%s"
`, client, cert.CertFile, cert.KeyFile, sharepoint, shared, testHash),
		listen(client), endpoint{addr: sharepoint, from: "127.0.0.2"}, listen(shared))

	cases := []struct {
		name      string
		from      string // client source address
		addr      string
		sender    string
		rcpt      string
		want      []string // in swaks's output
		delivered bool
	}{
		{name: "SharePoint sends as a user to an outside domain", from: "127.0.0.2", addr: sharepoint,
			sender: "alice@contoso.com", rcpt: "partner@fabrikam.example", delivered: true,
			want: []string{"220 relay.test ESMTP Sluice ready", "250 2.1.0 Sender OK", "250 2.1.5 Recipient OK", "250 2.6.0"}},
		{name: "SharePoint sends to an internal group", from: "127.0.0.2", addr: sharepoint,
			sender: "bob@contoso.com", rcpt: "all-staff@contoso.com", delivered: true,
			want: []string{"250 2.6.0"}},
		{name: "another host on the SharePoint port", from: "127.0.0.3", addr: sharepoint,
			sender: "alice@contoso.com", rcpt: "partner@fabrikam.example",
			want: []string{"554 5.7.1 Client host 127.0.0.3 is not allowed to connect to this server"}},
		{name: "SharePoint on the client port without AUTH", from: "127.0.0.2", addr: client,
			sender: "alice@contoso.com", rcpt: "partner@fabrikam.example",
			want: []string{"530 5.7.57 Client was not authenticated to send anonymous mail during MAIL FROM"}},
		{name: "shared binding: the /32 relay connector serves its host", from: "127.0.0.2", addr: shared,
			sender: "erp@contoso.com", rcpt: "customer@fabrikam.example", delivered: true,
			want: []string{"250 2.1.5 Recipient OK", "250 2.6.0"}},
		{name: "shared binding: other hosts may not relay", from: "127.0.0.3", addr: shared,
			sender: "printer@devices.example", rcpt: "customer@fabrikam.example",
			want: []string{"550 5.7.54 Unable to relay recipient in non-accepted domain"}},
		{name: "shared binding: other hosts may deliver to accepted domains", from: "127.0.0.3", addr: shared,
			sender: "printer@devices.example", rcpt: "scans@contoso.com", delivered: true,
			want: []string{"250 2.1.5 Recipient OK", "250 2.6.0"}},
		{name: "shared binding: other hosts may not send as the organisation", from: "127.0.0.3", addr: shared,
			sender: "ceo@contoso.com", rcpt: "bob@contoso.com",
			want: []string{"550 5.7.60 Client does not have permissions to send as this sender"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := swaks(t, tc.addr, "--local-interface", tc.from, "--from", tc.sender, "--to", tc.rcpt,
				"--header", "Subject: "+tc.name)
			r.wantExit(t, tc.delivered)
			r.want(t, tc.want...)
			if !tc.delivered || t.Failed() {
				return
			}
			m := waitMessage(t, s.dropDir, tc.rcpt)
			if m.sender != "<"+tc.sender+">" {
				t.Errorf("X-Sender %q, want <%s>", m.sender, tc.sender)
			}
			if !strings.Contains(string(m.msg), "Subject: "+tc.name+"\r\n") {
				t.Errorf("the message for <%s> is not the one this case sent:\n%s", tc.rcpt, head(m.msg))
			}
		})
	}

	t.Run("externally secured skips the size limit", func(t *testing.T) {
		body := filepath.Join(t.TempDir(), "body.txt")
		line := strings.Repeat("0123456789", 7) + "\n"
		if err := os.WriteFile(body, []byte(strings.Repeat(line, 2<<20/len(line)+1)), 0o600); err != nil {
			t.Fatal(err)
		}
		const rcpt = "big-report@fabrikam.example"
		r := swaks(t, sharepoint, "--local-interface", "127.0.0.2", "--from", "alice@contoso.com", "--to", rcpt,
			"--body", "@"+body, "--suppress-data")
		r.wantExit(t, true)
		r.want(t, "250 2.6.0")
		if !t.Failed() {
			if m := waitMessage(t, s.dropDir, rcpt); len(m.msg) < 2<<20 {
				t.Errorf("stored message has %d octets, want the whole 2 MB body", len(m.msg))
			}
		}
	})
	t.Run("SharePoint port offers no AUTH", func(t *testing.T) {
		r := swaks(t, sharepoint, "--local-interface", "127.0.0.2", "--quit-after", "EHLO")
		r.wantExit(t, true)
		r.want(t, "250-SIZE\n") // externally secured: SIZE without a limit
		r.wantNot(t, "AUTH", "STARTTLS")
	})
	t.Run("the log names the refused client", func(t *testing.T) {
		// The refusal above happened before this subtest; its log line
		// names the client and the binding.
		s.waitLog("127.0.0.3")
		var found bool
		for _, line := range strings.Split(s.log.String(), "\n") {
			if strings.Contains(line, "127.0.0.3") && strings.Contains(line, sharepoint) {
				found = true
				if !strings.Contains(line, "refused") {
					t.Errorf("the log line about 127.0.0.3 on %s does not say it was refused: %s", sharepoint, line)
				}
			}
		}
		if !found {
			t.Errorf("no log line names client 127.0.0.3 and binding %s; the log:\n%s", sharepoint, s.log.String())
		}
	})
}
