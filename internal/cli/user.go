package cli

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/sluice-relay/sluice/internal/password"
)

func init() {
	register(&command{
		name:  "user hash",
		short: "hash a password for a user in the config",
		long: `Reads a password and prints its argon2id hash, for a user's password_hash.
On a terminal it asks twice without echo; otherwise it reads the first line
of standard input (for scripts: echo -n "$PW" | sluice user hash).`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 {
					return ExitUsage, usagef("takes no arguments; the password is read from standard input")
				}
				pw, err := readPassword(e)
				if err != nil {
					return ExitFailure, err
				}
				h, err := password.Hash(pw)
				if err != nil {
					return ExitFailure, err
				}
				fmt.Fprintln(e.stdout, h)
				return ExitOK, nil
			}
		},
	})
}

func readPassword(e *env) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(e.stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ; nothing was hashed")
		}
		if len(a) == 0 {
			return "", errors.New("empty password; nothing was hashed")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password on standard input")
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty password; nothing was hashed")
	}
	return line, nil
}

// readSecretLine reads one secret: on a terminal without echo, after
// prompt on standard error; otherwise the first line of standard input.
// ok is false when there is none.
func readSecretLine(e *env, prompt string) (line string, ok bool) {
	if f, isFile := e.stdin.(*os.File); isFile && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		return string(b), err == nil
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", false
	}
	return strings.TrimRight(line, "\r\n"), true
}
