// Package probe owns `sluice test connect`: one SMTP conversation with a
// server, recorded line by line, that answers what an admin otherwise
// needs a network trace for (seed 002): the banner, every EHLO
// capability before and after TLS, the TLS version, cipher and
// certificate chain and whether it verifies for the name, the AUTH
// mechanisms offered and whether a login works. Passwords never appear in
// the report. It speaks raw SMTP on purpose: a diagnostic must show the
// lines as they were.
package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Options say whom to probe and how.
type Options struct {
	Addr        string // host:port
	StartTLS    bool   // STARTTLS after the first EHLO
	ImplicitTLS bool   // TLS from the first byte (port 465)
	ServerName  string // name the certificate must carry; default the host of Addr
	CAFile      string // extra trusted CAs (PEM)
	HELO        string // name to give in EHLO; default the local host name
	User        string // AUTH as this user when set
	Password    string // or the OAuth2 access token for XOAUTH2
	Mechanism   string // PLAIN, LOGIN or XOAUTH2; default: the best offered
	Timeout     time.Duration
}

// Report is what the probe found.
type Report struct {
	Addr          string    `json:"addr"`
	Remote        string    `json:"remote,omitempty"` // the address connected to
	ConnectTime   string    `json:"connect_time,omitempty"`
	Banner        string    `json:"banner,omitempty"`
	EHLO          []string  `json:"ehlo,omitempty"`           // capabilities before TLS
	EHLOAfterTLS  []string  `json:"ehlo_after_tls,omitempty"` // after STARTTLS
	TLS           *TLSInfo  `json:"tls,omitempty"`
	AuthOffered   []string  `json:"auth_offered"`
	Auth          *Auth     `json:"auth,omitempty"`
	Advice        []string  `json:"advice,omitempty"`
	Error         string    `json:"error,omitempty"` // what stopped the probe
	Transcript    []Line    `json:"transcript"`
	StartTLSOffer bool      `json:"starttls_offered"`
	started       time.Time `json:"-"`

	// What went wrong, for advise: the connect error, the first bytes
	// of a server that answered TLS in plain text, whether the port
	// turned out to speak TLS from the first byte.
	dialErr    error
	plainFirst string
	tlsFirst   bool
}

// TLSInfo describes the TLS session and the server's certificates.
type TLSInfo struct {
	Version     string     `json:"version"`
	Cipher      string     `json:"cipher"`
	ServerName  string     `json:"server_name"`
	Verified    bool       `json:"verified"`
	VerifyError string     `json:"verify_error,omitempty"`
	Chain       []CertInfo `json:"chain"`
}

