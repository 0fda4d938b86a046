package config

import (
	"fmt"
	"net/netip"
	"os"
	"time"
)

// Logs configures the message tracking log and the protocol log. Both
// live under data_dir (tracking/, protocol/), one file per day.
type Logs struct {
	// Tracking: one record per event in a message's life. Default on,
	// kept 30 days; retention 0 keeps it for ever.
	Tracking TrackingLog `yaml:"tracking"`
	// ProtocolRetention is how long protocol log files are kept (the log
	// itself is switched on per connector with protocol_log). Default 30d;
	// 0 keeps them for ever.
	ProtocolRetention Duration `yaml:"protocol_retention"`
}

// TrackingLog configures the message tracking log.
type TrackingLog struct {
	Enabled   *bool    `yaml:"enabled"`   // default true
	Retention Duration `yaml:"retention"` // default 30d
}

// On reports whether message tracking is enabled.
func (t TrackingLog) On() bool { return t.Enabled == nil || *t.Enabled }

// Admin is the admin API listener the CLI, load balancers and Prometheus
// talk to.
type Admin struct {
	// Listen is the addr:port of the admin API; "off" disables it.
	// Default 127.0.0.1:8025.
	Listen string `yaml:"listen"`
	// TokenFile holds a bearer token clients must send. Required, or
	// client_ca, when listen is not a loopback address.
	TokenFile string `yaml:"token_file"`
	// Certificate and Key serve the API over HTTPS (required with client_ca).
	Certificate string `yaml:"certificate"`
	Key         string `yaml:"key"`
	// ClientCA: clients must present a certificate signed by this CA.
	ClientCA string `yaml:"client_ca"`

	// Addr is Listen parsed; invalid when the API is off.
	Addr netip.AddrPort `yaml:"-"`
}

// Off reports whether the admin API is disabled.
func (a Admin) Off() bool { return a.Listen == "off" }

// Health holds the thresholds of the health rules.
type Health struct {
	// QueueBacklog: a next hop holding more messages than this is a
	// finding. Default 1000.
	QueueBacklog int `yaml:"queue_backlog"`
	// HopFailingFor: a next hop failing for longer than this is a
	// finding. Default 30m.
	HopFailingFor Duration `yaml:"hop_failing_for"`
	// CertificateExpiry: a certificate expiring within this is a
	// finding. Default 30d.
	CertificateExpiry Duration `yaml:"certificate_expiry"`
}

const day = 24 * time.Hour

// opsDefaults fills what the file leaves out. A 0 that is written stays:
// retention 0 keeps log files for ever, as the logs implement it.
func (k *checker) opsDefaults() {
	c := k.c
	if !k.set("logs.tracking.retention") {
		c.Logs.Tracking.Retention = Duration(30 * day)
	}
	if !k.set("logs.protocol_retention") {
		c.Logs.ProtocolRetention = Duration(30 * day)
	}
	if c.Admin.Listen == "" {
		c.Admin.Listen = "127.0.0.1:8025"
	}
	if !k.set("health.queue_backlog") {
		c.Health.QueueBacklog = 1000
	}
	if !k.set("health.hop_failing_for") {
		c.Health.HopFailingFor = Duration(30 * time.Minute)
	}
	if !k.set("health.certificate_expiry") {
		c.Health.CertificateExpiry = Duration(30 * day)
	}
}

func (k *checker) checkOps() {
	a := &k.c.Admin
	if a.Off() {
		return
	}
	ap, err := netip.ParseAddrPort(a.Listen)
	if err != nil {
		k.errorf("admin.listen", "%q is not addr:port; write e.g. 127.0.0.1:8025, or off to disable the admin API", a.Listen)
		return
	}
	a.Addr = ap
	// The receive connectors listen first, and serve would stop with
	// "address already in use" at the admin API.
	admin := Binding{netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
	for _, rc := range k.c.ReceiveConnectors {
		if b, ok := sharedPort(admin, rc.Bindings); ok {
			k.errorf("admin.listen", "%s is taken by receive connector %q (binding %s); give the admin API a port of its own, e.g. 127.0.0.1:8025", a.Listen, rc.Name, b)
			break
		}
	}
	if (a.Certificate == "") != (a.Key == "") {
		k.errorf("admin.certificate", "give both certificate and key to serve the admin API over HTTPS, or neither")
	}
	if a.ClientCA != "" && a.Certificate == "" {
		k.errorf("admin.client_ca", "client certificates need HTTPS: give admin.certificate and admin.key too")
	}
	if !ap.Addr().IsLoopback() && a.TokenFile == "" && a.ClientCA == "" {
		k.errorf("admin.listen", "%s is reachable from other machines; give admin.token_file (bearer token) or admin.client_ca (client certificates), or listen on 127.0.0.1", a.Listen)
	} else if !ap.Addr().IsLoopback() && a.TokenFile != "" && a.Certificate == "" {
		k.errorf("admin.listen", "%s is reachable from other machines over plain HTTP: the bearer token would cross the network in clear with every request; give admin.certificate and admin.key (HTTPS), or listen on 127.0.0.1", a.Listen)
	}
	type file struct{ key, path string }
	files := []file{{"admin.client_ca", a.ClientCA}}
	if a.Certificate != "" && a.Key != "" {
		// The pair itself, not only its files: a key that does not belong
		// or is encrypted is named here, under its key, not when serve starts.
		k.loadPair(a.Certificate, a.Key, "admin.certificate", "admin.key")
	} else {
		files = append(files, file{"admin.certificate", a.Certificate}, file{"admin.key", a.Key})
	}
	for _, f := range files {
		if f.path != "" {
			if err := readable(f.path); err != nil {
				k.errorf(f.key, "%v", err)
			}
		}
	}
	if a.TokenFile != "" {
		// The admin API refuses to start with a token it cannot use;
		// say so here, with the key, not only when sluice serve fails.
		if _, err := AdminToken(a.TokenFile); err != nil {
			k.errorf("admin.token_file", "%v", err)
		}
	}
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", path, err)
	}
	return f.Close()
}

// sharedPort returns the binding among bs that a listener on a cannot
// share its port with: the same address, or a wildcard covering the other.
func sharedPort(a Binding, bs []Binding) (Binding, bool) {
	for _, b := range bs {
		if b.Port() == a.Port() && (b.Addr() == a.Addr() || covers(b, a) || covers(a, b)) {
			return b, true
		}
	}
	return Binding{}, false
}
