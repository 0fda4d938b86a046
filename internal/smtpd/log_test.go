package smtpd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/protolog"
)

// logRecorder keeps what the server logs, and shows it in t.Log too.
type logRecorder struct {
	t  testing.TB
	mu sync.Mutex
	b  strings.Builder
}

func (r *logRecorder) Write(p []byte) (int, error) {
	r.t.Log(strings.TrimRight(string(p), "\n"))
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.Write(p)
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.String()
}

// startServerLogged is startServer with the operational log recorded and
// a protocol log under a temporary directory. stop ends the server and
// returns the protocol log's text.
func startServerLogged(t testing.TB, yaml string) (port int, log *logRecorder, stop func() string) {
	t.Helper()
	port = freePort(t)
	yaml = strings.ReplaceAll(yaml, "PORT", fmt.Sprint(port))
	cfg, err := configParse(yaml)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	dir := t.TempDir()
	proto, err := protolog.Open(dir, "receive", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	log = &logRecorder{t: t}
	srv := New(Options{Spool: &memSpool{}, Protocol: proto,
		Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err := srv.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var text string
	stop = func() string {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			proto.Close()
			files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			for _, f := range files {
				b, _ := os.ReadFile(f)
				text += string(b)
			}
		})
		return text
	}
	t.Cleanup(func() { stop() })
	return port, log, stop
}

// withProtocolLog turns protocol_log on for authConfig's connector.
func withProtocolLog(cfg string) string {
	return strings.Replace(cfg, "    limits:", "    protocol_log: true\n    limits:", 1)
}

// A failed AUTH is logged with the user name only when it names a
// configured user: a name that is not one is often the password typed in
// the wrong field.
func TestAuthFailureLogNamesOnlyConfiguredUsers(t *testing.T) {
	cfg, cert := authConfig(t, "implicit")
	port, log, stop := startServerLogged(t, withProtocolLog(strings.Replace(cfg, "max_auth_failures: 3", "max_auth_failures: 10", 1)))
	session := func(steps ...[2]string) {
		c := dial(t, port)
		c.startTLS(cert.ClientConfig("relay.test"))
		c.expect("", "220")
		c.expect("EHLO x", "250")
		for _, s := range steps {
			c.expect(s[0], s[1])
		}
		c.expect("QUIT", "221")
	}
	session([2]string{"AUTH PLAIN " + b64("\x00app@contoso.com\x00Wr0ngPassw0rd"), "535 5.7.8"})
	session([2]string{"AUTH LOGIN", "334"}, [2]string{b64("Tr0ub4dor&3"), "334"}, [2]string{b64("Tr0ub4dor&3"), "535 5.7.8"})
	session([2]string{"AUTH LOGIN " + b64("Sup3rS3cret!"), "334"}, [2]string{b64("x"), "535 5.7.8"})
	session([2]string{"AUTH PLAIN " + b64("\x00Hunter2Hunter2\x00y"), "535 5.7.8"})
	session([2]string{"AUTH\tPLAIN\t" + b64("\x00app@contoso.com\x00Tab5ecret!"), "500 5.5.2"}) // no command, a password all the same
	waitFor(t, "four failures logged", func() bool { return strings.Count(log.String(), `msg="AUTH failed"`) == 4 })
	proto := stop()
	if !strings.Contains(proto, ",<,AUTH PLAIN ***") {
		t.Fatalf("no protocol log:\n%s", proto)
	}
	for _, secret := range []string{"Wr0ngPassw0rd", "Tr0ub4dor&3", "Sup3rS3cret!", "Hunter2Hunter2",
		b64("Tr0ub4dor&3"), b64("Sup3rS3cret!"), b64("\x00app@contoso.com\x00Tab5ecret!")} {
		if strings.Contains(log.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
		if strings.Contains(proto, secret) {
			t.Errorf("the protocol log holds %q", secret)
		}
	}
	lines := strings.Split(log.String(), "\n")
	var failed []string
	for _, l := range lines {
		if strings.Contains(l, `msg="AUTH failed"`) {
			failed = append(failed, l)
		}
	}
	if !strings.Contains(failed[0], "user=app@contoso.com") || !strings.Contains(failed[0], `reason="wrong password"`) {
		t.Errorf("a configured user's failure must name the user and say why: %s", failed[0])
	}
	for _, l := range failed[1:] {
		if strings.Contains(l, "user=") || !strings.Contains(l, `reason="unknown user"`) {
			t.Errorf("an unknown user's failure must say so without the name: %s", l)
		}
	}
}

// A client that sends its AUTH responses without waiting for the 334
// (pipelined, or after a refused AUTH) has them read as commands; the
// protocol log must not show them.
func TestProtocolLogMasksAuthResponsesReadAsCommands(t *testing.T) {
	cfg, _ := authConfig(t, "starttls")
	port, _, stop := startServerLogged(t, withProtocolLog(cfg))
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	// Refused: TLS is required for AUTH here.
	c.send("AUTH LOGIN\r\n" + b64("app@contoso.com") + "\r\n" + b64("Tr0ub4dor&3") + "\r\n")
	c.expect("", "538 5.7.11")
	c.expect("", "500 5.5.2")
	c.expect("", "500 5.5.2")
	c.send("AUTH CRAM-MD5\r\n" + b64("Sup3rS3cret!") + "\r\n")
	c.expect("", "504 5.5.4")
	c.expect("", "500 5.5.2")
	c.expect("BOGUS command", "500 5.5.2")
	c.expect("QUIT", "221")
	proto := stop()
	for _, secret := range []string{b64("app@contoso.com"), b64("Tr0ub4dor&3"), b64("Sup3rS3cret!")} {
		if strings.Contains(proto, secret) {
			t.Errorf("the protocol log holds %q:\n%s", secret, proto)
		}
	}
	if !strings.Contains(proto, ",<,BOGUS command") || !strings.Contains(proto, ",<,QUIT") {
		t.Errorf("other lines must be logged as they came:\n%s", proto)
	}
}

// An AUTH the connector refuses before any credentials (TLS required,
// a mechanism it does not offer) is logged with the reply: "why does
// SharePoint not authenticate" is answered by the log, not only by a
// protocol log that may be off.
func TestAuthRefusalIsLogged(t *testing.T) {
	cfg, _ := authConfig(t, "starttls")
	port, log, _ := startServerLogged(t, cfg)
	c := dial(t, port)
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("AUTH LOGIN", "538 5.7.11")
	c.expect("AUTH CRAM-MD5", "504 5.5.4")
	c.expect("QUIT", "221")
	waitFor(t, "two refusals logged", func() bool { return strings.Count(log.String(), `msg="AUTH refused"`) == 2 })
	for _, want := range []string{`mech=LOGIN reply="538 5.7.11 `, `mech=CRAM-MD5 reply="504 5.5.4 `} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

// Every refusal is one log line with the session, the client, the user
// and the reply (README, "Each refusal"): syntax and sequence errors too,
// not only policy decisions, and none of them twice.
func TestEveryRefusalIsLoggedOnce(t *testing.T) {
	port, log, _ := startServerLogged(t, strings.Replace(anonConfig, "max_errors: 8", "max_errors: 50", 1))
	c := dial(t, port)
	c.expect("", "220")
	steps := []struct{ cmd, want string }{
		{"HELO", "501 5.5.4 HELO requires a domain name"},
		{"EHLO x", "250"},
		{"RCPT TO:<b@contoso.com>", "503 5.5.1 Send MAIL FROM first"},
		{"MAIL FROM:<a@fabrikam.example", "501 5.1.3 Invalid sender address"},
		{"MAIL FROM:<a@fabrikam.example> FOO=BAR", "555 5.5.4 MAIL FROM parameter FOO"},
		{"MAIL FROM:<a@fabrikam.example> SIZE=abc", "501 5.5.4 Syntax error in parameters or arguments; SIZE"},
		{"MAIL FROM:<a@fabrikam.example> RET=XYZ", "501 5.5.4 Syntax error in parameters or arguments; RET"},
		{"MAIL FROM:<a@fabrikam.example>", "250"},
		{"RCPT TO:<b@contoso.com> NOTIFY=SOMETIMES", "501 5.5.4 Syntax error in parameters or arguments; NOTIFY"},
		{"RCPT TO:<b@contoso.com> ORCPT=garbage", "501 5.5.4 Syntax error in parameters or arguments; ORCPT"},
		{"RCPT TO:<b@contoso.com> FOO=1", "555 5.5.4 RCPT TO parameter FOO"},
		{"RCPT TO:<bob@fabrikam.example>", "550 5.7.54"}, // policy: logged as "recipient refused"
		{"DATA", "554 5.5.1 No valid recipients"},
		{"BOGUS", "500 5.5.2 Syntax error, command unrecognized"},
		{"STARTTLS", "502 5.5.1 Command not implemented; STARTTLS is not offered"},
		{strings.Repeat("N", 3000), "500 5.5.2 Line too long"},
		{"QUIT", "221"},
	}
	var refusals []string
	for _, s := range steps {
		c.expect(s.cmd, s.want)
		if s.want[0] >= '4' {
			refusals = append(refusals, s.want)
		}
	}
	waitFor(t, "every refusal logged", func() bool { return strings.Count(log.String(), ` reply="`) >= len(refusals) })
	var lines []string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, ` reply="`) {
			lines = append(lines, l)
		}
	}
	if len(lines) != len(refusals) {
		t.Errorf("%d refusals, %d log lines with a reply:\n%s", len(refusals), len(lines), strings.Join(lines, "\n"))
	}
	for _, want := range refusals {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, ` reply="`+want) {
				n++
				if !strings.Contains(l, "level=INFO") || !strings.Contains(l, " session=") ||
					!strings.Contains(l, " client=127.0.0.1") || !strings.Contains(l, " user=") {
					t.Errorf("refusal line lacks level INFO, session, client or user: %s", l)
				}
			}
		}
		if n != 1 {
			t.Errorf("%q logged %d times, want once", want, n)
		}
	}
	for _, want := range []string{`command=MAIL arg=FROM:<a@fabrikam.example user="" reply="501 5.1.3`,
		`command=RCPT arg=TO:<b@contoso.com> user="" reply="503 5.5.1`, `command=DATA user="" reply="554 5.5.1`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// The refusals of STARTTLS and AUTH are logged too, never with what the
// client sent in AUTH.
func TestTLSAndAuthRefusalsAreLogged(t *testing.T) {
	cfg, cert := authConfig(t, "implicit")
	port, log, _ := startServerLogged(t, cfg)
	c := dial(t, port)
	c.startTLS(cert.ClientConfig("relay.test"))
	c.expect("", "220")
	c.expect("EHLO x", "250")
	c.expect("STARTTLS", "503 5.5.1 TLS already active")
	c.expect("AUTH LOGIN "+b64("app@contoso.com"), "334")
	c.expect("*", "501 5.0.0 Authentication cancelled")
	c.expect("QUIT", "221")
	waitFor(t, "two refusals logged", func() bool { return strings.Count(log.String(), ` reply="`) == 2 })
	for _, want := range []string{`command=STARTTLS user="" reply="503 5.5.1 TLS already active"`, `command=AUTH user="" reply="501 5.0.0 Authentication cancelled"`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(log.String(), b64("app@contoso.com")) || strings.Contains(log.String(), "app@contoso.com") {
		t.Errorf("the log holds the AUTH data:\n%s", log)
	}
}
