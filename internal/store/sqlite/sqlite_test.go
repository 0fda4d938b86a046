package sqlite

import (
	"testing"

	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dir string) queue.Store {
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
