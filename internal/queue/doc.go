// Package queue owns accepted mail until it is delivered, bounced or
// removed: queues per next hop (like Exchange's Get-Queue), per-recipient
// state inside each message, the retry schedule, expiry, and the notices
// to the sender: bounces, delay notices and success notices.
//
// Durability contract. Put returns nil only once the message (envelope,
// per-recipient state and content) is durable in the Store: smtpd answers
// 250 after that and never before. Every later change of state is written
// through the Store before the queue acts on it further; a bounce is Put
// (durable) before the recipient it reports is marked final. A success
// notice is Put before the delivery is recorded too, but one that cannot
// be queued is logged and given up rather than deliver the message
// again. A crash at any point therefore loses nothing that got a 250; at
// worst a message whose delivery was not yet recorded is delivered again
// (at least once), with its success notice.
//
// Implementation summary. All working state is in memory, guarded by one
// mutex, and rebuilt from Store.Load at start. Each pending recipient is
// routed (package route) to a next hop; a NextHop holds one item per
// message with recipients for it, in a heap ordered by when the item is
// next due. Delivery asks Ready for hops with due items, Leases items one
// at a time (a session holding an idle connection waits in Await, and a
// message made due wakes one such session, not all), and reports
// per-recipient Outcomes with Done, or a connection-level failure with
// HopFailed, which puts the whole hop in retry (Exchange's queue-level
// Retry status) without touching the messages' own schedules. A session
// refused while others to the hop are connected is reported with HopBusy
// instead: the upstream takes no more connections, so the hop's session
// limit comes down and nothing waits (limit.go). A sweep
// every few seconds expires what is too old and sends delay notices. Writes to the Store happen outside the
// mutex, serialised per message so the last state written is the latest.
package queue
