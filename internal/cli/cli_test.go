package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/queue"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/tracking"
)

func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecretEncryptAndCheck(t *testing.T) {
	t.Setenv("SLUICE_CREDENTIAL_KEY", "")
	dir := t.TempDir()
	keyA := writeFile(t, dir, "a.key", "first-node-passphrase-0123456789\n")
	keyB := writeFile(t, dir, "b.key", "another-passphrase-9876543210\n")
	const plain = "client-secret~value.123"

	enc, info, code := run(t, plain+"\n", "secret", "encrypt", "--key-file", keyA)
	enc = strings.TrimSpace(enc)
	if code != 0 || !strings.HasPrefix(enc, "enc:v1:") || strings.Contains(enc+info, plain) {
		t.Fatalf("secret encrypt = %d %q %q", code, enc, info)
	}
	keyID := strings.Split(enc, ":")[2]
	if !strings.Contains(info, "key_id: "+keyID) {
		t.Errorf("encrypt should tell the key id for the config: %q", info)
	}

	cfg := func(keyFile string) string {
		return writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`node: {hostname: relay.test, data_dir: %s}
receive_connectors: [{name: A, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
secrets: {key_file: %s, key_id: %s}
send_connectors:
  - name: Office 365
    preset: microsoft365
    address_spaces: ["*"]
    auth:
      username: relay@contoso.com
      oauth2: {tenant: contoso.onmicrosoft.com, client_id: 11111111-2222-3333-4444-555555555555, client_secret: "%s"}
`, dir, keyFile, keyID, enc))
	}
	out, _, code := run(t, "", "secret", "check", "-config", cfg(keyA))
	if code != 0 || !strings.Contains(out, "client_secret (Office 365): decrypts") || !strings.Contains(out, "1 encrypted secret(s)") {
		t.Fatalf("secret check with the right key = %d\n%s", code, out)
	}
	out, _, code = run(t, "", "secret", "check", "-config", cfg(keyB))
	if code != 1 || !strings.Contains(out, "but the config's secrets were encrypted with key "+keyID) {
		t.Fatalf("secret check on a node with another key = %d\n%s", code, out)
	}

	if _, errs, code := run(t, "x\n", "secret", "encrypt"); code != 1 || !strings.Contains(errs, "no application credential key") {
		t.Errorf("encrypt without a key = %d %q", code, errs)
	}
}

