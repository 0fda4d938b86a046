package cli

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=v1.2.3";
// otherwise it comes from the module's VCS information.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		if len(rev) > 12 {
			return "devel-" + rev[:12] + dirty
		}
	}
	return "devel"
}

func init() {
	register(&command{
		name:  "version",
		short: "print the version",
		long:  "Prints Sluice's version, the Go version it was built with, and the platform.",
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 {
					return ExitUsage, usagef("takes no arguments")
				}
				fmt.Fprintf(e.stdout, "sluice %s (%s, %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return ExitOK, nil
			}
		},
	})
}
