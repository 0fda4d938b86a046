// Package daemon builds a running Sluice from one *config.Config and owns
// its lifetime: start order, reload on SIGHUP (new connections get the new
// config; a bad one is refused and the old one kept), and graceful stop on
// SIGTERM (sessions in DATA finish first).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/dropdir"
	"github.com/sluice-relay/sluice/internal/smtpd"
)

// Options say where the config comes from and where logs go.
type Options struct {
	ConfigPath string    // "" for the embedded default
	LogOutput  io.Writer // operational log; os.Stderr in production
	Version    string
}

// Run starts Sluice and blocks until ctx is cancelled (SIGTERM, SIGINT),
// then shuts down gracefully. It returns an error if Sluice cannot start.
func Run(ctx context.Context, o Options) error {
	cfg, err := load(o.ConfigPath)
	if err != nil {
		return err
	}
	log := NewLogger(o.LogOutput, cfg.Log)
	drop, err := dropdir.Open(cfg.Delivery.DropDirectory)
	if err != nil {
		return err
	}
	srv := smtpd.New(smtpd.Options{Spool: drop, Log: log})
	if err := srv.Apply(cfg); err != nil {
		return err
	}
	source := o.ConfigPath
	if source == "" {
		source = config.DefaultName
	}
	log.Info("Sluice started", "version", o.Version, "config", source, "hostname", cfg.Node.Hostname, "pid", os.Getpid())
	for _, rc := range cfg.ReceiveConnectors {
		log.Info("receive connector ready", "connector", rc.Name, "bindings", fmt.Sprint(rc.Bindings), "tls", string(rc.TLS.Mode))
	}
	log.Info("accepted messages are written to the drop directory", "path", drop.Path())

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			cfg = reload(log, o.ConfigPath, cfg, srv)
		case <-ctx.Done():
			return shutdown(log, cfg, srv)
		}
	}
}

func load(path string) (*config.Config, error) {
	if path == "" {
		return config.LoadDefault()
	}
	return config.Load(path)
}

// reload applies a changed config file, or keeps the running one and says
// why not.
func reload(log *slog.Logger, path string, old *config.Config, srv *smtpd.Server) *config.Config {
	cfg, err := load(path)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				log.Error("reload refused: config has a problem; the running configuration is kept", "problem", e.Error())
			}
		} else {
			log.Error("reload refused; the running configuration is kept", "err", err)
		}
		return old
	}
	if cfg.Node.DataDir != old.Node.DataDir || cfg.Delivery.DropDirectory != old.Delivery.DropDirectory {
		log.Error("reload refused: node.data_dir and delivery.drop_directory cannot change while running; restart Sluice to move them")
		return old
	}
	if err := srv.Apply(cfg); err != nil {
		log.Error("reload refused; the running configuration is kept", "err", err)
		return old
	}
	log.Info("configuration reloaded; new connections use it", "connectors", len(cfg.ReceiveConnectors))
	return cfg
}

// shutdown stops listening and waits for sessions: those receiving a
// message get as long as their DATA timeout to finish it.
func shutdown(log *slog.Logger, cfg *config.Config, srv *smtpd.Server) error {
	grace := time.Minute
	for _, rc := range cfg.ReceiveConnectors {
		grace = max(grace, rc.Limits.DataTimeout.D())
	}
	log.Info("shutting down: no new connections; waiting for messages in transfer", "grace", grace)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("shutdown grace period over; remaining sessions closed", "err", err)
	}
	log.Info("Sluice stopped")
	return nil
}
