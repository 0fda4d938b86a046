package cli

import (
	"errors"
	"flag"
	"fmt"
	"net/http"

	"github.com/sluice-relay/sluice/internal/admin"
	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/safeio"
)

func init() {
	register(&command{
		name:  "health",
		args:  "[-config FILE] [--offline] [--json]",
		short: "run the health rules and say what to fix",
		long: `Runs Sluice's health rules: certificates missing, expiring or for the wrong
name; secrets this node's application credential key cannot decrypt; open
relays; queues with a backlog or a next hop failing; upstreams refusing
Sluice's credentials (Microsoft's 535 5.7.139 included); OAuth2 tokens that
cannot be obtained; disk space. Each finding says what is wrong and how to
fix it.

It asks the running Sluice (admin API) when it can, which adds the queue and
token rules; with --offline, or when no Sluice answers, it checks the config
file and the files it names. Exits 1 when there is an error finding, or
when the running Sluice refuses the CLI's credentials.`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			af := addAPIFlags(fs)
			offline := fs.Bool("offline", false, "check the config file only, without asking the running Sluice")
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 {
					return ExitUsage, usagef("takes no arguments")
				}
				var rep admin.Health
				asked := false
				if !*offline {
					c, err := af.client()
					if err == nil {
						err = c.call(e.ctx, http.MethodGet, "/api/v1/health", nil, nil, &rep)
						var unreachable *unreachableError
						var cert *certError
						switch {
						case err != nil && errors.As(err, &cert):
							// Not the credentials: the error says what to set.
							return ExitFailure, fmt.Errorf("the running Sluice did not report its health: %w; or use --offline to check only the config file", err)
						case err != nil && !errors.As(err, &unreachable):
							// A Sluice answered and refused: its health is
							// not the config file's, so don't pass that off.
							return ExitFailure, fmt.Errorf("the running Sluice did not report its health: %w; fix the admin credentials (--token-file, --cert), or use --offline to check only the config file", err)
						}
						asked = err == nil
					}
					if err != nil && !*af.json {
						fmt.Fprintf(e.stderr, "note: %v\nchecking the config file only\n", err)
					}
				}
				if !asked {
					rep.Findings = append([]health.Finding{}, offlineHealth(*af.config)...) // [] in JSON, as the API answers
					rep.Status = health.Worst(rep.Findings)
				}
				if *af.json {
					printJSON(e.stdout, rep)
				} else {
					health.Render(e.stdout, displayFindings(rep.Findings))
				}
				if rep.Status == health.Error {
					return ExitFailure, nil
				}
				return ExitOK, nil
			}
		},
	})
}

// offlineHealth evaluates the rules that need only the config file.
func offlineHealth(path string) []health.Finding {
	var cfg *config.Config
	var err error
	if path != "" {
		cfg, err = config.Load(path)
	} else {
		cfg, err = config.LoadDefault()
	}
	return health.Evaluate(health.Input{Config: cfg, ConfigErr: err, FreeSpace: safeio.FreeSpace})
}

// displayFindings puts each finding's text through display: a problem
// quotes an upstream's reply or a token endpoint's answer.
func displayFindings(fs []health.Finding) []health.Finding {
	out := make([]health.Finding, len(fs))
	for i, f := range fs {
		f.Rule, f.Subject, f.Problem, f.Fix = display(f.Rule), display(f.Subject), display(f.Problem), display(f.Fix)
		out[i] = f
	}
	return out
}