// CertInfo is one certificate of the chain.
type CertInfo struct {
	Subject   string    `json:"subject"`
	SANs      []string  `json:"sans,omitempty"`
	Issuer    string    `json:"issuer"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	DaysLeft  int       `json:"days_left"` // whole days, rounded down: negative once expired
}

// Auth is the outcome of the login.
type Auth struct {
	User      string `json:"user"`
	Mechanism string `json:"mechanism"`
	OK        bool   `json:"ok"`
	Reply     string `json:"reply"` // the server's final reply, verbatim
}

// Line is one line of the conversation.
type Line struct {
	At   time.Duration `json:"at"`  // since the connection started
	Dir  string        `json:"dir"` // "C" (us), "S" (server), "*" (a note)
	Text string        `json:"text"`
}

// OK reports whether the probe connected and, when a login was asked
// for, logged in.
func (r *Report) OK() bool {
	return r.Error == "" && (r.Auth == nil || r.Auth.OK)
}

// session is the connection under probe.
type session struct {
	o   Options
	r   *Report
	c   net.Conn
	rd  *bufio.Reader
	ctx context.Context

	// secrets are replaced by "***" in the replies read during AUTH: a
	// server may quote the response it got in its refusal.
	secrets []string
}

// Run probes the server and returns what it found; it never returns nil.
func Run(ctx context.Context, o Options) *Report {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.HELO == "" {
		o.HELO, _ = os.Hostname()
		if o.HELO == "" {
			o.HELO = "localhost"
		}
	}
	host, _, err := net.SplitHostPort(o.Addr)
	r := &Report{Addr: o.Addr, started: time.Now(), AuthOffered: []string{}}
	if err != nil {
		r.Error = fmt.Sprintf("%q is not host:port", o.Addr)
		return r
	}
	if o.ServerName == "" {
		o.ServerName = host
	}
	s := &session{o: o, r: r, ctx: ctx}
	s.run()
	r.advise(o)
	return r
}

func (s *session) note(format string, args ...any) {
	s.r.Transcript = append(s.r.Transcript, Line{At: time.Since(s.r.started).Round(time.Millisecond), Dir: "*", Text: fmt.Sprintf(format, args...)})
}

func (s *session) fail(format string, args ...any) {
	s.r.Error = fmt.Sprintf(format, args...)
	s.note("%s", s.r.Error)
}

func (s *session) run() {
	d := net.Dialer{Timeout: s.o.Timeout}
	start := time.Now()
	c, err := d.DialContext(s.ctx, "tcp", s.o.Addr)
	if err != nil {
		s.r.dialErr = err
		s.fail("cannot connect to %s: %v", s.o.Addr, err)
		return
	}
	s.r.ConnectTime = time.Since(start).Round(time.Millisecond).String()
	s.r.Remote = c.RemoteAddr().String()
	s.note("connected to %s in %s", s.r.Remote, s.r.ConnectTime)
	s.setConn(c)
	defer func() { s.c.Close() }()
	if s.o.ImplicitTLS {
		if !s.handshake() {
			return
		}
	}
	var tlsFirst func(greeted bool) bool
	if !s.o.ImplicitTLS {
		tlsFirst = s.watchForTLS(c)
	}
	code, lines, ok := s.read()
	if tlsFirst != nil && tlsFirst(ok) {
		s.r.tlsFirst = true
		s.r.Error = "the server sent no greeting: it speaks TLS from the first byte"
		s.note("%s", s.r.Error)
	}
	if !ok {
		return
	}
	s.r.Banner = strings.Join(lines, " / ")
	if code != 220 {
		s.fail("the server refused the session at the greeting: %d %s", code, s.r.Banner)
		return
	}
	caps, ok := s.ehlo()
	if !ok {
		return
	}
	s.r.EHLO = caps
	s.r.StartTLSOffer = hasCap(caps, "STARTTLS")
	if s.o.StartTLS {
		if !s.r.StartTLSOffer {
			s.fail("the server does not offer STARTTLS")
			return
		}
		code, lines, ok := s.cmd("STARTTLS", "STARTTLS")
		if !ok {
			return
		}
		if code != 220 {
			s.fail("STARTTLS refused: %d %s", code, strings.Join(lines, " "))
			return
		}
		if !s.handshake() {
			return
		}
		if caps, ok = s.ehlo(); !ok {
			return
		}
		s.r.EHLOAfterTLS = caps
	}
	s.r.AuthOffered = authMechanisms(caps)
	if s.o.User != "" {
		s.auth()
	}
	s.cmd("QUIT", "QUIT")
}

func (s *session) setConn(c net.Conn) {
	s.c = c
	s.rd = bufio.NewReader(c)
}

// read reads one reply (all its lines).
func (s *session) read() (int, []string, bool) {
	s.c.SetReadDeadline(time.Now().Add(s.o.Timeout))
	var lines []string
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			s.fail("the server closed the connection or did not answer: %v", err)
			return 0, lines, false
		}
		line = strings.TrimRight(line, "\r\n")
		for _, sec := range s.secrets {
			if len(sec) >= 6 { // shorter ones would blot out words
				line = strings.ReplaceAll(line, sec, "***")
			}
		}
		s.r.Transcript = append(s.r.Transcript, Line{At: time.Since(s.r.started).Round(time.Millisecond), Dir: "S", Text: line})
		if len(line) < 3 {
			s.fail("malformed reply line %q", line)
			return 0, lines, false
		}
		var code int
		fmt.Sscanf(line[:3], "%d", &code)
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		lines = append(lines, text)
		if len(line) == 3 || line[3] != '-' {
			return code, lines, true
		}
	}
}

// cmd sends a command (shown as shown) and reads the reply.
func (s *session) cmd(line, shown string) (int, []string, bool) {
	s.r.Transcript = append(s.r.Transcript, Line{At: time.Since(s.r.started).Round(time.Millisecond), Dir: "C", Text: shown})
	s.c.SetWriteDeadline(time.Now().Add(s.o.Timeout))
	if _, err := fmt.Fprintf(s.c, "%s\r\n", line); err != nil {
		s.fail("cannot write to the server: %v", err)
		return 0, nil, false
	}
	return s.read()
}

func (s *session) ehlo() ([]string, bool) {
	code, lines, ok := s.cmd("EHLO "+s.o.HELO, "EHLO "+s.o.HELO)
	if !ok {
		return nil, false
	}
	if code != 250 {
		s.fail("EHLO refused: %d %s", code, strings.Join(lines, " "))
		return nil, false
	}
	if len(lines) > 0 {
		lines = lines[1:] // the greeting line, not a capability
	}
	return lines, true
}

// handshake runs TLS without verifying, then verifies on its own, so a
// bad certificate is reported and the probe still sees everything else.
func (s *session) handshake() bool {
	tc := tls.Client(s.c, &tls.Config{ServerName: s.o.ServerName, InsecureSkipVerify: true, MinVersion: tls.VersionTLS10})
	s.c.SetDeadline(time.Now().Add(s.o.Timeout))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil {
			s.r.plainFirst = string(rh.RecordHeader[:])
		}
		s.fail("TLS handshake failed: %v", err)
		return false
	}
	s.c.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	info := &TLSInfo{Version: tls.VersionName(st.Version), Cipher: tls.CipherSuiteName(st.CipherSuite), ServerName: s.o.ServerName}
	for _, c := range st.PeerCertificates {
		info.Chain = append(info.Chain, CertInfo{Subject: c.Subject.String(), SANs: sans(c), Issuer: c.Issuer.String(),
			NotBefore: c.NotBefore, NotAfter: c.NotAfter, DaysLeft: int(math.Floor(time.Until(c.NotAfter).Hours() / 24))})
	}
	if err := s.verify(st.PeerCertificates); err != nil {
		info.VerifyError = err.Error()
	} else {
		info.Verified = true
	}
	s.r.TLS = info
	s.note("TLS %s %s; certificate %s for %s", info.Version, info.Cipher, map[bool]string{true: "verifies", false: "does NOT verify"}[info.Verified], s.o.ServerName)
	s.setConn(tc)
	return true
}

// greetingWait is how long a server may stay silent before the probe
// checks, on a second connection, whether it waits for a TLS handshake.
const greetingWait = 2 * time.Second

// watchForTLS finds a port that speaks TLS from the first byte (465)
// while the probe waits for a plain greeting that will never come: after
// greetingWait of silence it tries a handshake on a second connection,
// and if that works ends the wait on c. The function it returns is
// called once the greeting was read (greeted) or not, and reports
// whether the port speaks TLS first.
func (s *session) watchForTLS(c net.Conn) func(greeted bool) bool {
	var mu sync.Mutex
	finished := false
	done := make(chan struct{})
	found := make(chan bool, 1)
	go func() {
		t := time.NewTimer(greetingWait)
		defer t.Stop()
		select {
		case <-done:
			found <- false
			return
		case <-t.C:
		}
		ok := speaksTLS(s.ctx, s.o.Addr, s.o.ServerName, min(s.o.Timeout, 10*time.Second))
		mu.Lock()
		if ok && !finished {
			c.Close() // the greeting is not coming
		}
		mu.Unlock()
		found <- ok
	}()
	return func(greeted bool) bool {
		mu.Lock()
		finished = true
		mu.Unlock()
		close(done)
		if greeted {
			return false
		}
		return <-found
	}
}

// speaksTLS reports whether addr completes a TLS handshake.
func speaksTLS(ctx context.Context, addr, name string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: name, InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (s *session) verify(chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return fmt.Errorf("the server sent no certificate")
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if s.o.CAFile != "" {
		pem, err := os.ReadFile(s.o.CAFile)
		if err != nil {
			return fmt.Errorf("cannot read --ca-file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca-file %s has no PEM certificate", s.o.CAFile)
		}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err = chain[0].Verify(x509.VerifyOptions{DNSName: s.o.ServerName, Roots: roots, Intermediates: inter})
	return err
}

func (s *session) auth() {
	mech := strings.ToUpper(s.o.Mechanism)
	if mech == "" {
		for _, m := range []string{"XOAUTH2", "PLAIN", "LOGIN"} {
			if m != "XOAUTH2" && hasWord(s.r.AuthOffered, m) {
				mech = m
				break
			}
		}
		if mech == "" {
			mech = "PLAIN"
		}
	}
	a := &Auth{User: s.o.User, Mechanism: mech}
	s.r.Auth = a
	b64 := base64.StdEncoding.EncodeToString
	s.secrets = []string{s.o.Password, b64([]byte(s.o.Password)),
		b64([]byte("\x00" + s.o.User + "\x00" + s.o.Password)),
		b64([]byte("user=" + s.o.User + "\x01auth=Bearer " + s.o.Password + "\x01\x01"))}
	defer func() { s.secrets = nil }()
	var code int
	var lines []string
	var ok bool
	switch mech {
	case "PLAIN":
		code, lines, ok = s.cmd("AUTH PLAIN "+b64([]byte("\x00"+s.o.User+"\x00"+s.o.Password)), "AUTH PLAIN ***")
	case "LOGIN":
		code, lines, ok = s.cmd("AUTH LOGIN", "AUTH LOGIN")
		if ok && code == 334 {
			code, lines, ok = s.cmd(b64([]byte(s.o.User)), b64([]byte(s.o.User))+"   (user name "+s.o.User+")")
		}
		if ok && code == 334 {
			code, lines, ok = s.cmd(b64([]byte(s.o.Password)), "***")
		}
	case "XOAUTH2":
		code, lines, ok = s.cmd("AUTH XOAUTH2 "+b64([]byte("user="+s.o.User+"\x01auth=Bearer "+s.o.Password+"\x01\x01")), "AUTH XOAUTH2 ***")
		if ok && code == 334 { // the error details; an empty line ends the exchange
			code, lines, ok = s.cmd("", "")
		}
	default:
		a.Reply = "unknown mechanism " + mech + "; use PLAIN, LOGIN or XOAUTH2"
		return
	}
	if !ok {
		a.Reply = s.r.Error
		s.r.Error = ""
		return
	}
	a.Reply = fmt.Sprintf("%d %s", code, strings.Join(lines, " "))
	a.OK = code == 235
}

func sans(c *x509.Certificate) []string {
	out := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

func hasCap(caps []string, name string) bool {
	for _, c := range caps {
		if f := strings.Fields(c); len(f) > 0 && strings.EqualFold(f[0], name) {
			return true
		}
	}
	return false
}

func authMechanisms(caps []string) []string {
	for _, c := range caps {
		f := strings.Fields(strings.ToUpper(c))
		if len(f) > 0 && (f[0] == "AUTH" || strings.HasPrefix(f[0], "AUTH=")) {
			if f[0] != "AUTH" {
				return append([]string{strings.TrimPrefix(f[0], "AUTH=")}, f[1:]...)
			}
			return f[1:]
		}
	}
	return []string{}
}

func hasWord(list []string, w string) bool {
	for _, x := range list {
		if strings.EqualFold(x, w) {
			return true
		}
	}
	return false
}
