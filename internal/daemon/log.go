package daemon

import (
	"context"
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
		return slog.New(idKey{h: slog.NewJSONHandler(w, opts)})
	}
	return slog.New(idKey{h: slog.NewTextHandler(w, opts)})
}

// msgIDKey is the operational log's name for Sluice's message id.
//
// Code logs the id as "msg" (STYLE.md §5, as the tracking log calls it),
// but "msg" is also slog's key for the event text: a line would carry
// msg twice, and in JSON every parser (jq, Go, Elasticsearch) keeps only
// the second, so "message accepted" became the bare id. idKey renames
// the attribute on its way out; the event text keeps "msg".
const msgIDKey = "msg_id"

// idKey is a slog.Handler that writes top-level "msg" attributes as
// msgIDKey. Inside a group there is no clash, and nothing is renamed.
type idKey struct {
	h       slog.Handler
	grouped bool
}

func (k idKey) Enabled(ctx context.Context, l slog.Level) bool { return k.h.Enabled(ctx, l) }

func (k idKey) Handle(ctx context.Context, r slog.Record) error {
	if k.grouped {
		return k.h.Handle(ctx, r)
	}
	clash := false
	r.Attrs(func(a slog.Attr) bool {
		clash = a.Key == slog.MessageKey
		return !clash
	})
	if !clash {
		return k.h.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(renameID(a))
		return true
	})
	return k.h.Handle(ctx, out)
}

func (k idKey) WithAttrs(as []slog.Attr) slog.Handler {
	if !k.grouped {
		renamed := make([]slog.Attr, len(as))
		for i, a := range as {
			renamed[i] = renameID(a)
		}
		as = renamed
	}
	return idKey{h: k.h.WithAttrs(as), grouped: k.grouped}
}

func (k idKey) WithGroup(name string) slog.Handler {
	if name == "" {
		return k
	}
	return idKey{h: k.h.WithGroup(name), grouped: true}
}

func renameID(a slog.Attr) slog.Attr {
	if a.Key == slog.MessageKey {
		a.Key = msgIDKey
	}
	return a
}
