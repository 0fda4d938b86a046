// Package delivery takes due messages from the queue and delivers them
// through their send connector: to smarthosts in order with failover, to
// the recipient domain's MX hosts, or into a directory. It runs up to the
// connector's max_connections sessions per next hop (fewer while the
// upstream refuses more connections: delivery tells such a refusal from
// an outage, and the queue keeps the limit), sends several
// messages per connection (PIPELINING when offered), keeps to the
// connector's rate limit, and reports every recipient's outcome — the
// upstream's exact reply, and for a delivery whether the upstream took
// over telling the sender (it offers DSN) — back to the queue. It never
// decides retries, bounces or success notices itself: that is the
// queue's job.
package delivery
