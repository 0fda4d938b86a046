package cli

import (
	"errors"
	"flag"
	"fmt"

	"github.com/sluice-relay/sluice/internal/config"
)

func init() {
	register(&command{
		name:  "config check",
		args:  "FILE | -config FILE",
		short: "check a config file and explain every problem",
		long: `Loads FILE as 'sluice serve -config FILE' would, reading certificates and
checking every key, and prints each problem with its file, line and key and
what to change. Exits 0 when the config is good, 1 when it has problems.`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			// -config as well: every other command that reads the config
			// (serve, reload, health, secret check) takes it that way.
			flagPath := fs.String("config", "", "config `FILE` (or give it as the argument)")
			return func(e *env, args []string) (int, error) {
				if *flagPath != "" {
					args = append(args, *flagPath)
				}
				if len(args) != 1 {
					return ExitUsage, usagef("give one config file")
				}
				cfg, err := config.Load(args[0])
				if err != nil {
					var errs config.Errors
					if !errors.As(err, &errs) {
						return ExitFailure, err
					}
					for _, p := range errs {
						fmt.Fprintln(e.stdout, p.Error())
					}
					fmt.Fprintf(e.stdout, "%s: %d problem(s); Sluice would not start with this config\n", args[0], len(errs))
					return ExitFailure, nil
				}
				fmt.Fprintf(e.stdout, "%s: OK (%d receive connector(s), %d accepted domain(s), %d user(s))\n",
					args[0], len(cfg.ReceiveConnectors), len(cfg.AcceptedDomains), len(cfg.Users))
				return ExitOK, nil
			}
		},
	})
	register(&command{
		name:  "config default",
		short: "print the embedded default config",
		long:  "Prints the config 'sluice serve' runs without -config, as a starting point for your own.",
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 {
					return ExitUsage, usagef("takes no arguments")
				}
				e.stdout.Write(config.Default())
				return ExitOK, nil
			}
		},
	})
}
