// Package dropdir writes messages as .eml files into a directory, the way
// Exchange's drop directory does: the envelope in X-Sender and X-Receiver
// fields first, then the message. Each file is fsynced and renamed into
// place, so a file that exists is complete, and none replaces another.
package dropdir

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/safeio"
)

// Dir is a drop directory.
type Dir struct {
	path string
}

// Open creates the directory if needed, durably: files delivered into a
// new directory must not vanish with it at a power loss.
func Open(path string) (*Dir, error) {
	if err := safeio.MkdirAll(path, 0o750); err != nil {
		return nil, fmt.Errorf("drop directory %s: %w", path, err)
	}
	return &Dir{path: path}, nil
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// Put writes the message to <dir>/<id>.eml and returns once it is
// durable. A message written here again, for recipients routed here
// later (a reload, a redirect), goes to <id>-2.eml, <id>-3.eml, ...: the
// first file may not have been picked up yet, and holds the others.
func (d *Dir) Put(ctx context.Context, env *mail.Envelope, body io.Reader) error {
	base := filepath.Join(d.path, string(env.ID))
	name := base + ".eml"
	head := Envelope(env)
	_, n, err := safeio.WriteNewFrom(name, func(n int) string { return base + "-" + strconv.Itoa(n) + ".eml" },
		io.MultiReader(strings.NewReader(head), body), 0o640)
	if err != nil {
		if safeio.IsNoSpace(err) {
			return reply.StoreFull
		}
		return fmt.Errorf("dropdir: write %s: %w", name, err)
	}
	env.Size = n - int64(len(head))
	return nil
}

// Envelope renders the X-Sender and X-Receiver fields of a drop file.
func Envelope(env *mail.Envelope) string {
	var b strings.Builder
	fmt.Fprintf(&b, "X-Sender: %s\r\n", env.From.Path())
	for _, r := range env.Rcpts {
		fmt.Fprintf(&b, "X-Receiver: %s\r\n", r.Addr.Path())
	}
	return b.String()
}
