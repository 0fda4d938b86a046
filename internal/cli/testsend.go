package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/admin"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/tracking"
)

func init() {
	register(&command{
		name:  "test send",
		args:  "--from A --to A[,A] [--via CONNECTOR] [--wait D] [-config FILE]",
		short: "send a test message through the running Sluice and follow it",
		long: `Queues a small test message in the running Sluice (as if a client had sent
it), then follows it in the message tracking log until every recipient is
delivered or refused, or --wait runs out, printing each event and the
upstream's reply. --via sends it through the named send connector (its name
in any case) whatever the recipients' address spaces say. Exits 0 when every recipient was
delivered, 1 otherwise (a message still deferred stays queued and is retried).

With message tracking off (logs.tracking.enabled: false) it follows the queue
instead: it says when the message left the queue, but not whether it was
delivered or bounced (nothing records that), and exits 1 then, since it
cannot tell that every recipient was delivered.`,
		flags: func(fs *flag.FlagSet) func(*env, []string) (int, error) {
			af := addAPIFlags(fs)
			from := fs.String("from", "", "envelope sender `ADDRESS`")
			to := fs.String("to", "", "recipient `ADDRESSES`, comma-separated")
			via := fs.String("via", "", "send connector `NAME` to use")
			subject := fs.String("subject", "", "subject `TEXT` (default: Sluice test message <id>)")
			wait := fs.Duration("wait", time.Minute, "how long to follow the message")
			return func(e *env, args []string) (int, error) {
				if len(args) > 0 || *from == "" || *to == "" {
					return ExitUsage, usagef("give --from and --to")
				}
				c, err := af.client()
				if err != nil {
					return ExitFailure, err
				}
				req := admin.TestSend{From: *from, Via: *via, Subject: *subject}
				distinct := map[string]bool{} // follow waits for each once
				for _, a := range strings.Split(*to, ",") {
					if a = strings.TrimSpace(a); a != "" && !distinct[strings.ToLower(a)] {
						distinct[strings.ToLower(a)] = true
						req.To = append(req.To, a)
					}
				}
				var sent admin.TestSent
				if err := c.call(e.ctx, http.MethodPost, "/api/v1/test-send", nil, req, &sent); err != nil {
					return ExitFailure, err
				}
				if *af.json {
					printJSON(e.stdout, sent)
				} else {
					fmt.Fprintf(e.stdout, "queued as %s (Message-ID %s) in %s\n", display(string(sent.ID)), display(sent.MessageID), strings.Join(displayAll(sent.Queues), ", "))
				}
				return follow(e, c, sent, len(req.To), *wait, *af.json)
			}
		},
	})
}

