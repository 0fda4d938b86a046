// Package daemon builds a running Sluice from one *config.Config and owns
// its lifetime: start order (store, queue, delivery, then listeners),
// reload on SIGHUP or through the admin API (new connections and new
// deliveries use the new config; a bad one is refused and the old one
// kept), and graceful stop on SIGTERM
// (sessions in DATA finish, deliveries end their current message, the
// store commits what is pending).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluice-relay/sluice/internal/admin"
	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/delivery"
	"github.com/sluice-relay/sluice/internal/dirlock"
	"github.com/sluice-relay/sluice/internal/metrics"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/smtpd"
	"github.com/sluice-relay/sluice/internal/store/sqlite"
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
	// SIGHUP is caught from the start: its default action ends the
	// process, and one sent while the queue loads (a reload right after
	// a start) must not. It is acted on once Sluice runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, err := load(o.ConfigPath)
	if err != nil {
		return err
	}
	log := NewLogger(o.LogOutput, cfg.Log)
	lock, err := dirlock.Acquire(cfg.Node.DataDir)
	if errors.Is(err, dirlock.ErrUnsupported) {
		log.Warn("running without the data directory lock", "err", err)
	} else if err != nil {
		return dataDirError(cfg, err)
	}
	defer lock.Release()
	logs, err := openLogs(cfg, log)
	if err != nil {
		return dataDirError(cfg, err)
	}
	defer logs.close()
	m := metrics.New()
	queueDir := filepath.Join(cfg.Node.DataDir, "queue")
	store, err := sqlite.Open(queueDir, sqlite.Options{PresizeLog: true})
	if err != nil {
		return dataDirError(cfg, fmt.Errorf("cannot open the queue under %s: %w", queueDir, err))
	}
	store.ObserveCommits(m.Commit)
	for _, f := range store.Orphans() {
		log.Warn("message content with no queue record moved aside; it was never acknowledged, unless the queue's -wal file was lost or cut",
			"file", f, "fix", "if the message was accepted, send it again from this file; else delete the file")
	}
	q, err := queue.Open(ctx, queue.Options{Store: store, Config: cfg, Log: log, Tracking: logs.tracking, Metrics: m})
	if err != nil {
		store.Close()
		return fmt.Errorf("cannot read the queue under %s: %w", queueDir, err)
	}
	d := delivery.New(delivery.Options{Queue: q, Config: cfg, Log: log, Protocol: logs.send, Metrics: m})
	srv := smtpd.New(smtpd.Options{Spool: q, Log: log, Tracking: logs.tracking, Protocol: logs.receive, Metrics: m})
	if err := srv.Apply(cfg); err != nil {
		q.Close()
		return err
	}
	var current atomic.Pointer[config.Config]
	current.Store(cfg)
	// The admin API's reloads (sluice reload; the only way on Windows,
	// which has no SIGHUP) are done here in the loop below, like SIGHUP's.
	reloads := make(chan chan admin.ReloadResult)
	running, stopped := context.WithCancel(context.Background())
	defer stopped()
	askReload := func(ctx context.Context) (admin.ReloadResult, error) {
		res := make(chan admin.ReloadResult, 1)
		select {
		case reloads <- res:
			return <-res, nil
		case <-running.Done():
			return admin.ReloadResult{}, errors.New("sluice is shutting down")
		case <-ctx.Done():
			return admin.ReloadResult{}, ctx.Err()
		}
	}
	adm := admin.New(admin.Options{Queue: q, Metrics: m, Log: log, Ready: q.Accepting, Health: healthFunc(&current, q, d),
		FlushTracking: logs.tracking.Flush, Reload: askReload}, cfg)
	if err := adm.Start(cfg); err != nil {
		srv.Shutdown(context.Background())
		q.Close()
		return err
	}
	work, stopWork := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.Run(work) }()
	go func() { defer wg.Done(); q.Run(work) }()

	source := o.ConfigPath
	if source == "" {
		source = config.DefaultName
	}
	log.Info("Sluice started", "version", o.Version, "config", source, "hostname", cfg.Node.Hostname,
		"data_dir", cfg.Node.DataDir, "queued", q.Len(), "pid", os.Getpid())
	describe(log, cfg)

	started := cfg // what is built once (log, log files, admin API) is this config's
	doReload := func() admin.ReloadResult {
		var res admin.ReloadResult
		cfg, res.Problems = reload(log, o.ConfigPath, cfg, srv, q, d)
		res.Reloaded = res.Problems == nil
		if res.RestartOnly = restartOnly(started, cfg); len(res.RestartOnly) > 0 {
			log.Warn("these sections changed but apply only when Sluice restarts; until then the ones it started with stay in force",
				"sections", res.RestartOnly)
		}
		adm.Apply(cfg)
		current.Store(cfg)
		return res
	}
	for {
		select {
		case <-hup:
			doReload()
		case res := <-reloads:
			res <- doReload()
		case <-ctx.Done():
			stopped()
			adm.Draining()
			shutdown(log, cfg, srv)
			stopWork()
			waitDeliveries(log, &wg)
			adm.Shutdown(context.Background())
			if err := q.Close(); err != nil {
				log.Error("closing the queue store", "err", err)
			}
			log.Info("Sluice stopped")
			return nil
		}
	}
}

