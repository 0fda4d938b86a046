package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/sluice-relay/sluice/internal/admin"
	"github.com/sluice-relay/sluice/internal/queue"
)

func init() {
	register(&command{
		name:  "message list",
		args:  "[--queue ID] [--sender A] [--recipient A] [--status S] [--limit N] [-config FILE] [--json]",
		short: "list queued messages, like Get-Message",
		long: `Lists the messages in the running Sluice's queue, oldest first, with their
recipients' state. Filters combine: --queue (a queue identity), --sender,
--recipient (addresses, case-insensitive) and --status (Ready, Active, Retry,
Suspended). --limit N (default 1000) shows the oldest N; a note on stderr says
when there are more.`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			af := addAPIFlags(fs)
			qname := fs.String("queue", "", "only messages waiting in queue `ID`")
			sender := fs.String("sender", "", "only messages from `ADDRESS`")
			rcpt := fs.String("recipient", "", "only messages to `ADDRESS`")
			status := fs.String("status", "", "only messages in `STATUS` (Ready, Active, Retry, Suspended)")
			limit := fs.Int("limit", 1000, "at most `N` messages (the oldest)")
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 {
					return ExitUsage, usagef("unexpected argument %q; filters are flags, e.g. --sender a@contoso.com", args[0])
				}
				q := url.Values{}
				for k, v := range map[string]string{"queue": *qname, "sender": *sender, "recipient": *rcpt, "status": *status} {
					if v != "" {
						q.Set(k, v)
					}
				}
				if *limit <= 0 {
					return ExitUsage, usagef("--limit: give a number above 0")
				}
				if *status != "" {
					st, ok := messageStatus(*status)
					if !ok {
						return ExitUsage, usagef("--status %q: a message's status is one of %s", *status, strings.Join(messageStatuses, ", "))
					}
					q.Set("status", st)
				}
				// One more than shown tells whether there are more.
				q.Set("limit", fmt.Sprint(*limit+1))
				c, err := af.client()
				if err != nil {
					return ExitFailure, err
				}
				var ms []queue.MessageInfo
				if err := c.call(e.ctx, http.MethodGet, "/api/v1/messages", q, nil, &ms); err != nil {
					return ExitFailure, err
				}
				if len(ms) == 0 && *qname != "" {
					// An empty list for a queue that does not exist
					// read as "nothing waiting there": a typo looked
					// like an empty queue.
					err := c.call(e.ctx, http.MethodGet, "/api/v1/queues/"+url.PathEscape(*qname), nil, nil, nil)
					var ae *apiError
					if errors.As(err, &ae) && ae.status == http.StatusNotFound {
						return ExitFailure, fmt.Errorf("there is no queue %q; sluice queue list shows the queues", strings.TrimSpace(*qname))
					}
					if err != nil {
						return ExitFailure, err
					}
				}
				more := len(ms) > *limit
				if more {
					ms = ms[:*limit]
				}
				if *af.json {
					printJSON(e.stdout, ms)
				} else {
					printMessages(e.stdout, ms)
				}
				if more {
					fmt.Fprintf(e.stderr, "sluice message list: showing the oldest %d messages; there may be more: narrow the filters or raise --limit\n", *limit)
				}
				return ExitOK, nil
			}
		},
	})
	register(&command{
		name:  "message show",
		args:  "ID [-config FILE] [--json]",
		short: "show one queued message and each recipient's state",
		long:  "Shows a queued message: envelope, origin (connector, client, user, TLS) and per recipient its status, attempts, queue and last error.",
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			af := addAPIFlags(fs)
			return func(e *env, args []string) (int, error) {
				if len(args) != 1 {
					return ExitUsage, usagef("give one message id (sluice message list shows them)")
				}
				return show(e, af, http.MethodGet, "/api/v1/messages/"+url.PathEscape(args[0]), nil, nil, printMessage)
			}
		},
	})
	register(&command{
		name:  "message retry",
		args:  "ID [-config FILE]",
		short: "try a queued message again now",
		long: `Makes the message's waiting recipients due now. A queue of the message that is
in Retry (its next hop failing) tries its next hop now too, as 'sluice queue
retry' does, with its other messages that are due. An attempt that fails again
is recorded (last error, tracking DEFER) but does not count as a retry: the
retry count and next retry stay as they were (at least a minute away). A
suspended queue stays suspended, and recipients no send connector serves
(Unreachable) still wait; the answer says so.`,
		flags: messageAction("retry", nil),
	})
	register(&command{
		name:  "message remove",
		args:  "ID [--bounce] [-config FILE]",
		short: "remove a message from the queue, with or without a bounce",
		long: `Removes the message from the queue (Remove-Message). With --bounce the sender
gets a non-delivery report saying an administrator removed it; without, the
message disappears silently (the tracking log records a DELETE either way).`,
		flags: messageAction("remove", func(fs *flag.FlagSet) func() admin.MessageAction {
			b := fs.Bool("bounce", false, "send the sender a non-delivery report")
			return func() admin.MessageAction { return admin.MessageAction{Bounce: *b} }
		}),
	})
	register(&command{
		name:  "message redirect",
		args:  "ID --to ADDRESS[,ADDRESS] [-config FILE]",
		short: "send a queued message to other recipients instead",
		long: `Replaces the message's waiting recipients with the given addresses; the
message is routed again and delivered to them (for a mailbox that moved, or to
hand a stuck message to a postmaster). Delivered recipients are not affected.`,
		flags: messageAction("redirect", func(fs *flag.FlagSet) func() admin.MessageAction {
			to := fs.String("to", "", "new recipient `ADDRESSES`, comma-separated")
			return func() admin.MessageAction {
				var list []string
				for _, a := range strings.Split(*to, ",") {
					if a = strings.TrimSpace(a); a != "" {
						list = append(list, a)
					}
				}
				return admin.MessageAction{To: list}
			}
		}),
	})
}

