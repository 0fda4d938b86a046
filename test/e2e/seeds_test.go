package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtptest"
)

// Each seed's failure, reproduced against the built binary and diagnosed
// with Sluice's own tools.

// Seeds 000/001: SharePoint sends without AUTH to a connector that demands
// it. The client gets 530 5.7.57; the protocol log and test connect show
// that AUTH was not even offered before STARTTLS.
func TestSeedSharePointWithoutAuth(t *testing.T) {
	cert := certtest.New(t, "relay.test")
	addr := freeAddr(t)
	s := startSluice(t, strings.Replace(submissionConfig(addr, "starttls", cert), "    limits: {tarpit: 0s}\n",
		"    limits: {tarpit: 0s}\n    protocol_log: true\n", 1), listen(addr))

	r := swaks(t, addr, "--from", "sharepoint@contoso.com", "--to", "bob@contoso.com", "--helo", "sp2016")
	r.want(t, "530 5.7.57")

	// The protocol log has the conversation: what was advertised, what was refused.
	var log string
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(log, "530 5.7.57") {
		if time.Now().After(deadline) {
			t.Fatalf("protocol log never showed the 530:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
		files, _ := filepath.Glob(filepath.Join(s.dataDir, "protocol", "receive-*.log"))
		log = ""
		for _, f := range files {
			b, _ := os.ReadFile(f)
			log += string(b)
		}
	}
	for _, want := range []string{"Client submission", "<,EHLO sp2016", "STARTTLS", "<,MAIL FROM:<sharepoint@contoso.com>"} {
		if !strings.Contains(log, want) {
			t.Errorf("protocol log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, ">,250-AUTH") || strings.Contains(log, ">,250 AUTH") {
		t.Errorf("AUTH advertised before STARTTLS?\n%s", log)
	}

	// test connect shows the same, and says what to do.
	tc := runClient(t, nil, sluiceBin, "test", "connect", addr)
	tc.want(t, "Banner:", "STARTTLS", "AUTH:         none offered", "AUTH is not offered before TLS")
	tc = runClient(t, nil, sluiceBin, "test", "connect", addr, "--starttls", "--servername", "relay.test", "--ca-file", cert.CAFile)
	tc.want(t, "TLS:          TLS 1.3", "verifies for relay.test", "AUTH:         PLAIN LOGIN")
	tc = runClient(t, []byte(testPassword+"\n"), sluiceBin, "test", "connect", addr, "--starttls", "--auth", testUser, "--mechanism", "LOGIN")
	tc.want(t, "Login:        OK as "+testUser)
	tc.wantNot(t, testPassword)
}

// Seed 002: a farm node holds a different application credential key than
// the one the config's secrets were encrypted with.
func TestSeedWrongCredentialKey(t *testing.T) {
	dir := t.TempDir()
	keyA := filepath.Join(dir, "node1.key")
	keyB := filepath.Join(dir, "node2.key")
	os.WriteFile(keyA, []byte("node-one-application-credential-key\n"), 0o600)
	os.WriteFile(keyB, []byte("node-two-has-another-key-entirely\n"), 0o600)
	enc := runClient(t, []byte("smtp-password\n"), sluiceBin, "secret", "encrypt", "--key-file", keyA)
	enc.wantExit(t, true)
	value := strings.TrimSpace(strings.Split(enc.out, "\n")[0])
	keyID := strings.Split(value, ":")[2]

	cfg := func(key string) string {
		p := filepath.Join(dir, "sluice.yaml")
		os.WriteFile(p, []byte(fmt.Sprintf(`node: {hostname: relay.test, data_dir: %s}
receive_connectors: [{name: A, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
secrets: {key_file: %s, key_id: %s}
send_connectors:
  - name: Exchange
    address_spaces: ["*"]
    smarthosts: [exch1.contoso.com]
    tls: {mode: verify}
    auth: {mechanism: LOGIN, username: relay@contoso.com, password: "%s"}
admin: {listen: "off"}
`, filepath.Join(dir, "data"), key, keyID, value)), 0o600)
		return p
	}
	good := runClient(t, nil, sluiceBin, "secret", "check", "-config", cfg(keyA))
	good.wantExit(t, true)
	good.want(t, "decrypts with this node's key")

	path := cfg(keyB)
	check := runClient(t, nil, sluiceBin, "config", "check", path)
	check.wantExit(t, false)
	check.want(t, "secrets.key_id", "encrypted with key "+keyID, "cannot retrieve the upstream credentials")
	h := runClient(t, nil, sluiceBin, "health", "-config", path, "--offline")
	h.wantExit(t, false)
	h.want(t, "ERROR", "SECRET-KEY", "copy the key file from the node that encrypted them")
	sc := runClient(t, nil, sluiceBin, "secret", "check", "-config", path)
	sc.wantExit(t, false)
	sc.want(t, "but the config's secrets were encrypted with key "+keyID)
}

// Seed 003: a send connector's client certificate is missing. Sluice will
// not start with such a config (config check names the key), refuses it on
// reload, and when the file disappears under a running Sluice, health says
// so before a queue gets stuck.
func TestSeedMissingClientCertificate(t *testing.T) {
	client := certtest.New(t, "relay.test")
	missing := filepath.Join(t.TempDir(), "relay-client.pem")
	addr := freeAddr(t)
	body := func(cert, key string) string {
		return fmt.Sprintf(relayReceive+`send_connectors:
  - name: Exchange
    address_spaces: ["*"]
    smarthosts: ["127.0.0.1:1"]
    tls: {mode: required, client_certificate: %s, client_key: %s}
`, addr, cert, key)
	}
	s := startSluice(t, body(client.CertFile, client.KeyFile), listen(addr))

	// config check on the broken variant.
	broken := filepath.Join(s.dir, "broken.yaml")
	os.WriteFile(broken, []byte(s.configText(body(missing, client.KeyFile))), 0o600)
	r := runClient(t, nil, sluiceBin, "config", "check", broken)
	r.wantExit(t, false)
	r.want(t, "send_connectors[0].tls.client_certificate", missing)

	// Reload with it: refused, the running config kept.
	s.writeConfig(body(missing, client.KeyFile))
	s.signal(syscallHUP)
	s.waitLog("reload refused")
	s.writeConfig(body(client.CertFile, client.KeyFile)) // the file as it was: the admin API's address is in it

	// The file vanishes under the running Sluice: health finds it.
	if err := os.Remove(client.CertFile); err != nil {
		t.Fatal(err)
	}
	h := runClient(t, nil, sluiceBin, "health", "-config", s.config)
	h.wantExit(t, false)
	h.want(t, "CERT-MISSING", "send connector Exchange (client certificate)", client.CertFile)
}

// Seed 004: an application relays to a domain that is not accepted from a
// connector without the relay right: 550 5.7.54, and the tracking log has it.
func TestSeedRelayToNonAcceptedDomain(t *testing.T) {
	addr := freeAddr(t)
	s := startSluice(t, fmt.Sprintf(`accepted_domains:
  - domain: contoso.com
receive_connectors:
  - name: Default
    bindings: ["%s"]
    remote_ip_ranges: [127.0.0.0/8]
    permissions: [anonymous, accept-any-sender]   # the ERP sends as erp@contoso.com
    limits: {tarpit: 0s}
`, addr), listen(addr))
	r := swaks(t, addr, "--from", "erp@contoso.com", "--to", "customer@fabrikam.example")
	r.want(t, "550 5.7.54 Unable to relay recipient in non-accepted domain")

	var out string
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(out, "5.7.54") {
		if time.Now().After(deadline) {
			t.Fatalf("sluice track never showed the 5.7.54:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond) // the tracking log is flushed every 200 ms
		out = runClient(t, nil, sluiceBin, "track", "-config", s.config, "--recipient", "customer@fabrikam.example").out
	}
	for _, want := range []string{"FAIL", "customer@fabrikam.example", "Default", "127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("sluice track lacks %q:\n%s", want, out)
		}
	}
}

// Seed 003, the end of it: once the certificate reference is corrected and
// the transport restarted, "the queues should have started to empty". In
// Sluice the restart is a reload; a queue whose next hop was failing is
// tried again at once with the new settings, not at its next retry an
// hour later.
func TestSeedReloadRetriesFailingQueue(t *testing.T) {
	cert := certtest.New(t, "exch1.contoso.com")
	up := smtptest.NewServer(t, smtptest.Options{TLS: cert, RequireTLS: true})
	addr := freeAddr(t)
	body := func(tls string) string {
		return fmt.Sprintf(relayReceive+`send_connectors:
  - name: Exchange
    address_spaces: ["*"]
    smarthosts: ["%s"]
    tls: {%s}
    retry: {first: 1h}
`, addr, up.Addr(), tls)
	}
	s := startSluice(t, body("mode: verify, ca_file: "+cert.CAFile), listen(addr))
	mustSend(t, addr, "app@contoso.com", []string{"bob@fabrikam.com"}, "stuck behind a certificate error")
	s.waitQueue("Exchange", "Retry with the certificate error", func(q queue.QueueInfo) bool {
		return q.Status == queue.HopRetry && strings.Contains(q.LastError, "not valid for send connector")
	})

	// The fix: the name the upstream's certificate carries. Then reload.
	s.writeConfig(body("mode: verify, ca_file: " + cert.CAFile + ", server_name: exch1.contoso.com"))
	r := runClient(t, nil, sluiceBin, "reload", "-config", s.config)
	r.wantExit(t, true)
	msgs := up.WaitMessages(t, 1)
	if got := subjects(msgs); len(got) != 1 || got[0] != "stuck behind a certificate error" {
		t.Fatalf("upstream got %v", got)
	}
}

// Seed 000: SharePoint sends as the user who shared, to a distribution
// group that accepts only authenticated senders. Exchange refuses Sluice's
// anonymous delivery for that group alone. The notice must lead out of the
// seed's catch-22: logging the send connector in makes Exchange check Send
// As for every user (the seed's failed attempt); what worked is an
// Externally Secured receive connector for the relay's address.
func TestSeedGroupRequiresAuthenticatedSender(t *testing.T) {
	const refusal = "550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; authentication required; " +
		"Delivery restriction check failed because the sender was not authenticated when sending to this group"
	up := smtptest.NewServer(t, smtptest.Options{Replies: map[string]string{"all-staff@contoso.com": refusal}})
	addr := freeAddr(t)
	s := startSluice(t, fmt.Sprintf(relayReceive+`send_connectors:
  - name: Exchange
    address_spaces: [contoso.com]
    smarthosts: ["%s"]
    tls: {mode: none}
  - {name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}
`, addr, up.Addr()), listen(addr))
	mustSend(t, addr, "alice@sharepoint.example", []string{"all-staff@contoso.com"}, "shared with you")

	d := waitMessage(t, s.dropDir, "alice@sharepoint.example")
	text := strings.Join(strings.Fields(string(d.msg)), " ")
	for _, want := range []string{"5.7.133", "only accepts mail from authenticated senders", "Externally Secured"} {
		if !strings.Contains(text, want) {
			t.Errorf("the notice lacks %q:\n%s", want, d.msg)
		}
	}
	if strings.Contains(text, "configure AUTH on the send connector") {
		t.Errorf("the notice sends the admin into the catch-22 (AUTH, then Send As for every user):\n%s", d.msg)
	}
}

// Seed 002's Exchange Online bonus, after Microsoft turned basic SMTP AUTH
// off: a send connector that logs in to smtp.office365.com with a password
// is a warning in health before the first message is refused with
// 535 5.7.139, with the way out (XOAUTH2).
func TestSeedBasicAuthToMicrosoft365(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`node: {hostname: relay.test, data_dir: %s}
receive_connectors: [{name: A, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
admin: {listen: "off"}
send_connectors:
  - name: Office 365
    preset: microsoft365
    address_spaces: ["*"]
    auth: {mechanism: LOGIN, username: sp-farm@contoso.com, password: "Passw0rd!"}
`, filepath.Join(dir, "data"))), 0o600)
	h := runClient(t, nil, sluiceBin, "health", "-config", path, "--offline")
	h.wantExit(t, true) // a warning: nothing is refused yet
	h.want(t, "WARNING", "UPSTREAM-AUTH", "send connector Office 365", "basic authentication", "XOAUTH2")
}
