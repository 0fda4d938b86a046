package queue

import (
	"fmt"
	"sync"
	"time"

	"github.com/sluice-relay/sluice/internal/safeio"
)

// spaceCheck refuses new messages while the data directory's disk is
// below the configured free space, so the queue never fills the disk to
// the last byte (where the store could not even record deliveries). The
// answer is cached for a second: one statfs per second, not per message.
type spaceCheck struct {
	dir string
	min int64

	mu      sync.Mutex
	checked time.Time
	err     error
}

func newSpaceCheck(dir string, min int64) *spaceCheck { return &spaceCheck{dir: dir, min: min} }

// setMin applies a reloaded queue.min_free_space. The cached answer was
// for the old value: the next message and /readyz look again.
// (node.data_dir, the directory, changes only with a restart.)
func (s *spaceCheck) setMin(min int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.min, s.checked, s.err = min, time.Time{}, nil
}

func (s *spaceCheck) ok() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.min <= 0 {
		return nil
	}
	if time.Since(s.checked) < time.Second {
		return s.err
	}
	s.checked = time.Now()
	free, err := safeio.FreeSpace(s.dir)
	switch {
	case err != nil:
		s.err = nil // cannot tell: let the store's own errors speak
	case free < s.min:
		s.err = fmt.Errorf("%d MB free under %s, below queue.min_free_space (%d MB)", free>>20, s.dir, s.min>>20)
	default:
		s.err = nil
	}
	return s.err
}

// Accepting says why the queue refuses new messages now (the disk is
// below queue.min_free_space), nil when it takes them. For /readyz.
func (q *Queue) Accepting() error { return q.space.ok() }