// describe logs what the config makes Sluice do, so the log alone says
// where mail comes in and where it goes.
func describe(log *slog.Logger, cfg *config.Config) {
	for _, rc := range cfg.ReceiveConnectors {
		log.Info("receive connector ready", "connector", rc.Name, "bindings", fmt.Sprint(rc.Bindings), "tls", string(rc.TLS.Mode))
	}
	for _, sc := range cfg.SendConnectors {
		args := []any{"connector", sc.Name, "address_spaces", fmt.Sprint(sc.AddressSpaces), "delivery", string(sc.Delivery)}
		switch sc.Delivery {
		case config.DeliveryDirectory:
			args = append(args, "directory", sc.Directory)
		case config.DeliverySmarthost:
			args = append(args, "smarthosts", fmt.Sprint(sc.Smarthosts))
		}
		log.Info("send connector ready", args...)
	}
}

// dataDirError explains a failure to create or write something under
// node.data_dir as what to change there, with the config's file and line,
// rather than as the system's "mkdir ...: permission denied".
func dataDirError(cfg *config.Config, err error) error {
	if e, ok := cfg.DirError("node.data_dir", cfg.Node.DataDir, err); ok {
		return e
	}
	return err
}

func load(path string) (*config.Config, error) {
	if path == "" {
		return config.LoadDefault()
	}
	return config.Load(path)
}

// reload reads the config file again and applies it, or keeps old and
// says why not (in the log and in the problems it returns).
func reload(log *slog.Logger, path string, old *config.Config, srv *smtpd.Server, q *queue.Queue, d *delivery.Deliverer) (*config.Config, []string) {
	cfg, err := load(path)
	if err != nil {
		var errs config.Errors
		if !errors.As(err, &errs) {
			log.Error("reload refused; the running configuration is kept", "err", err)
			return old, []string{err.Error()}
		}
		var problems []string
		for _, e := range errs {
			problems = append(problems, e.Error())
		}
		// One event, one line: the problems are separated by " | ".
		log.Error("reload refused: the config has problems; the running configuration is kept",
			"count", len(problems), "problems", strings.Join(problems, " | "))
		return old, problems
	}
	if cfg.Node.DataDir != old.Node.DataDir {
		const why = "node.data_dir cannot change while running; restart Sluice to move it"
		log.Error("reload refused: " + why)
		return old, []string{why}
	}
	if err := srv.Apply(cfg); err != nil {
		// One problem per binding that cannot be listened on, each with
		// its file:line: key, as sluice serve reports them.
		problems := flatten(err)
		log.Error("reload refused; the running configuration is kept",
			"count", len(problems), "problems", strings.Join(problems, " | "))
		return old, problems
	}
	q.Apply(cfg)
	d.Apply(cfg)
	log.Info("configuration reloaded; new connections and deliveries use it",
		"receive_connectors", len(cfg.ReceiveConnectors), "send_connectors", len(cfg.SendConnectors))
	describe(log, cfg)
	return cfg, nil
}

// flatten lists the texts of the errors joined in err (errors.Join).
func flatten(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// restartOnly names the sections that differ between the config Sluice
// started with and now but that a reload does not apply: the log, the
// log files and the admin API are built once, at start.
func restartOnly(started, now *config.Config) []string {
	var changed []string
	for _, sec := range []struct {
		name     string
		old, new any
	}{
		{"log", started.Log, now.Log},
		{"logs", started.Logs, now.Logs},
		{"admin", started.Admin, now.Admin},
	} {
		if !reflect.DeepEqual(sec.old, sec.new) {
			changed = append(changed, sec.name)
		}
	}
	return changed
}

// shutdown stops listening and waits for sessions: those receiving a
// message get as long as their DATA timeout to finish it.
func shutdown(log *slog.Logger, cfg *config.Config, srv *smtpd.Server) {
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
}

// deliveryGrace bounds the wait for messages in transfer to upstreams at
// shutdown. One that is cut off stays queued and is sent again after the
// restart: a possible duplicate, never a loss.
const deliveryGrace = time.Minute

func waitDeliveries(log *slog.Logger, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(deliveryGrace):
		log.Warn("deliveries still in transfer at shutdown were cut off; they stay queued and are sent again after the restart", "grace", deliveryGrace)
	}
}
