package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/tracking"
)

func init() {
	register(&command{
		name:  "track",
		args:  "[--sender A] [--recipient A] [--message-id ID] [--since T] [--until T] [-config FILE] [--json]",
		short: "search the message tracking log, like Get-MessageTrackingLog",
		long: `Searches the message tracking log under <data_dir>/tracking and prints each
matching message's whole story in order: RECEIVE (or FAIL at RCPT: refused
relays show their 5.7.54 here), SUBMIT, DEFER with the upstream's reply,
SEND, FAIL, DSN, EXPIRE, DELETE, REDIRECT. It reads the files directly and
works without a running Sluice. --since and --until take RFC 3339 times,
dates (2026-11-24) or ages (90m, 2h, 3d: that long ago). --message-id takes
the Message-ID header or Sluice's own id.`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			path := fs.String("config", "", "config `FILE` (for node.data_dir); default: the embedded default")
			dataDir := fs.String("data-dir", "", "data `DIR` to read instead of the config's")
			var q tracking.Query
			fs.StringVar(&q.Sender, "sender", "", "envelope sender `ADDRESS`")
			fs.StringVar(&q.Recipient, "recipient", "", "recipient `ADDRESS`")
			fs.StringVar(&q.MessageID, "message-id", "", "Message-ID or Sluice `ID`")
			event := fs.String("event", "", "only events of `TYPE` (RECEIVE, SEND, DEFER, FAIL, ...)")
			since := fs.String("since", "", "from `TIME`")
			until := fs.String("until", "", "up to `TIME`")
			fs.IntVar(&q.Limit, "limit", 10000, "at most `N` events")
			asJSON := fs.Bool("json", false, "one JSON event per line")
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 {
					return ExitUsage, usagef("unexpected argument %q; filters are flags", args[0])
				}
				var err error
				now := time.Now()
				if q.Since, err = parseWhen(*since, now); err != nil {
					return ExitUsage, usagef("--since: %v", err)
				}
				if q.Until, err = parseWhen(*until, now); err != nil {
					return ExitUsage, usagef("--until: %v", err)
				}
				q.Event = tracking.EventType(strings.ToUpper(*event))
				dir, err := trackingDir(*path, *dataDir)
				if err != nil {
					return ExitFailure, err
				}
				events, err := tracking.Search(dir, q)
				if err != nil {
					return ExitFailure, err
				}
				if *asJSON {
					for _, ev := range events {
						printJSONLine(e.stdout, ev)
					}
					return ExitOK, nil
				}
				printStories(e.stdout, events)
				return ExitOK, nil
			}
		},
	})
}

func trackingDir(path, dataDir string) (string, error) {
	if dataDir == "" {
		var cfg *config.Config
		var err error
		if path != "" {
			cfg, err = config.Load(path)
		} else {
			cfg, err = config.LoadDefault()
		}
		if err != nil {
			return "", fmt.Errorf("cannot read the config for node.data_dir (give --data-dir instead): %w", err)
		}
		dataDir = cfg.Node.DataDir
	}
	dir := filepath.Join(dataDir, "tracking")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("no tracking log at %s: has Sluice run with this data directory? (logs.tracking.enabled may be false)", dir)
	}
	return dir, nil
}

// parseWhen reads an RFC 3339 time, a date, or an age ("2h": two hours ago).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: write 2026-11-24T14:00:00Z, 2026-11-24, or an age like 90m, 2h, 3d", s)
}

// printStories groups events by message, in the order each message first
// appears.
func printStories(w io.Writer, events []tracking.Event) {
	if len(events) == 0 {
		fmt.Fprintln(w, "no events match")
		return
	}
	var order []mail.ID
	by := map[mail.ID][]tracking.Event{}
	for _, ev := range events {
		if _, ok := by[ev.ID]; !ok {
			order = append(order, ev.ID)
		}
		by[ev.ID] = append(by[ev.ID], ev)
	}
	for i, id := range order {
		if i > 0 {
			fmt.Fprintln(w)
		}
		evs := by[id]
		head := "refused before a message was accepted"
		if id != "" {
			head = "message " + string(id)
			if evs[0].MessageID != "" {
				head += " " + evs[0].MessageID
			}
			head += " from " + orNull(evs[0].Sender)
		}
		fmt.Fprintln(w, head)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, ev := range evs {
			where := ev.Connector
			if ev.NextHop != "" && ev.NextHop != ev.Connector {
				where = strings.TrimPrefix(where+" → "+ev.NextHop, " → ")
			}
			if ev.ClientIP != "" {
				where += " " + ev.ClientIP
			}
			if ev.Host != "" {
				where += " " + ev.Host
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", ev.Time.Local().Format("2006-01-02 15:04:05.000"), ev.Event,
				strings.Join(ev.Recipients, ","), strings.TrimSpace(where), ev.Reply)
		}
		tw.Flush()
	}
}

func orNull(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}
