// Package admin owns the admin HTTP API: the JSON endpoints the CLI uses
// to look at and act on a running Sluice (queues, messages, tracking,
// health, test messages), Prometheus /metrics, and /healthz and /readyz
// for load balancers. It listens on its own address, loopback by default;
// off loopback it demands a bearer token or a client certificate (config
// refuses anything else). It reads from and acts on the queue; it never
// speaks SMTP itself.
package admin
