package admin

import (
	"testing"
	"time"
)

// SetIdleTimeout sets idleTimeout for one test.
func SetIdleTimeout(t *testing.T, d time.Duration) {
	old := idleTimeout
	idleTimeout = d
	t.Cleanup(func() { idleTimeout = old })
}
