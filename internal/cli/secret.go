package cli

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/secret"
)

func init() {
	register(&command{
		name:  "secret encrypt",
		args:  "[--key-file F] [--value-file F]",
		short: "encrypt a password or client secret for the config",
		long: `Encrypts one secret (an upstream password, an OAuth2 client secret or refresh
token) with this node's application credential key and prints it as
enc:v1:<key id>:..., to paste into the config, and the key id for
secrets.key_id. The key comes from --key-file or $SLUICE_CREDENTIAL_KEY (any
long passphrase; the same on every node; 'sluice secret new-key' makes one).
The secret is read from --value-file or one line of standard input; it is
never printed.`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			keyFile := fs.String("key-file", "", "application credential key `FILE` (default $"+secret.EnvKey+")")
			valueFile := fs.String("value-file", "", "read the secret from `FILE` instead of standard input")
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 {
					return ExitUsage, usagef("takes no arguments; the secret is read from standard input")
				}
				key, err := secret.LoadKey(*keyFile)
				if err != nil {
					return ExitFailure, err
				}
				if key == nil {
					return ExitFailure, errors.New("no application credential key: give --key-file or set $" + secret.EnvKey + " (sluice secret new-key makes one)")
				}
				var plain string
				if *valueFile != "" {
					b, err := os.ReadFile(*valueFile)
					if err != nil {
						return ExitFailure, err
					}
					plain = strings.TrimRight(string(b), "\r\n")
				} else {
					line, ok := readSecretLine(e, "Secret (not shown): ")
					if !ok {
						return ExitFailure, errors.New("no secret on standard input")
					}
					plain = line
				}
				if plain == "" {
					return ExitFailure, errors.New("the secret is empty")
				}
				fmt.Fprintln(e.stdout, key.Encrypt(plain))
				fmt.Fprintf(e.stderr, "encrypted with key %s; the config needs secrets: {key_id: %s} and every node the same key\n", key.ID(), key.ID())
				return ExitOK, nil
			}
		},
	})
	register(&command{
		name:  "secret check",
		args:  "-config FILE",
		short: "check that this node can decrypt the config's secrets",
		long: `Loads the config's secrets with this node's application credential key
(secrets.key_file or $SLUICE_CREDENTIAL_KEY) and says for each whether it
decrypts. A node with a different key than the one the secrets were
encrypted with is told so plainly, with both key ids. Secrets still written
in plain text are listed so they can be encrypted. Exits 1 on any problem.`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			path := fs.String("config", "", "config `FILE`")
			return func(e *env, args []string) (int, error) {
				if *path == "" || len(args) > 0 {
					return ExitUsage, usagef("give the config with -config FILE")
				}
				cfg, err := config.Load(*path)
				if err != nil {
					var errs config.Errors
					if !errors.As(err, &errs) {
						return ExitFailure, err
					}
					n := 0
					for _, p := range errs {
						if strings.HasPrefix(p.Key, "secrets.") || strings.Contains(p.Key, ".auth.") {
							fmt.Fprintln(e.stdout, p.Error())
							n++
						}
					}
					if n == 0 {
						if len(errs) > 0 { // the first says why, e.g. the file cannot be read
							fmt.Fprintln(e.stdout, errs[0].Error())
						}
						fmt.Fprintf(e.stdout, "%s has problems other than secrets; run sluice config check %s\n", *path, *path)
					}
					return ExitFailure, nil
				}
				keyID := "none"
				if k := cfg.Key(); k != nil {
					keyID = k.ID()
				}
				enc, plain := 0, 0
				for i, sc := range cfg.SendConnectors {
					for _, f := range []struct {
						key string
						s   config.Secret
					}{{"auth.password", sc.Auth.Password}, {"auth.oauth2.client_secret", sc.Auth.OAuth2.ClientSecret}, {"auth.oauth2.refresh_token", sc.Auth.OAuth2.RefreshToken}} {
						key, s := f.key, f.s
						switch {
						case s.IsZero():
						case s.Encrypted():
							enc++
							fmt.Fprintf(e.stdout, "send_connectors[%d].%s (%s): decrypts with this node's key\n", i, key, sc.Name)
						default:
							plain++
							fmt.Fprintf(e.stdout, "send_connectors[%d].%s (%s): in plain text; encrypt it with sluice secret encrypt\n", i, key, sc.Name)
						}
					}
				}
				fmt.Fprintf(e.stdout, "%s: %d encrypted secret(s) decrypt with this node's key (id %s); %d in plain text\n", *path, enc, keyID, plain)
				return ExitOK, nil
			}
		},
	})
	register(&command{
		name:  "secret new-key",
		short: "print a new random application credential key",
		long:  "Prints 32 random bytes in base64: a key for secrets.key_file (or $" + secret.EnvKey + "). Copy the same key to every node.",
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			return func(e *env, args []string) (int, error) {
				b := make([]byte, 32)
				rand.Read(b)
				fmt.Fprintln(e.stdout, base64.StdEncoding.EncodeToString(b))
				return ExitOK, nil
			}
		},
	})
}
