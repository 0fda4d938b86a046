package queue

import (
	"net/netip"
	"sort"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/route"
)

// Queue statuses, Exchange's words.
const (
	HopReady     = "Ready"     // messages due, none being delivered
	HopActive    = "Active"    // a delivery session is working on it
	HopRetry     = "Retry"     // the next hop failed; waiting for the next try
	HopSuspended = "Suspended" // an operator suspended it
)

// QueueInfo is one queue as Get-Queue shows it.
type QueueInfo struct {
	Identity      string    `json:"identity"`      // "Internet/contoso.com", "Office 365", "Unreachable"
	DeliveryType  string    `json:"delivery_type"` // SmartHostConnectorDelivery, DnsConnectorDelivery, ...
	Status        string    `json:"status"`        // Ready, Active, Retry, Suspended
	MessageCount  int       `json:"message_count"` //
	NextHop       string    `json:"next_hop"`      // smarthosts, domain or directory
	Connector     string    `json:"connector"`     // send connector name
	LastError     string    `json:"last_error"`    // the upstream's exact reply, with its host
	RetryCount    int       `json:"retry_count"`   // connection-level failures in a row
	LastRetryTime time.Time `json:"last_retry_time,omitzero"`
	NextRetryTime time.Time `json:"next_retry_time,omitzero"`
	OldestMessage time.Time `json:"oldest_message,omitzero"` // when the oldest message here was accepted
	// SessionLimit is how many delivery sessions the next hop gets at
	// once now: MaxConnections (the send connector's max_connections),
	// or fewer after its upstream refused more connections while others
	// were connected; it rises by one a minute while no more are refused.
	SessionLimit   int `json:"session_limit,omitempty"`
	MaxConnections int `json:"max_connections,omitempty"`
	// Unreadable counts messages whose content the queue store could not
	// give at their last attempt (a checksum that fails, a file gone),
	// UnreadableError says why for one of them.
	Unreadable      int    `json:"unreadable,omitempty"`
	UnreadableError string `json:"unreadable_error,omitempty"`
}

// Queues returns every queue, by identity.
func (q *Queue) Queues() []QueueInfo {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]QueueInfo, 0, len(q.hops))
	for _, h := range q.hops {
		out = append(out, q.info(h, now))
	}
	if i, ok := q.poisonInfo(); ok {
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identity < out[j].Identity })
	return out
}

// QueueByName returns one queue.
func (q *Queue) QueueByName(identity string) (QueueInfo, bool) {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.hops[identity]
	if h == nil {
		if identity == Poison {
			return q.poisonInfo()
		}
		return QueueInfo{}, false
	}
	return q.info(h, now), true
}

func (q *Queue) info(h *NextHop, now time.Time) QueueInfo {
	i := QueueInfo{
		Identity:      h.Key,
		DeliveryType:  h.DeliveryType(),
		MessageCount:  len(h.items),
		NextHop:       h.NextHop(),
		LastError:     h.lastError,
		RetryCount:    h.retryCount,
		LastRetryTime: h.lastRetry,
		NextRetryTime: h.nextRetry,
	}
	if h.Connector != nil {
		i.Connector = h.Connector.Name
		i.MaxConnections = h.Connector.MaxConnections
		i.SessionLimit = q.sessions(h.Key, i.MaxConnections, now)
	}
	var lastRcptErr string
	var lastAt time.Time
	for _, it := range h.items {
		if i.OldestMessage.IsZero() || it.m.Env.Received.Before(i.OldestMessage) {
			i.OldestMessage = it.m.Env.Received
		}
		if why := it.m.unreadable.Load(); why != nil {
			i.Unreadable++
			i.UnreadableError = *why
		}
		for _, r := range it.m.Rcpts {
			if r.hop == h.Key && r.LastError != "" && r.LastAttempt.After(lastAt) {
				lastRcptErr, lastAt = r.LastError, r.LastAttempt
			}
		}
	}
	if i.LastError == "" {
		i.LastError = lastRcptErr
	}
	if i.LastError == "" && h.Key == route.Unreachable {
		i.LastError = "no send connector serves these recipients' domains; add an address space that covers them"
	}
	switch {
	case h.suspended:
		i.Status = HopSuspended
	case h.leased > 0:
		i.Status = HopActive
	case now.Before(h.nextRetry) || h.Key == route.Unreachable:
		i.Status = HopRetry
	case h.waiting.Len() > 0 && now.Before(h.waiting[0].due):
		i.Status = HopRetry // everything here waits for its next attempt
	default:
		i.Status = HopReady
	}
	if i.Status == HopRetry && i.NextRetryTime.IsZero() && h.waiting.Len() > 0 {
		i.NextRetryTime = h.waiting[0].due
	}
	return i
}

