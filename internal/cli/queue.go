package cli

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/sluice-relay/sluice/internal/admin"
	"github.com/sluice-relay/sluice/internal/queue"
)

func init() {
	register(&command{
		name:  "queue list",
		args:  "[-config FILE] [--json]",
		short: "list the queues (one per next hop), like Get-Queue",
		long: `Asks the running Sluice for its queues: one per next hop (send connector, or
connector/domain for MX delivery), plus Unreachable for recipients no send
connector serves. Shows identity, delivery type, status (Ready, Active, Retry,
Suspended), message count, next hop, retry count, next retry time and the last
error: the upstream's exact reply and which host gave it.`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			af := addAPIFlags(fs)
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 {
					return ExitUsage, usagef("takes no arguments; use 'sluice queue show IDENTITY' for one queue")
				}
				return show(e, af, http.MethodGet, "/api/v1/queues", nil, nil, printQueues)
			}
		},
	})
	register(&command{
		name:  "queue show",
		args:  "IDENTITY [-config FILE] [--json]",
		short: "show one queue in full",
		long:  "Shows every field of one queue, the last error unabridged.",
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			af := addAPIFlags(fs)
			return func(e *env, args []string) (int, error) {
				if len(args) != 1 {
					return ExitUsage, usagef("give one queue identity (sluice queue list shows them)")
				}
				return show(e, af, http.MethodGet, "/api/v1/queues/"+url.PathEscape(args[0]), nil, nil, printQueue)
			}
		},
	})
	for _, a := range []struct{ name, short, long string }{
		{"retry", "retry a queue now", `Ends the queue's wait: every message in it is tried again now (Retry-Queue).
An attempt that fails again is recorded (last error, tracking DEFER) but does
not count as a retry: the retry count and the next retry stay as they were (at
least a minute away).`},
		{"suspend", "stop delivery from a queue", "Stops delivery from the queue until 'sluice queue resume'. New messages still join it."},
		{"resume", "resume a suspended queue", "Lets delivery from a suspended queue start again."},
	} {
		register(&command{
			name:  "queue " + a.name,
			args:  "IDENTITY [-config FILE] [--json]",
			short: a.short,
			long:  a.long,
			flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
				af := addAPIFlags(fs)
				return func(e *env, args []string) (int, error) {
					if len(args) != 1 {
						return ExitUsage, usagef("give one queue identity (sluice queue list shows them)")
					}
					return show(e, af, http.MethodPost, "/api/v1/queue-actions/"+a.name, nil, admin.QueueAction{Identity: args[0]},
						func(w io.Writer, qi queue.QueueInfo) {
							fmt.Fprintf(w, "queue %s: %s done; status now %s, %d message(s)\n", display(qi.Identity), a.name, display(qi.Status), qi.MessageCount)
						})
				}
			},
		})
	}
}

// printQueues prints the queues as a table. An MX queue's identity and
// next hop hold a recipient's domain, and the last error an upstream's
// words: every text field goes through display.
func printQueues(w io.Writer, qs []queue.QueueInfo) {
	if len(qs) == 0 {
		fmt.Fprintln(w, "no queues: nothing is waiting for delivery")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IDENTITY\tDELIVERY TYPE\tSTATUS\tMESSAGES\tNEXT HOP\tRETRIES\tNEXT RETRY\tLAST ERROR")
	for _, q := range qs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", display(q.Identity), display(q.DeliveryType), display(q.Status), q.MessageCount,
			abbrev(display(q.NextHop), 40), q.RetryCount, clock(q.NextRetryTime), abbrev(display(q.LastError), 100))
	}
	tw.Flush()
}

func printQueue(w io.Writer, q queue.QueueInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%s\n", k, display(fmt.Sprint(v))) }
	row("Identity", q.Identity)
	row("DeliveryType", q.DeliveryType)
	row("Status", q.Status)
	row("MessageCount", q.MessageCount)
	row("NextHopDomain", q.NextHop)
	row("Connector", q.Connector)
	switch {
	case q.MaxConnections == 0: // no send connector (Unreachable)
	case q.SessionLimit < q.MaxConnections:
		row("SessionLimit", fmt.Sprintf("%d of max_connections %d: the upstream refused more connections; one more a minute while it refuses none",
			q.SessionLimit, q.MaxConnections))
	default:
		row("SessionLimit", fmt.Sprintf("%d (max_connections)", q.SessionLimit))
	}
	row("RetryCount", q.RetryCount)
	row("LastRetryTime", stamp(q.LastRetryTime))
	row("NextRetryTime", stamp(q.NextRetryTime))
	row("OldestMessage", stamp(q.OldestMessage))
	row("LastError", q.LastError)
	if q.Unreadable > 0 {
		row("Unreadable", fmt.Sprintf("%d (%s)", q.Unreadable, q.UnreadableError))
	}
	tw.Flush()
}

// abbrev shortens s, already through display, to n runes for a table
// column.
func abbrev(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	t = t.Local()
	if time.Since(t) < 20*time.Hour && time.Until(t) < 20*time.Hour {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}
