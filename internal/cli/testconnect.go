package cli

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/probe"
)

func init() {
	register(&command{
		name:  "test connect",
		args:  "HOST:PORT [--starttls|--tls] [--auth USER] [--mechanism M] [--json]",
		short: "show what an SMTP server offers: banner, EHLO, TLS, certificate, AUTH",
		long: `Connects to an SMTP server the way a client would and shows what a network
trace would: the banner, every EHLO capability (again after STARTTLS, where
AUTH often appears only then), the TLS version and cipher, the certificate
chain with subject, names, issuer and expiry and whether it verifies for the
host name, the AUTH mechanisms offered and, with --auth, whether the login
works. The password comes from --password-file, $SLUICE_PASSWORD or one line
of standard input; it is never shown (the transcript masks it as ***). For
XOAUTH2 give the access token as the password. Exits 0 when the connection
(and the login, if asked) worked.`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			starttls := fs.Bool("starttls", false, "STARTTLS after EHLO")
			implicit := fs.Bool("tls", false, "TLS from the first byte (port 465)")
			user := fs.String("auth", "", "log in as `USER`")
			pwFile := fs.String("password-file", "", "read the password from `FILE`")
			mech := fs.String("mechanism", "", "AUTH `MECHANISM`: PLAIN, LOGIN or XOAUTH2 (default: PLAIN or LOGIN, as offered)")
			name := fs.String("servername", "", "`NAME` the certificate must carry (default: the host)")
			ca := fs.String("ca-file", "", "extra trusted CA certificates (PEM `FILE`)")
			helo := fs.String("helo", "", "`NAME` to give in EHLO (default: this machine's name)")
			timeout := fs.Duration("timeout", 30*time.Second, "for each wait")
			asJSON := fs.Bool("json", false, "print JSON")
			return func(e *env, args []string) (int, error) {
				if len(args) != 1 {
					return ExitUsage, usagef("give the server as HOST:PORT, e.g. smtp.office365.com:587")
				}
				if _, port, err := net.SplitHostPort(args[0]); err != nil || port == "" {
					// SMTP has three ports in use; guessing one would
					// test a connector the admin did not mean.
					return ExitUsage, usagef("%q has no port: give HOST:PORT, e.g. %s:25 (relay), :587 (submission, with --starttls) or :465 (with --tls)", args[0], strings.TrimSuffix(args[0], ":"))
				}
				if *starttls && *implicit {
					return ExitUsage, usagef("--starttls and --tls exclude each other")
				}
				o := probe.Options{Addr: args[0], StartTLS: *starttls, ImplicitTLS: *implicit, ServerName: *name,
					CAFile: *ca, HELO: *helo, User: *user, Mechanism: *mech, Timeout: *timeout}
				if *user != "" {
					pw, err := probePassword(e, *pwFile)
					if err != nil {
						return ExitFailure, err
					}
					o.Password = pw
				}
				r := probe.Run(e.ctx, o)
				if *asJSON {
					printJSON(e.stdout, r)
				} else {
					printProbe(e.stdout, r)
				}
				if !r.OK() {
					return ExitFailure, nil
				}
				return ExitOK, nil
			}
		},
	})
}

func probePassword(e *env, file string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case os.Getenv("SLUICE_PASSWORD") != "":
		return os.Getenv("SLUICE_PASSWORD"), nil
	}
	line, ok := readSecretLine(e, "Password (not shown): ")
	if !ok {
		return "", fmt.Errorf("no password: give --password-file, set $SLUICE_PASSWORD or type it on standard input")
	}
	return line, nil
}

// printProbe prints what the server said and what its certificate
// names: any server's words, so each goes through display.
func printProbe(w io.Writer, r *probe.Report) {
	fmt.Fprintf(w, "Server:       %s", display(r.Addr))
	if r.Remote != "" {
		fmt.Fprintf(w, " (%s, connected in %s)", display(r.Remote), r.ConnectTime)
	}
	fmt.Fprintln(w)
	if r.Banner != "" {
		fmt.Fprintf(w, "Banner:       %s\n", display(r.Banner))
	}
	if r.EHLO != nil {
		fmt.Fprintf(w, "EHLO:         %s\n", strings.Join(displayAll(r.EHLO), "\n              "))
	}
	if t := r.TLS; t != nil {
		fmt.Fprintf(w, "TLS:          %s, %s\n", t.Version, t.Cipher)
		verdict := "verifies for " + display(t.ServerName)
		if !t.Verified {
			verdict = "does NOT verify for " + display(t.ServerName) + ": " + display(t.VerifyError)
		}
		fmt.Fprintf(w, "Certificate:  %s\n", verdict)
		for i, c := range t.Chain {
			fmt.Fprintf(w, "  [%d] subject %s\n      names   %s\n      issuer  %s\n      valid   %s to %s (%d days left)\n",
				i, display(c.Subject), strings.Join(displayAll(c.SANs), ", "), display(c.Issuer), c.NotBefore.Format("2006-01-02"), c.NotAfter.Format("2006-01-02"), c.DaysLeft)
		}
	}
	if r.EHLOAfterTLS != nil {
		fmt.Fprintf(w, "EHLO (TLS):   %s\n", strings.Join(displayAll(r.EHLOAfterTLS), "\n              "))
	}
	if r.Banner != "" {
		auth := strings.Join(displayAll(r.AuthOffered), " ")
		if auth == "" {
			auth = "none offered"
		}
		fmt.Fprintf(w, "AUTH:         %s\n", auth)
	}
	if a := r.Auth; a != nil {
		res := "FAILED"
		if a.OK {
			res = "OK"
		}
		fmt.Fprintf(w, "Login:        %s as %s with %s: %s\n", res, display(a.User), display(a.Mechanism), display(a.Reply))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "Error:        %s\n", display(r.Error))
	}
	for _, a := range r.Advice {
		fmt.Fprintf(w, "Advice:       %s\n", display(a))
	}
	fmt.Fprintln(w, "Transcript:")
	for _, l := range r.Transcript {
		fmt.Fprintf(w, "  %7s %s %s\n", l.At, l.Dir, display(l.Text))
	}
}
