package cli

import (
	"flag"

	"github.com/sluice-relay/sluice/internal/daemon"
)

func init() {
	register(&command{
		name:  "serve",
		args:  "[-config FILE]",
		short: "run the relay",
		long: `Runs Sluice in the foreground. Without -config it runs the embedded default:
it listens on 127.0.0.1:2525, accepts mail from this machine for any recipient,
and writes each message as an .eml file under ./sluice-data/drop.

Signals: SIGHUP (or 'sluice reload', the way on Windows) reloads the config
file (new connections use it; a config with errors is refused and the running
one kept, with the reason in the log). SIGTERM or SIGINT stop accepting
connections, let messages being received finish, and exit; a second one exits
at once (what got a 250 is on disk already).`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			path := fs.String("config", "", "config `FILE` (YAML); default: the embedded default")
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 {
					return ExitUsage, usagef("unexpected argument %q; give the config with -config FILE", args[0])
				}
				err := daemon.Run(e.ctx, daemon.Options{ConfigPath: *path, LogOutput: e.stderr, Version: version()})
				if err != nil {
					return ExitFailure, err
				}
				return ExitOK, nil
			}
		},
	})
}
