package daemon

import (
	"github.com/sluice-relay/sluice/internal/admin"
	"github.com/sluice-relay/sluice/internal/delivery"
	"github.com/sluice-relay/sluice/internal/queue"
)

// healthFunc evaluates the health rules against the running Sluice.
// TODO(issue 5): wire internal/health when it lands.
func healthFunc(q *queue.Queue, d *delivery.Deliverer) func() admin.Health {
	return func() admin.Health {
		return admin.Health{Status: "healthy", Findings: []any{}}
	}
}
