package daemon

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sluice-relay/sluice/internal/"

// Data flows one way: receive → policy → queue → delivery → tracking
// (STYLE.md §2). Each rule names a package and what it must not depend
// on, directly or through others; a new import that reaches back up the
// chain fails here, not in review.
var forbidden = []struct {
	pkg        string
	transitive bool     // through other packages too, not only its own imports
	not        []string // packages under internal/, or standard ones as written
	why        string
}{
	{"smtpd", true, []string{"queue", "delivery", "store/sqlite"}, "receive hands messages to a Spool it declares; the queue satisfies it"},
	{"queue", true, []string{"smtpd", "delivery", "admin", "health", "cli"}, "the queue is below receive and above delivery"},
	{"delivery", true, []string{"smtpd", "admin", "health", "cli"}, "delivery acts through queue methods only"},
	{"store/sqlite", true, []string{"smtpd", "delivery", "admin", "health", "cli"}, "a store is the queue's backend"},
	{"policy", false, []string{"os", "net", "net/http", "io", "database/sql", "syscall", "queue", "smtpd", "delivery", "tracking", "protolog", "safeio", "store/sqlite"},
		"policy is pure functions of the config and session facts, table-tested without sockets or files"},
	{"route", false, []string{"os", "net", "io", "queue", "delivery", "smtpd"}, "routing is a pure function of the config"},
}

// sinks import only mail, reply and the helpers that write their files.
var sinks = map[string][]string{
	"tracking": {"mail", "reply", "dailyfile", "jsonw", "logqueue"},
	"protolog": {"mail", "reply", "dailyfile", "logqueue"},
}

func TestImportsFlowOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}|{{join .Deps \",\"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports, deps := map[string][]string{}, map[string][]string{} // by this module's packages
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		if len(parts) != 3 {
			t.Fatalf("go list line %q", line)
		}
		pkg := strings.TrimPrefix(parts[0], module)
		imports[pkg] = short(parts[1])
		deps[pkg] = short(parts[2])
	}
	for _, r := range forbidden {
		have, ok := imports[r.pkg]
		if r.transitive {
			have, ok = deps[r.pkg]
		}
		if !ok {
			t.Errorf("package %s is gone; update this rule", r.pkg)
			continue
		}
		for _, bad := range r.not {
			if slices.Contains(have, bad) {
				t.Errorf("%s depends on %s: %s", r.pkg, bad, r.why)
			}
		}
	}
	for sink, allowed := range sinks {
		have, ok := deps[sink]
		if !ok {
			t.Errorf("package %s is gone; update this rule", sink)
			continue
		}
		for _, d := range have {
			if _, ours := deps[d]; ours && !slices.Contains(allowed, d) {
				t.Errorf("%s depends on %s: a sink imports only %v", sink, d, allowed)
			}
		}
	}
}

// short names this module's packages by their path under internal/ and
// leaves the others as they are.
func short(list string) []string {
	var out []string
	for _, p := range strings.Split(list, ",") {
		if p != "" {
			out = append(out, strings.TrimPrefix(p, module))
		}
	}
	return out
}
