package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGolden loads every testdata/config/*.yaml and compares what
// `sluice config check` would print with the .golden file beside it.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/config/*.yaml")
	if len(files) == 0 {
		t.Fatal("no test configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			got := "OK\n"
			if _, err := Load(f); err != nil {
				got = err.Error() + "\n"
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("config check output differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load("testdata/config/nope.yaml")
	if err == nil || !strings.Contains(err.Error(), "testdata/config/nope.yaml: cannot read config: no such file or directory") {
		t.Fatalf("got %v", err)
	}
}

func TestDefault(t *testing.T) {
	cfg, err := LoadDefault()
	if err != nil {
		t.Fatalf("the embedded default does not load: %v", err)
	}
	rc := cfg.ReceiveConnectors[0]
	if got := rc.Bindings[0].String(); got != "127.0.0.1:2525" {
		t.Errorf("default binding %s, want 127.0.0.1:2525 (the README quickstart says so)", got)
	}
	if rc.Limits != defaultLimits {
		t.Errorf("default limits %+v, want Exchange's %+v", rc.Limits, defaultLimits)
	}
	sc := cfg.SendConnector("example.net")
	if sc == nil || sc.Delivery != DeliveryDirectory {
		t.Fatalf("the default does not deliver everything to a directory: %+v", sc)
	}
	if !filepath.IsAbs(sc.Directory) || !strings.HasSuffix(sc.Directory, filepath.Join("sluice-data", "drop")) {
		t.Errorf("drop directory %q, want an absolute path ending in sluice-data/drop", sc.Directory)
	}
}

func TestExchangeDefaults(t *testing.T) {
	want := map[string]any{
		"max message size 36 MB":    defaultLimits.MaxMessageSize == 36<<20,
		"200 recipients":            defaultLimits.MaxRecipients == 200,
		"20 connections per IP":     defaultLimits.MaxConnectionsPerIP == 20,
		"tarpit 5 s":                defaultLimits.Tarpit.D().Seconds() == 5,
		"max header size 256 KB":    defaultLimits.MaxHeaderSize == 256<<10,
		"5000 connections":          defaultLimits.MaxConnections == 5000,
		"5 minutes idle (RFC 5321)": defaultLimits.IdleTimeout.D().Minutes() == 5,
		"10 minutes for DATA":       defaultLimits.DataTimeout.D().Minutes() == 10,
	}
	for name, ok := range want {
		if ok != true {
			t.Errorf("default limit: %s does not hold", name)
		}
	}
}

func TestValues(t *testing.T) {
	sizes := map[string]Size{"36MB": 36 << 20, "512kb": 512 << 10, "1 GB": 1 << 30, "1000": 1000, "10B": 10}
	for in, want := range sizes {
		var s Size
		if err := s.setScalar(in); err != nil || s != want {
			t.Errorf("Size %q = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, bad := range []string{"", "MB", "-1MB", "1.5MB", "99999999999999999999"} {
		var s Size
		if err := s.setScalar(bad); err == nil {
			t.Errorf("Size %q accepted", bad)
		}
	}
	var d Duration
	if err := d.setScalar("2d"); err != nil || d.D().Hours() != 48 {
		t.Errorf("Duration 2d = %v, %v", d, err)
	}
	// Days beyond time.Duration's 292 years wrapped around to a negative
	// or, worse, a small positive duration that loaded silently.
	for _, bad := range []string{"106752d", "213504d", "999999d", "-1d", "1.5d", "3000000h"} {
		var d Duration
		if err := d.setScalar(bad); err == nil {
			t.Errorf("Duration %q accepted as %v", bad, d)
		}
	}
	// Clients are matched by their IPv4 address (unmapped), so a range
	// written IPv4-mapped must become the IPv4 range, or it never matches.
	for in, want := range map[string]string{"::ffff:10.0.0.1": "10.0.0.1/32", "::ffff:10.0.0.0/104": "10.0.0.0/8",
		"::ffff:127.0.0.1/128": "127.0.0.1/32", "::ffff:0.0.0.0/96": "0.0.0.0/0"} {
		var c CIDR
		if err := c.setScalar(in); err != nil || c.String() != want {
			t.Errorf("CIDR %s = %v, %v; want %s", in, c, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/config/*.yaml")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Add(Default())
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse("fuzz.yaml", src)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("error without text")
		}
	})
}

// TestZeroAsWritten: a 0 the admin writes is kept, not replaced with the
// default as if the key were missing. retention: 0 keeps log files for
// ever (what tracking and protolog do with 0); it used to become 30 days,
// deleting logs someone had asked to keep.
func TestZeroAsWritten(t *testing.T) {
	const base = `receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.0/8], permissions: [anonymous]}
send_connectors:
  - {name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}
`
	cfg, err := Parse("zero.yaml", []byte(base+`logs: {tracking: {retention: 0}, protocol_retention: 0d}
health: {queue_backlog: 0, hop_failing_for: 0s, certificate_expiry: 0d}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := []any{cfg.Logs.Tracking.Retention, cfg.Logs.ProtocolRetention, cfg.Health.QueueBacklog, cfg.Health.HopFailingFor, cfg.Health.CertificateExpiry}; fmt.Sprint(got) != "[0s 0s 0 0s 0s]" {
		t.Errorf("written zeros became %v", got)
	}
	// A key with no value keeps the default, like a key left out.
	cfg, err = Parse("defaults.yaml", []byte(base+`logs: {tracking: {retention: }, protocol_retention: ~}
health:
  queue_backlog:
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := []any{cfg.Logs.Tracking.Retention, cfg.Logs.ProtocolRetention, cfg.Health.QueueBacklog, cfg.Health.HopFailingFor, cfg.Health.CertificateExpiry}; fmt.Sprint(got) != "[720h0m0s 720h0m0s 1000 30m0s 720h0m0s]" {
		t.Errorf("defaults are %v", got)
	}
}

// TestSyntaxHints: a YAML syntax error says what to change, for the
// mistakes admins make: a tab (YAML allows none for indentation), a key
// given twice, a Windows path in double quotes, ": " in a plain value.
func TestSyntaxHints(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"tab", "node:\n\thostname: relay.contoso.com\n",
			"s.yaml:2: YAML syntax: a tab; YAML indents with spaces only: replace the tab with spaces"},
		{"key twice", "receive_connectors:\n  - name: A\n    permissions: [anonymous]\n    permissions: [relay]\n",
			`s.yaml:4: YAML syntax: "permissions" is given twice here (also on line 3); keep one`},
		{"section twice", "node: {hostname: relay.contoso.com}\nqueue: {}\nnode: {data_dir: /x}\n",
			`s.yaml:3: YAML syntax: "node" is given twice here (also on line 1); keep one`},
		{"Windows path in double quotes", "secrets:\n  key_file: \"C:\\sluice\\credential.key\"\n",
			`s.yaml:2: YAML syntax: found unknown escape character 's'; in double quotes \ starts an escape: write a Windows path in single quotes ('C:\sluice\relay.pem') or with / instead of \`},
		{"colon in a value", "receive_connectors:\n  - name: A\n    banner: Welcome: relay here\n",
			`s.yaml:3: YAML syntax: mapping value is not allowed in this context; put a value that holds ": " in quotes (banner: "Welcome: relay"), and check this line's indentation`},
		{"indentation", "node:\n  hostname: relay\n receive_connectors:\n",
			"s.yaml:3: YAML syntax: value is not allowed in this context; check this line's indentation against the lines above"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tc.src))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestRateLimitNone: the microsoft365 preset sets 30/m; README says
// rate_limit overrides it and that the default is none, so "none" must
// be a value that lifts the limit.
func TestRateLimitNone(t *testing.T) {
	cfg, err := Parse("rate.yaml", []byte(`receive_connectors: [{name: A, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
send_connectors:
  - name: Office 365
    preset: microsoft365
    address_spaces: ["*"]
    rate_limit: none
    auth:
      username: relay@contoso.com
      oauth2: {tenant: contoso.onmicrosoft.com, client_id: 11111111-2222-3333-4444-555555555555, client_secret: x}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.SendConnectors[0].RateLimit; r.Interval() != 0 || r.String() != "none" {
		t.Errorf("rate_limit: none gave %v", r)
	}
}

// TestDocumentMarkers: go-yaml ends the stream at an empty document, so
// "---" twice before the config dropped all of it, and a config between
// an empty document and a second one was read as one document.
func TestDocumentMarkers(t *testing.T) {
	const conf = "receive_connectors: [{name: A, bindings: [\"127.0.0.1:2525\"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]\n" +
		"send_connectors: [{name: Drop, address_spaces: [\"*\"], delivery: directory, directory: drop}]\n"
	for _, tc := range []struct{ name, src, want string }{
		{"markers before", "---\n---\n" + conf, ""},
		{"marker with comment before", "--- # sluice\n# generated\n---\n" + conf, ""},
		{"CRLF", strings.ReplaceAll("---\n\n---\n"+conf+"---\n", "\n", "\r\n"), ""},
		{"empty documents after", conf + "---\n# old\n---\n", ""},
		{"second config after an empty document", conf + "---\n---\nnode: {hostname: b.contoso.com}\n", "d.yaml:5: the file has more than one YAML document (--- starts another); keep one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("d.yaml", []byte(tc.src))
			if got := fmt.Sprint(err); tc.want == "" && err != nil || tc.want != "" && got != tc.want {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestDNSServers: what the MX resolver dials, port 53 when none is given.
func TestDNSServers(t *testing.T) {
	cfg, err := Parse("", []byte(`node:
  dns_servers: [10.0.0.2, "10.0.0.3:5353", "[2001:db8::53]:53", "2001:db8::54", "::ffff:10.0.0.4"]
receive_connectors: [{name: A, bindings: ["127.0.0.1:2525"], remote_ip_ranges: [127.0.0.1], permissions: [anonymous]}]
send_connectors: [{name: Drop, address_spaces: ["*"], directory: drop}]
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range cfg.Node.DNSServers {
		got = append(got, d.String())
	}
	want := "10.0.0.2:53 10.0.0.3:5353 [2001:db8::53]:53 [2001:db8::54]:53 10.0.0.4:53"
	if strings.Join(got, " ") != want {
		t.Errorf("dns_servers %q, want %q", strings.Join(got, " "), want)
	}
}
