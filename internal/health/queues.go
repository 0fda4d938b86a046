package health

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/route"
)

// queues finds backlogs and next hops that do not take mail, and says what
// the last error means: an upstream refusing Sluice's credentials is
// UPSTREAM-AUTH at once (unless the host rule said it already, seen);
// anything else is HOP-FAILING, info while young and an error once mail
// has waited longer than health.hop_failing_for.
func queues(c *config.Config, qs []queue.QueueInfo, now time.Time, seen map[string]bool) []Finding {
	var out []Finding
	for _, q := range qs {
		subject := "queue " + q.Identity
		if q.Connector != "" && q.Connector != q.Identity {
			subject += " (send connector " + q.Connector + ")"
		}
		if q.MessageCount > c.Health.QueueBacklog {
			out = append(out, Finding{Rule: RuleQueueBacklog, Severity: Warning, Subject: subject,
				Problem: fmt.Sprintf("%d messages waiting (health.queue_backlog is %d); status %s", q.MessageCount, c.Health.QueueBacklog, q.Status),
				Fix:     "see why with sluice queue show " + quote(q.Identity) + "; if the next hop is only slow, raise the send connector's max_connections or rate_limit"})
		}
		if q.Unreadable > 0 && q.Identity == queue.Poison {
			out = append(out, Finding{Rule: RuleQueueContent, Severity: Error, Subject: subject,
				Problem: fmt.Sprintf("%d messages whose queue record cannot be read are kept and not delivered: %s", q.Unreadable, q.UnreadableError),
				Fix: "a damaged record means the disk under node.data_dir or something outside Sluice changed the queue (check dmesg and the disk's health); " +
					"a record from a newer Sluice is read by that version; sluice message list --queue Poison shows them, sluice message remove ID takes one out"})
		} else if q.Unreadable > 0 {
			out = append(out, Finding{Rule: RuleQueueContent, Severity: Error, Subject: subject,
				Problem: fmt.Sprintf("%d of %d messages cannot be read from the queue store: %s; they are retried (451 4.3.0) until they expire and bounce",
					q.Unreadable, q.MessageCount, q.UnreadableError),
				Fix: "a checksum that fails or a content file gone means the disk under node.data_dir or something outside Sluice changed the queue: check the kernel log (dmesg) and the disk's health; sluice message list shows the messages with this error"})
		}
		if q.LastError == "" || q.Status == queue.HopSuspended || q.RetryCount == 0 && q.Status != queue.HopRetry {
			continue
		}
		sc := connectorNamed(c, q.Connector)
		if f, ok := authFinding(subject, q.LastError, sc); ok {
			if !seen[seenKey(q.Connector, afterSaid(q.LastError))] {
				out = append(out, f)
			}
			continue
		}
		if q.MessageCount == 0 || q.OldestMessage.IsZero() {
			continue // nothing is waiting behind the failure
		}
		// The queue keeps no "failing since"; the oldest message's wait
		// is how long mail has been stuck, which is what matters here.
		waited := now.Sub(q.OldestMessage)
		limit := c.Health.HopFailingFor.D()
		f := Finding{Rule: RuleHopFailing, Severity: Error, Subject: subject, Fix: failingFix(q.LastError, q.Identity)}
		detail := fmt.Sprintf("%d messages, the oldest waiting %s, %d failures in a row%s; last error: %s",
			q.MessageCount, span(waited), q.RetryCount, nextRetry(q.NextRetryTime, now), q.LastError)
		if q.RetryCount == 0 && q.Identity != route.Unreachable {
			// The next hop takes sessions; what waits are recipients it
			// deferred (a mailbox busy, greylisting), while it may take
			// other mail at the same moment. "Has not taken mail" would
			// send the admin after an outage that is not there.
			f.Severity = Info
			if waited > limit {
				f.Severity = Warning
			}
			f.Problem = fmt.Sprintf("the next hop %s takes sessions but deferred recipients, who wait for their next attempt: %s",
				q.NextHop, detail)
			out = append(out, f)
			continue
		}
		if waited > limit {
			f.Problem = fmt.Sprintf("the next hop %s has not taken mail for %s: %s", q.NextHop, span(waited), detail)
		} else {
			f.Severity = Info
			f.Problem = fmt.Sprintf("the next hop %s is failing (an error after %s, health.hop_failing_for): %s", q.NextHop, span(limit), detail)
		}
		out = append(out, f)
	}
	return out
}

func nextRetry(t, now time.Time) string {
	if t.IsZero() || !t.After(now) {
		return ""
	}
	return ", next retry in " + span(t.Sub(now))
}

func connectorNamed(c *config.Config, name string) *config.SendConnector {
	for i := range c.SendConnectors {
		if c.SendConnectors[i].Name == name {
			return &c.SendConnectors[i]
		}
	}
	return nil
}

func afterSaid(s string) string {
	if _, rest, ok := strings.Cut(s, " said: "); ok {
		return rest
	}
	return s
}

func quote(s string) string {
	if strings.ContainsAny(s, " \"'") {
		return fmt.Sprintf("%q", s)
	}
	return s
}
