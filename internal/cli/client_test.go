package cli

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/testport"
)

// A scheme-less --admin is plain HTTP only on loopback; anywhere else
// it is HTTPS, as the admin API is there.
func TestAdminBase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:8025", "http://127.0.0.1:8025"},
		{"127.9.0.1:8025/", "http://127.9.0.1:8025"},
		{"localhost:8025", "http://localhost:8025"},
		{"LocalHost.:8025", "http://LocalHost.:8025"},
		{"[::1]:8025", "http://[::1]:8025"},
		{"[::ffff:127.0.0.1]:8025", "http://[::ffff:127.0.0.1]:8025"},
		{"relay1.contoso.com:8025", "https://relay1.contoso.com:8025"},
		{"10.0.0.5:8025", "https://10.0.0.5:8025"},
		{"[2001:db8::1]:8025", "https://[2001:db8::1]:8025"},
		{"localhost.contoso.com:8025", "https://localhost.contoso.com:8025"},
		{"127.0.0.1.nip.io:8025", "https://127.0.0.1.nip.io:8025"},
		{" http://relay1:8025/ ", "http://relay1:8025"}, // a scheme given is kept: the token check refuses it
		{"https://127.0.0.1:8025", "https://127.0.0.1:8025"},
	} {
		got, err := adminBase(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("adminBase(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := adminBase("ftp://relay1:8025"); err == nil || !strings.Contains(err.Error(), "e.g. https://") {
		t.Errorf("adminBase(ftp://...) = %v; want an error giving an example", err)
	}
}

// The token goes over HTTPS anywhere, over plain HTTP only to loopback.
func TestTokenSafe(t *testing.T) {
	for u, want := range map[string]bool{
		"https://relay1.contoso.com:8025": true,
		"https://10.0.0.5:8025":           true,
		"http://127.0.0.1:8025":           true,
		"http://127.200.0.1:8025":         true,
		"http://[::1]:8025":               true,
		"http://localhost:8025":           true,
		"http://relay1.contoso.com:8025":  false,
		"http://10.0.0.5:8025":            false,
		"http://0.0.0.0:8025":             false,
		"http://localhost.evil.example":   false,
		"http://[::ffff:10.0.0.5]:8025":   false,
	} {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		if got := tokenSafe(pu); got != want {
			t.Errorf("tokenSafe(%s) = %v; want %v", u, got, want)
		}
	}
}

// recorder is a plain HTTP admin API stand-in on loopback that notes
// each request's Authorization header.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	auth []string
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("[]"))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auth...)
}

// clientFor is the admin API client of a command line (-config, --admin,
// --token-file, ...), its connections all going to dial, whatever host
// the URL names: so a name off loopback reaches the test's server.
func clientFor(t *testing.T, dial string, args ...string) *apiClient {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	af := addAPIFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	c, err := af.client()
	if err != nil {
		t.Fatal(err)
	}
	c.http.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, dial)
	}
	return c
}

// The token never crosses a network in clear. Before, --admin
// relay1:8025 became http://relay1:8025 and the token went out in clear
// before the answer showed that the node speaks HTTPS.
func TestTokenNotSentInClear(t *testing.T) {
	t.Setenv("SLUICE_ADMIN", "")
	t.Setenv("SLUICE_ADMIN_TOKEN", "")
	tokenFile := writeFile(t, t.TempDir(), "token", "s3cret-token\n")
	srv := newRecorder(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	remote := net.JoinHostPort("relay1.test", port)

	// To a host off loopback: http:// given is refused before any
	// request; scheme-less is HTTPS, which this plain server cannot
	// answer. Neither request reaches it.
	for _, admin := range []string{"http://" + remote, remote} {
		c := clientFor(t, srv.Listener.Addr().String(), "--admin", admin, "--token-file", tokenFile)
		err := c.call(context.Background(), http.MethodGet, "/api/v1/queues", nil, nil, nil)
		if err == nil {
			t.Errorf("--admin %s: no error", admin)
		}
		if admin == remote && c.base != "https://"+remote {
			t.Errorf("--admin %s: base %s; want https://", admin, c.base)
		}
		if admin != remote && (err == nil || !strings.Contains(err.Error(), "use --admin https://"+remote)) {
			t.Errorf("--admin %s: %v; want a refusal saying to use https://", admin, err)
		}
		if got := srv.seen(); len(got) != 0 {
			t.Fatalf("--admin %s: the server got requests with Authorization %q", admin, got)
		}
	}

	// Without a token nothing is at stake: plain HTTP off loopback is
	// still allowed (a proxy in front of a loopback API, say).
	c := clientFor(t, srv.Listener.Addr().String(), "--admin", "http://"+remote)
	if err := c.call(context.Background(), http.MethodGet, "/api/v1/queues", nil, nil, nil); err != nil {
		t.Errorf("http:// off loopback without a token: %v", err)
	}

	// On loopback plain HTTP is fine and the token goes along, scheme
	// given or not.
	loop := srv.Listener.Addr().String()
	for _, admin := range []string{loop, "http://" + loop, "localhost:" + port} {
		_, errs, code := run(t, "", "queue", "list", "--admin", admin, "--token-file", tokenFile)
		if code != 0 {
			t.Errorf("queue list --admin %s = %d %s", admin, code, errs)
		}
	}
	got := srv.seen()
	if len(got) != 4 || got[0] != "" || got[1] != "Bearer s3cret-token" || got[3] != "Bearer s3cret-token" {
		t.Errorf("Authorization headers seen: %q; want none, then the token on loopback three times", got)
	}
}

// A redirect cannot take the token to plain HTTP off loopback: net/http
// keeps Authorization on a redirect to the same host name, https:// to
// http:// included.
func TestTokenNotRedirectedInClear(t *testing.T) {
	t.Setenv("SLUICE_ADMIN", "")
	t.Setenv("SLUICE_ADMIN_TOKEN", "s3cret-token")
	srv := newRecorder(t)
	cert := certtest.New(t, "relay1.test")
	redirect := httptest.NewUnstartedServer(http.RedirectHandler("http://relay1.test:8080/api/v1/queues", http.StatusTemporaryRedirect))
	redirect.TLS = &tls.Config{Certificates: []tls.Certificate{cert.Pair}}
	redirect.StartTLS()
	t.Cleanup(redirect.Close)
	c := clientFor(t, redirect.Listener.Addr().String(), "--admin", "https://relay1.test:8443", "--ca-file", cert.CAFile)
	c.http.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		to := map[string]string{"relay1.test:8443": redirect.Listener.Addr().String(), "relay1.test:8080": srv.Listener.Addr().String()}[addr]
		return (&net.Dialer{}).DialContext(ctx, network, to)
	}
	err := c.call(context.Background(), http.MethodGet, "/api/v1/queues", nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "redirected to http://relay1.test:8080") {
		t.Errorf("redirect to http://relay1.test:8080: %v; want a refusal", err)
	}
	if got := srv.seen(); len(got) != 0 {
		t.Errorf("the redirect target got requests with Authorization %q", got)
	}
}

