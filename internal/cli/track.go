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
		args:  "[-config FILE | --data-dir DIR] [--sender A] [--recipient A] [--message-id ID] [--since T] [--until T] [--event TYPE] [--limit N] [--json]",
		short: "search the message tracking log, like Get-MessageTrackingLog",
		long: `Searches the message tracking log under <data_dir>/tracking and prints the
whole story, in order, of each message any event of which matches:
RECEIVE (or FAIL at RCPT: refused relays show their 5.7.54 here), SUBMIT,
DEFER with the upstream's reply, SEND, FAIL, DSN (with the id of the
notice), EXPIRE, DELETE, REDIRECT. A notice (bounce, delay or success
notice: a message of its own, from <>) and the message it is about are
shown together, whichever of them matched; the notice's head names that
message.

It reads the files directly and works without a running Sluice. data_dir
comes from the config (-config FILE, or the embedded default: ./sluice-data);
--data-dir DIR reads DIR/tracking instead.

Addresses and ids match whole and in any case. --message-id takes the
Message-ID header (with or without <>) or Sluice's own id. --sender '<>'
(or MAILER-DAEMON) finds notices. --since and --until take RFC 3339 times
(2026-11-24T14:00:00Z), local times (2026-11-24 14:00), dates (2026-11-24:
--until includes that day) or ages (90m, 2h, 3d: that long ago). Times
print in local time. Without filters it lists the earliest events. --json
prints one event per line, as the log stores them, with what the table
leaves out: an event's session leads to its SMTP conversation in the
protocol log (a RECEIVE's with the client, a SEND, DEFER or FAIL from
DELIVERY the one with the upstream): grep SESSION <data_dir>/protocol/*.log.`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			path := fs.String("config", "", "config `FILE` (for node.data_dir); default: the embedded default")
			dataDir := fs.String("data-dir", "", "data `DIR` to read instead of the config's node.data_dir")
			var q tracking.Query
			fs.StringVar(&q.Sender, "sender", "", "envelope sender `ADDRESS`")
			fs.StringVar(&q.Recipient, "recipient", "", "recipient `ADDRESS`")
			fs.StringVar(&q.MessageID, "message-id", "", "Message-ID header or Sluice `ID`")
			event := fs.String("event", "", "only events of `TYPE`: RECEIVE, SUBMIT, SEND, DEFER, FAIL, DSN, EXPIRE, DELETE, REDIRECT")
			since := fs.String("since", "", "from `TIME` (RFC 3339, date, or age like 2h)")
			until := fs.String("until", "", "up to `TIME` (RFC 3339, date, or age like 2h)")
			fs.IntVar(&q.Limit, "limit", tracking.DefaultLimit, "at most `N` events (the earliest)")
			asJSON := fs.Bool("json", false, "one JSON event per line")
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 {
					return ExitUsage, usagef("unexpected argument %q; filters are flags, e.g. --sender %s", args[0], args[0])
				}
				if q.Limit <= 0 {
					return ExitUsage, usagef("--limit: give a number above 0")
				}
				// A value copied from a table or a mail header often
				// brings a space along; none is part of an address or id.
				for _, v := range []*string{&q.Sender, &q.Recipient, &q.MessageID} {
					*v = strings.TrimSpace(*v)
				}
				var err error
				now := time.Now()
				if q.Since, err = parseWhen(*since, now); err != nil {
					return ExitUsage, usagef("--since: %v", err)
				}
				if q.Until, err = parseUntil(*until, now); err != nil {
					return ExitUsage, usagef("--until: %v", err)
				}
				if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
					return ExitUsage, usagef("--until %s is before --since %s", *until, *since)
				}
				q.Event = tracking.EventType(strings.ToUpper(*event))
				if q.Event != "" && !q.Event.Valid() {
					return ExitUsage, usagef("--event: %q is not an event; give RECEIVE, SUBMIT, SEND, DEFER, FAIL, DSN, EXPIRE, DELETE or REDIRECT", *event)
				}
				dir, err := trackingDir(e, *path, *dataDir)
				if err != nil {
					return ExitFailure, err
				}
				events, err := tracking.Search(dir, q)
				if err != nil {
					return ExitFailure, fmt.Errorf("cannot search %s: %w", dir, err)
				}
				if *asJSON {
					var line []byte
					for _, ev := range events {
						line = append(ev.AppendJSON(line[:0]), '\n')
						e.stdout.Write(line)
					}
				} else {
					printStories(e.stdout, events, time.Local)
				}
				if len(events) == q.Limit {
					fmt.Fprintf(e.stderr, "sluice track: showing the first %d events; there may be more: narrow the search or raise --limit\n", q.Limit)
				}
				return ExitOK, nil
			}
		},
	})
}