// MessageInfo is one queued message, for `sluice message list|show`.
type MessageInfo struct {
	ID         mail.ID    `json:"id"`
	From       string     `json:"from"`
	Size       int64      `json:"size"`
	Received   time.Time  `json:"received"`
	Origin     OriginInfo `json:"origin"`
	Recipients []RcptInfo `json:"recipients"`
	Queues     []string   `json:"queues"`
	Status     string     `json:"status"`
	EnvID      string     `json:"envid,omitempty"`
	// About is, on a notice (a DSN Sluice sent), the message it is about.
	About mail.ID `json:"about,omitempty"`
	// Error says why the message is in the Poison queue: its record
	// cannot be read, so nothing else is known of it.
	Error string         `json:"error,omitempty"`
	Env   *mail.Envelope `json:"-"`
}

// OriginInfo is how a message arrived, with the admin API's snake_case
// names; mail.Origin keeps its field names because queue records store
// them.
type OriginInfo struct {
	Connector  string     `json:"connector"`
	ClientIP   netip.Addr `json:"client_ip"`
	ClientHelo string     `json:"client_helo"`
	AuthUser   string     `json:"auth_user"`
	TLS        string     `json:"tls"`
	Session    string     `json:"session"`
}

// RcptInfo is one recipient of a queued message.
type RcptInfo struct {
	Address     string    `json:"address"`
	Status      Status    `json:"status"`
	Queue       string    `json:"queue,omitempty"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

// Messages returns the queued messages that pass keep, oldest first.
func (q *Queue) Messages(keep func(*MessageInfo) bool) []MessageInfo {
	q.mu.Lock()
	out := make([]MessageInfo, 0)
	for _, m := range q.msgs {
		mi := q.messageInfo(m)
		if keep == nil || keep(&mi) {
			out = append(out, mi)
		}
	}
	for id, p := range q.poison {
		if mi := poisonMessage(id, p); keep == nil || keep(&mi) {
			out = append(out, mi)
		}
	}
	q.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Message returns one queued message.
func (q *Queue) Message(id mail.ID) (MessageInfo, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs[id]
	if m == nil {
		p, ok := q.poison[id]
		if !ok {
			return MessageInfo{}, false
		}
		return poisonMessage(id, p), true
	}
	return q.messageInfo(m), true
}

// messageRank orders the statuses of a message's recipients: the
// message shows the highest, whatever the recipients' order.
var messageRank = map[string]int{"Ready": 0, "Retry": 1, "Suspended": 2, "Active": 3}

func (q *Queue) messageInfo(m *Message) MessageInfo {
	now := q.now()
	mi := MessageInfo{ID: m.ID, From: m.Env.From.String(), Size: m.Size, Received: m.Env.Received,
		Origin: OriginInfo(m.Env.Origin), EnvID: m.Env.EnvID, About: m.Env.About, Status: "Ready"}
	seen := map[string]bool{}
	for _, r := range m.Rcpts {
		ri := RcptInfo{Address: r.Addr.String(), Status: r.Status, Attempts: r.Attempts, LastError: r.LastError,
			LastAttempt: r.LastAttempt, NextAttempt: r.NextAttempt}
		if !r.Status.Final() {
			ri.Queue = r.hop
			if !seen[r.hop] {
				seen[r.hop] = true
				mi.Queues = append(mi.Queues, r.hop)
			}
			h := q.hops[r.hop]
			// A queue in Retry holds its messages whether or not they
			// were attempted themselves: the hop failed on another
			// message's connection, or no connector serves it.
			hopRetry := h != nil && (now.Before(h.nextRetry) || h.Key == route.Unreachable)
			if hopRetry && h.nextRetry.After(ri.NextAttempt) {
				ri.NextAttempt = h.nextRetry // the queue's retry comes first
			}
			st := "Ready"
			switch {
			case r.leased:
				st = "Active"
			case h != nil && h.suspended:
				st = "Suspended"
			case r.Attempts > 0 || hopRetry:
				st = "Retry"
			}
			if messageRank[st] > messageRank[mi.Status] {
				mi.Status = st
			}
		}
		mi.Recipients = append(mi.Recipients, ri)
	}
	return mi
}
