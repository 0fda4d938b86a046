package daemon

import (
	"sync/atomic"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/delivery"
	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/safeio"
)

// healthFunc evaluates the health rules against the running Sluice and
// the config it runs now.
func healthFunc(cfg *atomic.Pointer[config.Config], q *queue.Queue, d *delivery.Deliverer) func() []health.Finding {
	return func() []health.Finding {
		return health.Evaluate(health.Input{
			Config:    cfg.Load(),
			Queues:    q.Queues(),
			Tokens:    d.TokenStatus(),
			Hosts:     d.Hosts(),
			FreeSpace: safeio.FreeSpace,
			Now:       time.Now(),
		})
	}
}
