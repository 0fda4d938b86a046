package daemon

import (
	"io"
	"log/slog"
	"os"

	"github.com/sluice-relay/sluice/internal/config"
)

// NewLogger builds the operational log from the config's log section.
func NewLogger(w io.Writer, l config.Log) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var level slog.Level
	level.UnmarshalText([]byte(l.Level))
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