func TestTrack(t *testing.T) {
	dir := t.TempDir()
	l, err := tracking.Open(filepath.Join(dir, "tracking"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour)
	id, other := mail.NewID(), mail.NewID()
	for i, e := range []tracking.Event{
		{Event: tracking.EventReceive, ID: id, MessageID: "<a@app>", Sender: "app@contoso.com", Recipients: []string{"bob@fabrikam.com"}, Connector: "Apps", ClientIP: "10.0.0.5", Reply: "250 2.6.0 Queued"},
		{Event: tracking.EventDefer, ID: id, Sender: "app@contoso.com", Recipients: []string{"bob@fabrikam.com"}, NextHop: "Exchange", Reply: "451 4.4.1 cannot connect to exch1:25: connection refused"},
		{Event: tracking.EventSend, ID: id, Sender: "app@contoso.com", Recipients: []string{"bob@fabrikam.com"}, NextHop: "Exchange", Host: "exch2 [10.0.0.9]", Reply: "250 2.0.0 OK"},
		{Event: tracking.EventReceive, ID: other, Sender: "x@contoso.com", Recipients: []string{"carol@fabrikam.com"}},
		{Event: tracking.EventFail, Sender: "spam@evil.example", Recipients: []string{"v@victim.example"}, Connector: "Internet", ClientIP: "203.0.113.9", Reply: "550 5.7.54 Unable to relay recipient in non-accepted domain"},
	} {
		e.Time = t0.Add(time.Duration(i) * time.Second)
		l.Record(e)
	}
	l.Close()

	out, _, code := run(t, "", "track", "--data-dir", dir, "--recipient", "BOB@fabrikam.com")
	if code != 0 {
		t.Fatalf("track = %d %s", code, out)
	}
	iRecv, iDefer, iSend := strings.Index(out, "RECEIVE"), strings.Index(out, "DEFER"), strings.Index(out, "SEND")
	if iRecv < 0 || iDefer < iRecv || iSend < iDefer || strings.Contains(out, "carol") || !strings.Contains(out, "connection refused") {
		t.Fatalf("track --recipient bob: want RECEIVE, DEFER, SEND in order and not carol's message:\n%s", out)
	}
	out, _, _ = run(t, "", "track", "--data-dir", dir, "--sender", "spam@evil.example")
	if !strings.Contains(out, "5.7.54") || !strings.Contains(out, "refused before a message was accepted") {
		t.Errorf("a refused relay should show its 5.7.54:\n%s", out)
	}
	out, _, _ = run(t, "", "track", "--data-dir", dir, "--message-id", "<a@app>", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var first tracking.Event
	if len(lines) != 3 || json.Unmarshal([]byte(lines[0]), &first) != nil || first.ID != id {
		t.Errorf("--json by Message-ID: %d lines\n%s", len(lines), out)
	}
	if out, _, _ = run(t, "", "track", "--data-dir", dir, "--sender", "app@contoso.com", "--since", "10m"); !strings.Contains(out, "no events match") {
		t.Errorf("--since 10m should exclude events an hour old:\n%s", out)
	}
	if _, errs, code := run(t, "", "track", "--data-dir", filepath.Join(dir, "nope")); code != 1 || !strings.Contains(errs, "no tracking log at") {
		t.Errorf("missing directory = %d %q", code, errs)
	}
	if _, errs, code := run(t, "", "track", "--data-dir", dir, "--since", "yesterday-ish"); code != 2 || !strings.Contains(errs, "is not a time") {
		t.Errorf("bad --since = %d %q", code, errs)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-24T10:00:00Z": time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC),
		"2h":                   now.Add(-2 * time.Hour),
		"3d":                   now.Add(-72 * time.Hour),
		"":                     {},
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	if _, errs, code := run(t, "", "config", "check", "/nonexistent.yaml", "--bogus"); code != 2 || !strings.Contains(errs, "bogus") {
		t.Errorf("an unknown flag after the argument should be a usage error: %d %q", code, errs)
	}
}

// queue show names messages whose content cannot be read, and stays
// quiet about it otherwise.
func TestPrintQueueUnreadable(t *testing.T) {
	q := queue.QueueInfo{Identity: "Exchange", Status: queue.HopReady, MessageCount: 5}
	var b bytes.Buffer
	printQueue(&b, q)
	if strings.Contains(b.String(), "Unreadable") {
		t.Errorf("Unreadable shown for a queue without such messages:\n%s", &b)
	}
	q.Unreadable, q.UnreadableError = 2, "content at 0 in 3.seg does not match its checksum"
	b.Reset()
	printQueue(&b, q)
	if !strings.Contains(b.String(), "Unreadable:     2 (content at 0 in 3.seg does not match its checksum)") {
		t.Errorf("queue show:\n%s", &b)
	}
}

// queue show says when the upstream's connection limit holds the
// sessions below max_connections.
func TestPrintQueueSessionLimit(t *testing.T) {
	for _, tc := range []struct {
		limit, max int
		want       string
	}{
		{20, 20, "SessionLimit:   20 (max_connections)\n"},
		{3, 20, "SessionLimit:   3 of max_connections 20: the upstream refused more connections; one more a minute while it refuses none\n"},
		{0, 0, ""}, // Unreachable: no send connector
	} {
		var b bytes.Buffer
		printQueue(&b, queue.QueueInfo{Identity: "Exchange", Status: queue.HopActive, SessionLimit: tc.limit, MaxConnections: tc.max})
		if got := b.String(); tc.want != "" && !strings.Contains(got, tc.want) || tc.want == "" && strings.Contains(got, "SessionLimit") {
			t.Errorf("session limit %d of %d: queue show:\n%s\nwant %q", tc.limit, tc.max, got, tc.want)
		}
	}
}

// Help for a command that does not exist is a usage error, not a
// successful help text a script would take for yes.
func TestHelpUnknownCommand(t *testing.T) {
	out, errs, code := run(t, "", "help", "queue", "nonsense")
	if code != ExitUsage || out != "" || !strings.Contains(errs, `no command "queue nonsense"`) || !strings.Contains(errs, "health") {
		t.Errorf("help queue nonsense = %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	out, _, code = run(t, "", "help", "health")
	if code != ExitOK || !strings.Contains(out, "health rules") {
		t.Errorf("help health = %d\n%s", code, out)
	}
}

// health --json has the API's shape offline too: findings is a list,
// empty when there are none (jq '.findings[]' fails on null).
func TestHealthOfflineJSONFindingsList(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "sluice.yaml", fmt.Sprintf(`node: {hostname: relay.test, data_dir: %s}
receive_connectors: [{name: A, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
send_connectors: [{name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}]
queue: {min_free_space: 1KB}
`, dir))
	out, errs, code := run(t, "", "health", "--offline", "--json", "-config", cfg)
	var rep struct {
		Status   string            `json:"status"`
		Findings *[]map[string]any `json:"findings"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Findings == nil || len(*rep.Findings) != 0 {
		t.Errorf("health --offline --json of a good config = %d\n%s\n%s", code, out, errs)
	}
}

// secret check of a config it cannot read says why, not that the file
// has "problems other than secrets".
func TestSecretCheckMissingConfig(t *testing.T) {
	out, _, code := run(t, "", "secret", "check", "-config", filepath.Join(t.TempDir(), "nope.yaml"))
	if code != 1 || !strings.Contains(out, "no such file") {
		t.Errorf("secret check of a missing file = %d\n%s", code, out)
	}
}

// A command group typed alone names its subcommands instead of saying
// the group is an unknown command.
func TestGroupWithoutSubcommand(t *testing.T) {
	out, errs, code := run(t, "", "queue")
	if code != ExitUsage || out != "" || !strings.Contains(errs, "give one of list, show, retry, suspend, resume") {
		t.Errorf("sluice queue = %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if _, errs, code := run(t, "", "nonsense"); code != ExitUsage || !strings.Contains(errs, `unknown command "nonsense"`) {
		t.Errorf("sluice nonsense = %d, %s", code, errs)
	}
}

// TestConfigCheckFlag: every other command that reads the config takes
// -config FILE, so admins type it here too; it used to be a usage error.
func TestConfigCheckFlag(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "sluice.yaml", `receive_connectors: [{name: A, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
send_connectors: [{name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}]
`)
	for _, args := range [][]string{{path}, {"-config", path}, {"--config", path}} {
		out, errs, code := run(t, "", append([]string{"config", "check"}, args...)...)
		if code != 0 || !strings.Contains(out, path+": OK") {
			t.Errorf("config check %q = %d %q %q", args, code, out, errs)
		}
	}
	for _, args := range [][]string{{}, {"-config", path, path}} {
		if _, errs, code := run(t, "", append([]string{"config", "check"}, args...)...); code != 2 {
			t.Errorf("config check %q = %d %q; want a usage error", args, code, errs)
		}
	}
}