// With HTTPS on a wildcard admin.listen, the CLI reaches its own node on
// 127.0.0.1 and checks the certificate for node.hostname. Before, it
// checked it for 127.0.0.1, which no certificate for the node's name
// carries ("x509: cannot validate certificate for 127.0.0.1 because it
// doesn't contain any IP SANs", even with --ca-file), and health blamed
// the admin credentials.
func TestWildcardAdminCertificate(t *testing.T) {
	t.Setenv("SLUICE_ADMIN", "")
	t.Setenv("SLUICE_ADMIN_TOKEN", "")
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "token", "s3cret-token-0123456789\n")
	node := certtest.New(t, "relay1.test")
	other := certtest.New(t, "relay2.test")
	port := testport.Free(t)
	cfgFor := func(name string, port int, c *certtest.Cert) string {
		return writeFile(t, dir, name+".yaml", fmt.Sprintf(`node: {hostname: relay1.test, data_dir: %s}
receive_connectors:
  - {name: Default, bindings: ["127.0.0.1:%d"], remote_ip_ranges: [127.0.0.0/8], permissions: [anonymous, relay]}
send_connectors:
  - {name: Drop, address_spaces: ["*"], delivery: directory, directory: drop}
admin: {listen: "0.0.0.0:%d", certificate: %s, key: %s, token_file: %s}
`, filepath.Join(dir, name), testport.Free(t), port, c.CertFile, c.KeyFile, tokenFile))
	}
	good := cfgFor("good", port, node)
	startSluice(t, good)
	wrong := cfgFor("wrong", testport.Free(t), other)
	startSluice(t, wrong)

	out, errs, code := run(t, "", "queue", "list", "-config", good, "--ca-file", node.CAFile)
	if code != 0 || !strings.Contains(out, "no queues") {
		t.Fatalf("queue list on a wildcard HTTPS admin API = %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	out, errs, code = run(t, "", "health", "-config", good, "--ca-file", node.CAFile)
	if code != 0 || strings.Contains(errs, "certificate") {
		t.Fatalf("health = %d\nstdout: %s\nstderr: %s", code, out, errs)
	}

	// Certificate problems are named as such, with what to set; not as
	// credentials.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no --ca-file", []string{"-config", good},
			"is signed by a CA this machine does not trust: give --ca-file"},
		{"a certificate for another name", []string{"-config", wrong, "--ca-file", other.CAFile},
			"is for relay2.test, not for this node's name relay1.test (node.hostname"},
		{"--admin to 127.0.0.1", []string{"--admin", fmt.Sprintf("https://127.0.0.1:%d", port), "--token-file", tokenFile, "--ca-file", node.CAFile},
			"is for relay1.test, not 127.0.0.1: give --admin https://NAME:PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range [][]string{{"queue", "list"}, {"health"}} {
				_, errs, code := run(t, "", append(cmd, tc.args...)...)
				if code != ExitFailure || !strings.Contains(errs, tc.want) || strings.Contains(errs, "credentials") {
					t.Errorf("%s = %d\n%s\nwant exit 1 and %q, not a word of credentials", cmd, code, errs, tc.want)
				}
			}
		})
	}
}