// follow polls the tracking log for the test message until each
// recipient has a final event or the wait is over; with message tracking
// off, the queue (followQueue). With JSON the events are standard
// output's only content and the verdict goes to standard error.
func follow(e *env, c *apiClient, sent admin.TestSent, rcpts int, wait time.Duration, asJSON bool) (int, error) {
	say := e.stdout
	if asJSON {
		say = e.stderr
	}
	deadline := time.Now().Add(wait)
	seen := 0
	final := map[string]tracking.Event{}
	var lastDefer *tracking.Event
	for first := true; ; first = false {
		var events []tracking.Event
		q := url.Values{"message_id": {string(sent.ID)}}
		if err := c.call(e.ctx, http.MethodGet, "/api/v1/track", q, nil, &events); err != nil {
			return ExitFailure, err
		}
		if first && len(events) == 0 {
			// The queue records SUBMIT before the test-send answer and
			// the API writes out what was recorded before it searches:
			// no event at all means no tracking log is kept.
			return followQueue(e, c, sent, wait, deadline, say)
		}
		// The search gives the story of a notice the message brought
		// about too: a notice is found with the message it is about.
		events = slices.DeleteFunc(events, func(ev tracking.Event) bool { return ev.ID != sent.ID })
		for _, ev := range events[min(seen, len(events)):] {
			printEvent(e.stdout, ev, asJSON)
			switch ev.Event {
			case tracking.EventSend, tracking.EventFail, tracking.EventExpire:
				for _, r := range ev.Recipients {
					final[strings.ToLower(r)] = ev
				}
			case tracking.EventDefer:
				d := ev
				lastDefer = &d
			}
		}
		seen = max(seen, len(events))
		if len(final) >= rcpts {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(say, "still not delivered after %s; it stays queued (sluice message show %s)\n", wait, sent.ID)
			if lastDefer != nil {
				fmt.Fprintf(say, "last reply: %s\n", display(lastDefer.Reply))
			}
			return ExitFailure, nil
		}
		select {
		case <-e.ctx.Done():
			return ExitFailure, e.ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	code := ExitOK
	for r, ev := range final {
		if ev.Event == tracking.EventSend {
			fmt.Fprintf(say, "DELIVERED to %s via %s: %s\n", display(r), display(ev.Host), display(ev.Reply))
		} else {
			fmt.Fprintf(say, "FAILED for %s (%s): %s\n", display(r), display(ev.Host), display(ev.Reply))
			code = ExitFailure
		}
	}
	return code, nil
}

// followQueue follows the test message in the queue, for a Sluice that
// keeps no tracking log (logs.tracking.enabled: false): following the
// tracking log there said "still not delivered" of a message that was.
// Once the message has left the queue, only what the queue showed of its
// recipients before is known: whether the rest was delivered or bounced
// is recorded nowhere.
func followQueue(e *env, c *apiClient, sent admin.TestSent, wait time.Duration, deadline time.Time, say io.Writer) (int, error) {
	fmt.Fprintf(say, "message tracking is off in this Sluice (logs.tracking.enabled: false; its tracking log has no record of %s): following the queue instead\n",
		display(string(sent.ID)))
	var last queue.MessageInfo
	for {
		var mi queue.MessageInfo
		err := c.call(e.ctx, http.MethodGet, "/api/v1/messages/"+url.PathEscape(string(sent.ID)), nil, nil, &mi)
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.status == http.StatusNotFound:
			return leftQueue(say, sent, last), nil
		case err != nil:
			return ExitFailure, err
		}
		last = mi
		if time.Now().After(deadline) {
			fmt.Fprintf(say, "still queued after %s (status %s); it stays queued (sluice message show %s)\n", wait, display(mi.Status), display(string(sent.ID)))
			for _, r := range mi.Recipients {
				if r.LastError != "" {
					fmt.Fprintf(say, "last error for %s: %s\n", display(r.Address), display(r.LastError))
				}
			}
			return ExitFailure, nil
		}
		select {
		case <-e.ctx.Done():
			return ExitFailure, e.ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// leftQueue says what is known of a test message that left the queue
// without a tracking log: what the last look at the queue showed of each
// recipient. Exit 0 only when every recipient was seen delivered.
func leftQueue(say io.Writer, sent admin.TestSent, last queue.MessageInfo) int {
	fmt.Fprintf(say, "%s left the queue\n", display(string(sent.ID)))
	code, unknown := ExitOK, last.Recipients == nil
	for _, r := range last.Recipients {
		switch r.Status {
		case queue.StatusDelivered:
			fmt.Fprintf(say, "DELIVERED to %s\n", display(r.Address))
		case queue.StatusFailed, queue.StatusExpired:
			fmt.Fprintf(say, "FAILED for %s: %s\n", display(r.Address), display(r.LastError))
			code = ExitFailure
		default:
			unknown = true
		}
	}
	if unknown {
		fmt.Fprintln(say, "whether it was delivered or bounced is not known: message tracking is off, so Sluice kept no record of the outcome (a bounce goes to the sender); set logs.tracking.enabled: true to follow messages to their outcome")
		code = ExitFailure
	}
	return code
}

// printEvent prints one event of the test message; the hosts and
// replies are upstreams' words (see display).
func printEvent(w io.Writer, ev tracking.Event, asJSON bool) {
	if asJSON {
		printJSON(w, ev)
		return
	}
	where := ev.NextHop
	if ev.Host != "" {
		where += " " + ev.Host
	}
	fmt.Fprintf(w, "%s  %-7s %-8s %s %s %s\n", ev.Time.Local().Format("15:04:05.000"), display(string(ev.Event)), display(ev.Source),
		display(strings.Join(ev.Recipients, ",")), display(strings.TrimSpace(where)), display(ev.Reply))
}
