package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/admin"
	"github.com/sluice-relay/sluice/internal/config"
)

// apiFlags are the flags of every command that talks to the running
// daemon through its admin API.
type apiFlags struct {
	config    *string
	admin     *string
	tokenFile *string
	caFile    *string
	certFile  *string
	keyFile   *string
	json      *bool
}

func addAPIFlags(fs *flag.FlagSet) *apiFlags {
	return &apiFlags{
		config:    fs.String("config", "", "config `FILE` of the running Sluice (for admin.listen and admin.token_file); default: the embedded default"),
		admin:     fs.String("admin", os.Getenv("SLUICE_ADMIN"), "admin API `URL` (e.g. https://relay1:8025; without a scheme, http:// on loopback, else https://); default: from the config, or $SLUICE_ADMIN"),
		tokenFile: fs.String("token-file", "", "`FILE` holding the admin bearer token; default: admin.token_file, or $SLUICE_ADMIN_TOKEN"),
		caFile:    fs.String("ca-file", "", "CA `FILE` to verify the admin API's certificate"),
		certFile:  fs.String("cert", "", "client certificate `FILE` for an admin API with client_ca"),
		keyFile:   fs.String("key", "", "client key `FILE`"),
		json:      fs.Bool("json", false, "print JSON instead of a table"),
	}
}

// apiClient talks to one running Sluice.
type apiClient struct {
	base  string
	token string
	http  *http.Client
	// serverName is the name the admin API's certificate is checked
	// for when it is not base's host: node.hostname, for a wildcard
	// admin.listen reached on 127.0.0.1.
	serverName string
}

