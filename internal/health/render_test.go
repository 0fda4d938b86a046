package health_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/delivery"
	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/token"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
	}
}

// A relay in trouble: what an admin reads in sluice health.
func TestRender(t *testing.T) {
	now := time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)
	cfg := load(t, `node: {hostname: relay.contoso.com, data_dir: /var/lib/sluice}
receive_connectors:
  - {name: Apps, bindings: ["0.0.0.0:25"], remote_ip_ranges: [10.0.0.0/8], permissions: [anonymous, relay]}
  - {name: Old devices, bindings: ["0.0.0.0:2525"], remote_ip_ranges: [0.0.0.0/0], permissions: [anonymous, relay]}
`+upstreamConnectors)
	in := health.Input{
		Config: cfg,
		Now:    now,
		Queues: []queue.QueueInfo{
			{Identity: "Exchange", Connector: "Exchange", NextHop: "exch1.contoso.com:25, exch2.contoso.com:25", Status: queue.HopRetry,
				MessageCount: 1250, RetryCount: 6, OldestMessage: now.Add(-95 * time.Minute), NextRetryTime: now.Add(10 * time.Minute),
				LastError: "exch1.contoso.com:25 said: 454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could not be found"},
			{Identity: "Internet/fabrikam.example", Connector: "Internet", NextHop: "fabrikam.example", Status: queue.HopRetry,
				MessageCount: 2, RetryCount: 1, OldestMessage: now.Add(-3 * time.Minute), NextRetryTime: now.Add(time.Minute),
				LastError: "mx1.fabrikam.example:25 said: 451 4.7.1 Greylisted, please try again later"},
		},
		Hosts: []delivery.HostHealth{{Host: "smtp.office365.com:587", Failures: 2, LastFailure: now.Add(-time.Minute),
			LastError: "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [AM0PR02CA0001.eurprd02.prod.outlook.com]"}},
		Tokens: map[string]token.Status{"Office 365 OAuth": {LastFetch: now.Add(-time.Minute),
			LastError: "token endpoint login.microsoftonline.com: invalid_client: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '11111111-2222-3333-4444-555555555555'. (HTTP 401)"}},
		FreeSpace: func(string) (int64, error) { return 150 << 20, nil },
	}
	var b bytes.Buffer
	health.Render(&b, health.Evaluate(in))
	golden(t, "render.golden", b.Bytes())

	b.Reset()
	health.Render(&b, nil)
	if b.String() != "healthy: no findings\n" {
		t.Errorf("no findings: %q", b.String())
	}
}

func TestEvaluateOrder(t *testing.T) {
	fs := health.Evaluate(health.Input{Config: load(t, minimal+"queue: {min_free_space: 100MB}\n"), Now: time.Now(),
		FreeSpace: func(string) (int64, error) { return 150 << 20, nil }, // warning
		Queues: []queue.QueueInfo{{Identity: "Drop", Status: queue.HopRetry, MessageCount: 1, RetryCount: 1, // info
			OldestMessage: time.Now().Add(-time.Minute), LastError: "cannot write drop/x.eml: permission denied"}},
		Tokens: map[string]token.Status{"Office 365": {LastError: "invalid_client"}}, // error
	})
	var got []health.Severity
	for _, f := range fs {
		got = append(got, f.Severity)
	}
	if len(got) != 3 || got[0] != health.Error || got[1] != health.Warning || got[2] != health.Info {
		t.Errorf("want error, warning, info; got %v", got)
	}
}

func TestWorst(t *testing.T) {
	f := func(s health.Severity) health.Finding { return health.Finding{Severity: s} }
	for _, c := range []struct {
		fs   []health.Finding
		want health.Severity
	}{
		{nil, health.Healthy},
		{[]health.Finding{f(health.Info)}, health.Healthy},
		{[]health.Finding{f(health.Info), f(health.Warning)}, health.Warning},
		{[]health.Finding{f(health.Warning), f(health.Error), f(health.Info)}, health.Error},
	} {
		if got := health.Worst(c.fs); got != c.want {
			t.Errorf("Worst(%v) = %s, want %s", c.fs, got, c.want)
		}
	}
}