// trackingDir is <data_dir>/tracking, data_dir from --data-dir or the
// config. A config with problems (a certificate missing, a secret this
// node cannot decrypt) still says where its data is.
func trackingDir(e *env, path, dataDir string) (string, error) {
	var cfg *config.Config
	if dataDir == "" {
		var err error
		if path != "" {
			cfg, err = config.LoadLenient(path)
		} else {
			cfg, err = config.LoadDefault()
		}
		if cfg == nil {
			return "", fmt.Errorf("cannot read the config for node.data_dir (give --data-dir DIR instead): %w", err)
		}
		dataDir = cfg.Node.DataDir
	}
	dir := filepath.Join(dataDir, "tracking")
	off := cfg != nil && !cfg.Logs.Tracking.On()
	fi, err := os.Stat(dir)
	switch {
	case err != nil && off:
		return "", fmt.Errorf("no tracking log at %s: message tracking is off (logs.tracking.enabled: false in %s)", dir, configName(path))
	case err != nil:
		return "", fmt.Errorf("no tracking log at %s: has Sluice run with this data directory? (or logs.tracking.enabled is false in its config)", dir)
	case !fi.IsDir():
		return "", fmt.Errorf("%s is not a directory", dir)
	case off:
		fmt.Fprintf(e.stderr, "sluice track: message tracking is off in %s (logs.tracking.enabled: false); these are older records\n", configName(path))
	}
	return dir, nil
}

func configName(path string) string {
	if path == "" {
		return config.DefaultName
	}
	return path
}

// parseWhen reads an RFC 3339 time, a local date and time ("2026-11-24
// 14:00"), a date (its local midnight), or an age ("2h": two hours ago).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{time.DateOnly, "2006-01-02 15:04", time.DateTime, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil // local time
		}
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && n >= 0 && fmt.Sprint(n) == d {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: write 2026-11-24T14:00:00Z, 2026-11-24 14:00 (local time), 2026-11-24, or an age like 90m, 2h, 3d", s)
}

// parseUntil is parseWhen, except that a date means up to the end of
// that day: "--until 2026-11-24" includes the 24th.
func parseUntil(s string, now time.Time) (time.Time, error) {
	t, err := parseWhen(s, now)
	if err == nil {
		if _, derr := time.ParseInLocation(time.DateOnly, s, now.Location()); derr == nil {
			t = t.AddDate(0, 0, 1).Add(-time.Nanosecond)
		}
	}
	return t, err
}

// printStories prints events grouped by message, in the order each
// message first appears, a table per message. Refusals (no message was
// accepted) each stand alone. A notice's head names the message it is
// about, whose DSN line names the notice.
func printStories(w io.Writer, events []tracking.Event, loc *time.Location) {
	if len(events) == 0 {
		fmt.Fprintln(w, "no events match")
		return
	}
	type group struct {
		evs []tracking.Event
	}
	var order []*group
	by := map[mail.ID]*group{}
	// about: notice → the message it is about. A notice's events say
	// so; those Sluice wrote before they did are named by the message's
	// DSN event.
	about := map[mail.ID]mail.ID{}
	for _, ev := range events {
		switch {
		case ev.ID == "" || ev.Related == "":
		case ev.Event == tracking.EventDSN:
			about[ev.Related] = ev.ID
		default:
			about[ev.ID] = ev.Related
		}
	}
	for _, ev := range events {
		g := by[ev.ID]
		if g == nil { // a new message, or a refusal (never in by)
			g = &group{}
			order = append(order, g)
			if ev.ID != "" {
				by[ev.ID] = g
			}
		}
		g.evs = append(g.evs, ev)
	}
	for i, g := range order {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, storyHead(g.evs, about[g.evs[0].ID]))
		// Every field but the time may come from a client or an
		// upstream (see display).
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tEVENT\tSOURCE\tCONNECTOR / NEXT HOP\tRECIPIENTS\tREPLY")
		for _, ev := range g.evs {
			reply := ev.Reply
			if ev.Event == tracking.EventDSN && ev.Related != "" { // the notice is a message of its own
				reply = strings.TrimSpace(reply + " (message " + string(ev.Related) + ")")
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", ev.Time.In(loc).Format("2006-01-02 15:04:05.000"), display(string(ev.Event)),
				display(orDash(ev.Source)), display(orDash(where(ev))), display(orDash(strings.Join(ev.Recipients, ","))), display(orDash(reply)))
		}
		tw.Flush()
	}
}

// storyHead names the message a group of events is about, and for a
// notice the message it is about. The Message-ID header and the sender
// are the client's words: see display.
func storyHead(evs []tracking.Event, about mail.ID) string {
	first := evs[0]
	if first.ID == "" {
		return "refused before a message was accepted: from " + display(orNull(first.Sender))
	}
	head := "message " + display(string(first.ID))
	if first.MessageID != "" {
		head += " " + display(first.MessageID)
	}
	head += " from " + display(orNull(first.Sender))
	for _, ev := range evs {
		if ev.Size > 0 {
			head += fmt.Sprintf(", %d bytes", ev.Size)
			break
		}
	}
	if about != "" {
		head += ", notice about message " + display(string(about))
	}
	return head
}

// where is the connector, next hop, client and upstream host of an
// event, as far as it has them.
func where(ev tracking.Event) string {
	var parts []string
	add := func(s string) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	add(ev.Connector)
	if ev.NextHop != "" && ev.NextHop != ev.Connector {
		parts = append(parts, "→", ev.NextHop)
	}
	if ev.ClientIP != "" {
		client := ev.ClientIP
		if ev.ClientName != "" {
			client += " (" + ev.ClientName + ")"
		}
		add(client)
	}
	if ev.AuthUser != "" {
		add("user " + ev.AuthUser)
	}
	add(ev.Host)
	return strings.Join(parts, " ")
}

func orNull(s string) string {
	if s == "" {
		return "<>"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