func (f *apiFlags) client() (*apiClient, error) {
	c := &apiClient{http: &http.Client{Timeout: 30 * time.Second}}
	var cfg *config.Config
	var err error
	if *f.config != "" {
		// A config with problems still says where the admin API is: the
		// daemon may run an older, good version of it.
		cfg, err = config.LoadLenient(*f.config)
	} else {
		cfg, err = config.LoadDefault()
	}
	if cfg == nil || (err != nil && cfg.Admin.Listen != "off" && !cfg.Admin.Addr.IsValid()) {
		if *f.admin == "" {
			return nil, fmt.Errorf("cannot read the config to find the admin API (%v); give --admin URL", err)
		}
	}
	tlsCfg := &tls.Config{}
	switch {
	case *f.admin != "":
		if c.base, err = adminBase(*f.admin); err != nil {
			return nil, err
		}
	case cfg.Admin.Off():
		return nil, &adminOffError{dataDir: cfg.Node.DataDir}
	default:
		host := cfg.Admin.Addr
		scheme := "http"
		if cfg.Admin.Certificate != "" {
			scheme = "https"
		}
		addr := host.String()
		if host.Addr().IsUnspecified() {
			addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(host.Port()))
			if scheme == "https" {
				// The certificate names the node, not 127.0.0.1: check
				// it for node.hostname, as a client elsewhere would.
				tlsCfg.ServerName = cfg.Node.Hostname
				c.serverName = cfg.Node.Hostname
			}
		}
		c.base = scheme + "://" + addr
	}
	tokenFile := *f.tokenFile
	if tokenFile == "" && cfg != nil {
		tokenFile = cfg.Admin.TokenFile
	}
	switch {
	case tokenFile != "":
		tok, err := config.ReadToken(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		c.token = tok
	default:
		c.token = os.Getenv("SLUICE_ADMIN_TOKEN")
	}
	if *f.caFile != "" {
		pem, err := os.ReadFile(*f.caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tlsCfg.RootCAs = pool
	}
	if *f.certFile != "" {
		pair, err := tls.LoadX509KeyPair(*f.certFile, *f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{pair}
	}
	c.http.Transport = &http.Transport{TLSClientConfig: tlsCfg}
	c.http.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		// net/http keeps the Authorization header on a redirect to the
		// same host, https:// to http:// included.
		if c.token != "" && !tokenSafe(req.URL) {
			return &clearTextError{base: req.URL.Scheme + "://" + req.URL.Host, redirect: true}
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return c, nil
}

// adminBase is the base URL for --admin. Without a scheme it is https://,
// as the admin API is off loopback (the config demands it), except on
// loopback, where it is plain HTTP unless admin.certificate is set: a
// scheme-less address to a remote node once sent the token in clear
// before the answer showed the node speaks HTTPS.
func adminBase(given string) (string, error) {
	base := strings.TrimRight(strings.TrimSpace(given), "/")
	if !strings.Contains(base, "://") {
		scheme := "https"
		if u, err := url.Parse("//" + base); err == nil && admin.LoopbackHost(u.Hostname()) {
			scheme = "http"
		}
		base = scheme + "://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("--admin %q is not the admin API's address: give e.g. https://relay1.contoso.com:8025, or 127.0.0.1:8025 on the node itself", given)
	}
	return base, nil
}

// tokenSafe reports whether the bearer token may be sent to u: over
// HTTPS, or over plain HTTP only to loopback, where it never crosses a
// network.
func tokenSafe(u *url.URL) bool {
	return u.Scheme == "https" || u.Scheme == "http" && admin.LoopbackHost(u.Hostname())
}

// clearTextError: the CLI refused to send its token over plain HTTP to a
// host off loopback.
type clearTextError struct {
	base     string
	redirect bool
}

func (e *clearTextError) Error() string {
	how := "the admin API at " + e.base + " is plain HTTP"
	if e.redirect {
		how = "the admin API redirected to " + e.base + ", plain HTTP"
	}
	return fmt.Sprintf("%s off loopback: the admin token is not sent there in clear text; use --admin https://%s (off loopback Sluice's admin API speaks HTTPS)",
		how, strings.TrimPrefix(e.base, "http://"))
}

// adminOffError: the config switches the admin API off, so no command
// can ask the daemon; dataDir is where its pid is, for a signal.
type adminOffError struct{ dataDir string }

func (e *adminOffError) Error() string {
	return "the admin API is off in this config (admin.listen: off); the daemon cannot be asked"
}

// apiError is the admin API's own refusal, its message meant for people.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// unreachableError: no Sluice answers at the admin API's address, as
// against one that answered with an error.
type unreachableError struct {
	base string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach Sluice's admin API at %s: is 'sluice serve' running with this config? (%v)", e.base, e.err)
}

// call does one request; out, when not nil, receives the JSON answer.
func (c *apiClient) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		if !tokenSafe(req.URL) {
			return &clearTextError{base: c.base}
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return &unreachableError{base: c.base, err: op.Err}
		}
		var clear *clearTextError
		if errors.As(err, &clear) {
			return clear
		}
		return c.explain(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			// The message may quote what a client or upstream said.
			return &apiError{status: resp.StatusCode, msg: display(e.Error)}
		}
		if strings.HasPrefix(c.base, "http://") && strings.Contains(string(b), "HTTP request to an HTTPS server") {
			return fmt.Errorf("the admin API at %s speaks HTTPS (admin.certificate is set): use --admin https://%s", c.base, strings.TrimPrefix(c.base, "http://"))
		}
		// Whatever answers at --admin wrote this, not necessarily Sluice.
		return fmt.Errorf("admin API: %s: %s", display(resp.Status), display(strings.TrimSpace(string(b))))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("admin API answered something unexpected: %w", err)
		}
	}
	return nil
}

