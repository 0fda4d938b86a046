package cli

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/sluice-relay/sluice/internal/admin"
	"github.com/sluice-relay/sluice/internal/dirlock"
)

func init() {
	register(&command{
		name:  "reload",
		args:  "[-config FILE] [--json]",
		short: "make the running Sluice read its config file again (SIGHUP; the way on Windows)",
		long: `Asks the running Sluice, through its admin API, to read its config file
again and apply it, as SIGHUP does; on Windows, which has no SIGHUP, this is
the way. New connections and deliveries use the new config; a config with
problems is refused, the running one kept, and each problem printed. Changes
to log, logs and admin take a restart, and it says so. Exits 1 when the
reload was refused.`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			af := addAPIFlags(fs)
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 {
					return ExitUsage, usagef("takes no arguments")
				}
				c, err := af.client()
				var off *adminOffError
				if errors.As(err, &off) {
					return ExitFailure, fmt.Errorf("%v; %s", err, reloadWithoutAPI(off.dataDir))
				}
				if err != nil {
					return ExitFailure, err
				}
				var res admin.ReloadResult
				if err := c.call(e.ctx, http.MethodPost, "/api/v1/reload", nil, nil, &res); err != nil {
					return ExitFailure, err
				}
				if *af.json {
					printJSON(e.stdout, res)
				} else {
					printReload(e, res)
				}
				if !res.Reloaded {
					return ExitFailure, nil
				}
				return ExitOK, nil
			}
		},
	})
}

func printReload(e *env, res admin.ReloadResult) {
	if !res.Reloaded {
		fmt.Fprintln(e.stdout, "reload refused; the running configuration is kept:")
		for _, p := range res.Problems {
			fmt.Fprintln(e.stdout, "  "+p)
		}
		return
	}
	fmt.Fprintln(e.stdout, "configuration reloaded; new connections and deliveries use it")
	if len(res.RestartOnly) > 0 {
		fmt.Fprintf(e.stdout, "changed, but applied only at the next restart: %s\n", strings.Join(res.RestartOnly, ", "))
	}
}

// reloadWithoutAPI says how to reload a Sluice whose admin API is off:
// SIGHUP with the pid from the data directory's lock file, or on
// Windows, which has no SIGHUP, a restart.
func reloadWithoutAPI(dataDir string) string {
	if runtime.GOOS == "windows" {
		return "Windows has no SIGHUP: restart the Sluice service to read the config again (queued mail is kept), or set admin.listen (e.g. 127.0.0.1:8025) and restart once so that sluice reload works"
	}
	return fmt.Sprintf("send SIGHUP instead: kill -HUP $(cat %s), or set admin.listen (e.g. 127.0.0.1:8025) and restart once so that sluice reload works",
		filepath.Join(dataDir, dirlock.Name))
}