// messageAction builds the flags and run func of a message action.
func messageAction(action string, extra func(*flag.FlagSet) func() admin.MessageAction) func(*flag.FlagSet) func(*env, []string) (int, error) {
	return func(fs *flag.FlagSet) func(*env, []string) (int, error) {
		af := addAPIFlags(fs)
		body := func() admin.MessageAction { return admin.MessageAction{} }
		if extra != nil {
			body = extra(fs)
		}
		return func(e *env, args []string) (int, error) {
			if len(args) != 1 {
				return ExitUsage, usagef("give one message id (sluice message list shows them)")
			}
			req := body()
			if action == "redirect" && len(req.To) == 0 {
				return ExitUsage, usagef("give the new recipients with --to")
			}
			c, err := af.client()
			if err != nil {
				return ExitFailure, err
			}
			var out json.RawMessage
			if err := c.call(e.ctx, http.MethodPost, "/api/v1/messages/"+url.PathEscape(args[0])+"/"+action, nil, req, &out); err != nil {
				return ExitFailure, err
			}
			if *af.json {
				printJSON(e.stdout, out)
				return ExitOK, nil
			}
			switch action {
			case "remove":
				how := " without notice to the sender"
				if req.Bounce {
					how = "; the sender gets a non-delivery report"
				}
				fmt.Fprintf(e.stdout, "message %s removed%s\n", args[0], how)
			case "redirect":
				fmt.Fprintf(e.stdout, "message %s redirected to %s\n", args[0], strings.Join(req.To, ", "))
			default:
				var r admin.MessageRetried
				if err := json.Unmarshal(out, &r); err != nil {
					return ExitFailure, fmt.Errorf("the daemon's answer to the retry cannot be read: %v", err)
				}
				fmt.Fprintf(e.stdout, "message %s: due now%s\n", args[0], retriedNote(r.Retried))
			}
			return ExitOK, nil
		}
	}
}

// retriedNote says what a message retry did besides making the message
// due (admin.MessageRetried): without it, "due now" was all it said of a
// message that waits for its queue.
func retriedNote(r queue.Retried) string {
	var note string
	switch qs := displayAll(r.InRetry); len(qs) {
	case 0:
	case 1:
		note += "; its queue " + qs[0] + " was in Retry and is tried now too"
	default:
		note += "; its queues " + strings.Join(qs, ", ") + " were in Retry and are tried now too"
	}
	for _, q := range displayAll(r.Suspended) {
		arg := q
		if strings.ContainsAny(q, " \t") {
			arg = "'" + q + "'" // a connector's name may have spaces
		}
		note += "; its queue " + q + " is suspended: nothing leaves it until sluice queue resume " + arg
	}
	if r.Unreachable {
		note += "; recipients of it wait in Unreachable: no send connector serves their domain (add one, then sluice reload)"
	}
	return note
}

// printMessages prints messages as a table. Addresses, the client's
// EHLO name and the upstreams' replies come from outside: every text
// field goes through display.
func printMessages(w io.Writer, ms []queue.MessageInfo) {
	if len(ms) == 0 {
		fmt.Fprintln(w, "no messages match")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tFROM\tSIZE\tSTATUS\tQUEUES\tRECIPIENTS\tLAST ERROR")
	for _, m := range ms {
		var rcpts []string
		lastErr := m.Error
		for _, r := range m.Recipients {
			rcpts = append(rcpts, display(r.Address)+"("+display(string(r.Status))+")")
			if r.LastError != "" {
				lastErr = r.LastError
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", display(string(m.ID)), clock(m.Received), display(m.From), m.Size, display(m.Status),
			strings.Join(displayAll(m.Queues), ","), abbrev(strings.Join(rcpts, " "), 60), abbrev(display(lastErr), 80))
	}
	tw.Flush()
}

func printMessage(w io.Writer, m queue.MessageInfo) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%s\n", k, display(fmt.Sprint(v))) }
	row("Identity", m.ID)
	row("FromAddress", m.From)
	row("Status", m.Status)
	if m.About != "" {
		row("NoticeAbout", m.About) // the message this notice reports on
	}
	if m.Error != "" {
		row("Error", m.Error)
	}
	row("Size", m.Size)
	row("DateReceived", stamp(m.Received))
	row("ReceiveConnector", m.Origin.Connector)
	if m.Origin.ClientIP.IsValid() {
		row("Client", fmt.Sprintf("%s (%s)", m.Origin.ClientIP, m.Origin.ClientHelo)) // the EHLO name: any bytes
	}
	if m.Origin.AuthUser != "" {
		row("AuthUser", m.Origin.AuthUser)
	}
	if m.Origin.TLS != "" {
		row("TLS", m.Origin.TLS)
	}
	row("Queues", strings.Join(m.Queues, ", "))
	tw.Flush()
	fmt.Fprintln(w, "Recipients:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ADDRESS\tSTATUS\tQUEUE\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
	for _, r := range m.Recipients {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", display(r.Address), display(string(r.Status)), display(r.Queue), r.Attempts,
			clock(r.NextAttempt), display(r.LastError))
	}
	tw.Flush()
}

// messageStatuses are the statuses a queued message can have
// (queue.MessageInfo.Status): the queue's words, shared with the queues.
var messageStatuses = []string{queue.HopReady, queue.HopActive, queue.HopRetry, queue.HopSuspended}

// messageStatus is the status typed, in the queue's spelling.
func messageStatus(typed string) (string, bool) {
	typed = strings.TrimSpace(typed)
	for _, st := range messageStatuses {
		if strings.EqualFold(st, typed) {
			return st, true
		}
	}
	return "", false
}