// explain turns a request that failed after connecting into what to
// check: net/http's own words ("malformed HTTP status code") name no
// setting the admin can change.
func (c *apiClient) explain(err error) error {
	if ce := c.certProblem(err); ce != nil {
		return ce
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "server gave HTTP response to HTTPS client") && c.loopback():
		return fmt.Errorf("the admin API at %s speaks plain HTTP, not HTTPS (admin.certificate is not set): use --admin http://%s", c.base, strings.TrimPrefix(c.base, "https://"))
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("the admin API at %s speaks plain HTTP, not HTTPS: off loopback Sluice's admin API is HTTPS only (admin.certificate), and the CLI sends its token there only over HTTPS; check --admin", c.base)
	}
	// An SMTP port sends its greeting unasked, which net/http takes for
	// a broken status line or an unsolicited response, depending on
	// whether it came before the request went out.
	if first := speaksFirst(c.base); first != "" || strings.Contains(msg, "malformed HTTP") {
		said := "it does not speak HTTP"
		if first != "" {
			said = fmt.Sprintf("it sent %q before any request", first)
		}
		return fmt.Errorf("what answers at %s is not Sluice's admin API (%s; an SMTP port?): check --admin, or admin.listen in the config", c.base, said)
	}
	return fmt.Errorf("admin API at %s: %w", c.base, err)
}

func (c *apiClient) loopback() bool {
	u, err := url.Parse(c.base)
	return err == nil && admin.LoopbackHost(u.Hostname())
}

// certError: the admin API's certificate did not verify. That is the
// TLS setup (a name, a CA, a date), not the admin credentials: health
// once sent admins to check their token for a certificate that names
// the node but not 127.0.0.1.
type certError struct{ msg string }

func (e *certError) Error() string { return e.msg }

// certProblem words a certificate that did not verify as what to set;
// nil when err is something else.
func (c *apiClient) certProblem(err error) *certError {
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		return nil
	}
	var (
		hostErr x509.HostnameError
		caErr   x509.UnknownAuthorityError
		invErr  x509.CertificateInvalidError
	)
	at := "the admin API's certificate at " + c.base
	switch {
	case errors.As(err, &hostErr):
		names := certNames(hostErr.Certificate)
		if c.serverName != "" {
			return &certError{fmt.Sprintf("%s is for %s, not for this node's name %s (node.hostname, checked as the CLI reaches the wildcard admin.listen on 127.0.0.1): set node.hostname to a name the certificate carries, or give --admin https://NAME:PORT with one",
				at, names, hostErr.Host)}
		}
		return &certError{fmt.Sprintf("%s is for %s, not %s: give --admin https://NAME:PORT with a name the certificate carries", at, names, hostErr.Host)}
	case errors.As(err, &caErr):
		return &certError{fmt.Sprintf("%s is signed by a CA this machine does not trust: give --ca-file with the CA certificate that signed admin.certificate", at)}
	case errors.As(err, &invErr) && invErr.Reason == x509.Expired:
		return &certError{fmt.Sprintf("%s is not valid now (%s): renew admin.certificate, or check this machine's clock", at, invErr.Detail)}
	}
	return &certError{fmt.Sprintf("%s does not verify: %v; check admin.certificate and --ca-file", at, verr.Err)}
}

// certNames lists the names a certificate is valid for.
func certNames(cert *x509.Certificate) string {
	if cert == nil {
		return "no name"
	}
	names := append([]string{}, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no name (no subject alternative names)"
	}
	return strings.Join(names, ", ")
}

// speaksFirst returns the first line a server at a plain http:// base
// sends without being asked, "" if none within a moment: an HTTP server
// never speaks first.
func speaksFirst(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" {
		return ""
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	conn, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err != nil {
		return ""
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 128)
	n, _ := conn.Read(buf)
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	return strings.TrimRight(line, "\r")
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// show asks the daemon and prints the answer: JSON with --json, else with
// print. It is the body of every read-only admin command.
func show[T any](e *env, af *apiFlags, method, path string, query url.Values, body any, print func(io.Writer, T)) (int, error) {
	c, err := af.client()
	if err != nil {
		return ExitFailure, err
	}
	var v T
	if err := c.call(e.ctx, method, path, query, body, &v); err != nil {
		return ExitFailure, err
	}
	if *af.json {
		printJSON(e.stdout, v)
		return ExitOK, nil
	}
	print(e.stdout, v)
	return ExitOK, nil
}
