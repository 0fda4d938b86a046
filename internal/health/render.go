package health

import (
	"fmt"
	"io"
	"strings"
)

// Render prints findings for people, one per entry with the fix on its own
// indented line, then a count; "healthy: no findings" when there are none.
// The layout is the one the README shows:
//
//	ERROR   OPEN-RELAY      receive connector Anonymous relay: grants relay to 0.0.0.0/0: ...
//	        fix: limit remote_ip_ranges to the hosts that must relay ...
//	1 error(s), 0 warning(s)
func Render(w io.Writer, fs []Finding) {
	if len(fs) == 0 {
		fmt.Fprintln(w, "healthy: no findings")
		return
	}
	count := map[Severity]int{}
	for _, f := range fs {
		fmt.Fprintf(w, "%-7s %-15s %s: %s\n", strings.ToUpper(string(f.Severity)), f.Rule, f.Subject, f.Problem)
		if f.Fix != "" {
			fmt.Fprintf(w, "%8sfix: %s\n", "", f.Fix)
		}
		count[f.Severity]++
	}
	fmt.Fprintf(w, "%d error(s), %d warning(s)", count[Error], count[Warning])
	if n := count[Info]; n > 0 {
		fmt.Fprintf(w, ", %d info", n)
	}
	fmt.Fprintln(w)
}
