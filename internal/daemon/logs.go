package daemon

import (
	"log/slog"
	"path/filepath"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/protolog"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// logs are the files Sluice writes about mail under data_dir: the
// message tracking log and the protocol logs of receive and send
// connectors.
type logs struct {
	tracking      *tracking.Log
	receive, send *protolog.Log
}

func openLogs(cfg *config.Config, log *slog.Logger) (*logs, error) {
	l := &logs{}
	var err error
	if cfg.Logs.Tracking.On() {
		dir := filepath.Join(cfg.Node.DataDir, "tracking")
		if l.tracking, err = tracking.Open(dir, cfg.Logs.Tracking.Retention.D(), log); err != nil {
			return nil, err
		}
	}
	dir := filepath.Join(cfg.Node.DataDir, "protocol")
	keep := cfg.Logs.ProtocolRetention.D()
	if l.receive, err = protolog.Open(dir, "receive", keep, log); err != nil {
		l.close()
		return nil, err
	}
	if l.send, err = protolog.Open(dir, "send", keep, log); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// close flushes and closes every log; nil logs are no-ops.
func (l *logs) close() {
	l.tracking.Close()
	l.receive.Close()
	l.send.Close()
}
