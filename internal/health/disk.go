package health

import (
	"fmt"
	"path/filepath"

	"github.com/sluice-relay/sluice/internal/config"
)

// diskSpace warns before Sluice has to refuse mail for lack of space:
// below queue.min_free_space the queue answers 452 4.3.1 (reply.StoreFull)
// to every new message.
func diskSpace(c *config.Config, free func(string) (int64, error)) []Finding {
	min := int64(c.Queue.MinFreeSpace)
	if free == nil || min <= 0 {
		return nil
	}
	n, err := freeUnder(c.Node.DataDir, free)
	if err != nil {
		return nil // no disk to judge (yet); the queue reports its own errors
	}
	subject := "data directory " + c.Node.DataDir
	switch {
	case n < min:
		return []Finding{{Rule: RuleDiskSpace, Severity: Error, Subject: subject,
			Problem: fmt.Sprintf("%s free, below queue.min_free_space (%s): Sluice refuses new mail with 452 4.3.1 Insufficient system storage", size(n), size(min)),
			Fix:     "free space on that disk (old logs, other files; not the queue's own files) or move node.data_dir to a larger disk; Sluice accepts mail again by itself once there is room"}}
	case n < 2*min:
		return []Finding{{Rule: RuleDiskSpace, Severity: Warning, Subject: subject,
			Problem: fmt.Sprintf("%s free; below %s (queue.min_free_space) Sluice will refuse new mail with 452 4.3.1", size(n), size(min)),
			Fix:     "free space on that disk or move node.data_dir to a larger disk before it fills"}}
	}
	return nil
}

// freeUnder asks about dir or, before Sluice has created it, the nearest
// directory above it that exists: the disk it will live on.
func freeUnder(dir string, free func(string) (int64, error)) (int64, error) {
	for {
		n, err := free(dir)
		parent := filepath.Dir(dir)
		if err == nil || parent == dir {
			return n, err
		}
		dir = parent
	}
}

// size prints a byte count in the config's units.
func size(n int64) string {
	switch {
	case n >= 10<<30:
		return fmt.Sprintf("%dGB", n>>30)
	case n >= 10<<20:
		return fmt.Sprintf("%dMB", n>>20)
	case n >= 10<<10:
		return fmt.Sprintf("%dKB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
